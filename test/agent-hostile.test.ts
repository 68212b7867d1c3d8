/**
 * The rendered host agent against a stand-in `docker` on PATH whose containers carry hostile
 * labels: label values with newlines and `|` that, read as text, forge a second record. The
 * stand-in answers `ps` and `events` by applying the agent's own `--format` template to its
 * containers and events (the forms the agent uses: fields, `index`, `.Label`, `json`), as
 * Docker does, and records every other call. The agent must wire the honest endpoint, and
 * neither restart nor wire anything a forged record names. No daemon, no root needed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { LABELS, renderAgentScript } from "../components/render/index.js";
import { devRaw, hostOf, modelOf } from "./helpers/stacks.js";
import { hasCommand } from "./helpers/tools.js";

const model = modelOf(devRaw());
const host = hostOf(model, "host-1");
const GOOD = "a".repeat(64);
const HOSTILE = "b".repeat(64);
const VICTIM = "c".repeat(64);

/** The stand-in: answers from FIXTURE (JSON), logs calls to CALLS. */
const STUB = `#!/usr/bin/env node
const fs = require("node:fs");
const args = process.argv.slice(2);
const fx = JSON.parse(fs.readFileSync(process.env.FIXTURE, "utf8"));
fs.appendFileSync(process.env.CALLS, JSON.stringify(args) + "\\n");
const format = args[args.indexOf("--format") + 1] ?? "";
const goJson = (v) => JSON.stringify(v).replace(/</g, "\\\\u003c").replace(/>/g, "\\\\u003e").replace(/&/g, "\\\\u0026");
function value(expr, obj) {
  expr = expr.trim().replace(/^\\((.*)\\)$/, "$1").trim();
  let m;
  if ((m = /^index \\.Actor\\.Attributes "([^"]*)"$/.exec(expr))) return obj.Actor.Attributes[m[1]] ?? "";
  if ((m = /^\\.Label "([^"]*)"$/.exec(expr))) return obj.Labels[m[1]] ?? "";
  return expr.slice(1).split(".").reduce((o, k) => (o == null ? "" : o[k]), obj) ?? "";
}
const render = (obj) =>
  format.replace(/\\{\\{(.*?)\\}\\}/g, (_, e) => (e.startsWith("json ") ? goJson(value(e.slice(5), obj)) : String(value(e, obj))));
const filters = args.flatMap((a, i) => (args[i - 1] === "--filter" ? [a] : []));
switch (args[0]) {
  case "version":
    console.log("20.10.0");
    break;
  case "ps": {
    const wanted = fx.containers.filter((c) =>
      filters.every((f) => {
        if (f === "health=unhealthy") return c.health === "unhealthy";
        const m = /^label=([^=]+)=(.*)$/.exec(f);
        return m === null || c.Labels[m[1]] === m[2];
      }),
    );
    for (const c of wanted) console.log(render(c));
    break;
  }
  case "events":
    for (const e of fx.events) console.log(render(e));
    fs.appendFileSync(process.env.CALLS, '"events sent"\\n');
    setInterval(() => {}, 1000);
    break;
  default:
    break;
}
`;

const label = (role: string, extra: Record<string, string> = {}) => ({
  [LABELS.role]: role,
  [LABELS.host]: "host-1",
  ...extra,
});

/** Label values that, read line by line and split on `|`, forge records naming the victim. */
const forgedPs = `web\n${VICTIM}|victim|felix`;
const forgedEvent = `x\nhealth_status: unhealthy|${VICTIM}|felix||felix|host-1\ny`;

const fixture = {
  containers: [
    { ID: GOOD, Names: "good", Labels: label("endpoint", { [LABELS.endpoint]: "good" }) },
    { ID: HOSTILE, Names: "hostile", Labels: label("endpoint", { [LABELS.endpoint]: forgedPs }) },
    { ID: VICTIM, Names: "felix", Labels: label("felix") },
  ],
  events: [
    {
      Action: "start",
      Actor: {
        ID: HOSTILE,
        Attributes: { ...label("endpoint"), [LABELS.endpoint]: forgedEvent, name: "hostile" },
      },
    },
  ],
};

describe("host agent: hostile labels", { skip: hasCommand("bash") ? undefined : "no bash" }, () => {
  it("wires the honest endpoint; a forged record restarts and wires nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cah-"));
    try {
      const bin = join(dir, "bin");
      const scripts = join(dir, "scripts");
      writeFileSync(join(dir, "fixture.json"), JSON.stringify(fixture));
      const mk = (path: string, text: string) => {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, text, { mode: 0o755 });
      };
      mk(join(bin, "docker"), STUB);
      for (const ep of ["good", "victim", "web"]) {
        mk(join(scripts, `endpoint-${ep}.sh`), `echo ${ep} >>"${join(dir, "wired")}"\n`);
      }
      const agentFile = join(dir, "agent.sh");
      mk(agentFile, renderAgentScript(model, host));
      const calls = join(dir, "calls");
      writeFileSync(calls, "");
      const agent = spawn("bash", [agentFile, "run"], {
        env: {
          ...process.env,
          PATH: `${bin}:${process.env.PATH ?? ""}`,
          FIXTURE: join(dir, "fixture.json"),
          CALLS: calls,
          CALICO_SCRIPT_DIR: scripts,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let log = "";
      agent.stdout.setEncoding("utf8").on("data", (t: string) => (log += t));
      agent.stderr.setEncoding("utf8").on("data", (t: string) => (log += t));
      try {
        const deadline = Date.now() + 60_000;
        while (!readFileSync(calls, "utf8").includes("events sent") && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
        }
        // The pass's wirings and the event's handling, given time to happen.
        await new Promise((r) => setTimeout(r, 3000));
      } finally {
        agent.kill("SIGTERM");
        await new Promise((r) => agent.once("close", r));
      }
      const called = readFileSync(calls, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as string[] | string);
      assert.ok(called.includes("events sent"), `the agent never followed the events:\n${log}`);
      const wired = existsSync(join(dir, "wired"))
        ? readFileSync(join(dir, "wired"), "utf8").trim().split("\n")
        : [];
      assert.deepEqual(wired, ["good"], `only the honest endpoint is wired:\n${log}`);
      const restarts = called.filter((c) => Array.isArray(c) && c[0] === "restart");
      assert.deepEqual(restarts, [], `nothing is restarted:\n${log}`);
      assert.match(log, /refused a container from Docker/);
      assert.match(log, /refused an event from Docker/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
