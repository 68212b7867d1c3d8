// `npm run status -- --lab` against real labs over real SSH (root): each lab host runs sshd
// in its namespace, status reaches them from the lab's operator namespace. Faults are made
// by hand, and status must name exactly the broken thing and nothing else (what the fault
// breaks elsewhere is reported as its consequence), exit 1, then be healthy again.
// Lab A: BGP on, three hosts, Docker endpoints. Lab B: BGP off (the fabric's static routes),
// bare-namespace endpoints.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startBird, stopBird } from "../lab/bird.js";
import { requireState, type LabOptions } from "../lab/context.js";
import { run } from "../lab/exec.js";
import { docker } from "../lab/docker.js";
import { endpointScriptAction, felixStandIn, labDockerHost, labDown, labUp } from "../lab/lab.js";
import type { LabPlan } from "../lab/plan.js";
import { labNamespaceTransport, labSshTransport, labTarget } from "../lab/probes.js";
import { labSshdPids, startSshdProcess, stopLabSshd, waitForSshd } from "../lab/sshd.js";
import { StateDir } from "../lab/state.js";
import { formatProblem } from "../status/report.js";
import { runStatus, type StatusReport } from "../status/engine.js";
import {
  leftovers,
  NOTHING,
  stackWith,
  systemSnapshot,
  type SystemSnapshot,
  LAB_SKIP,
} from "./helpers/lab.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const skip = LAB_SKIP;

let stateRoot = "";
let baseline: SystemSnapshot;
let a: LabOptions;
let b: LabOptions;
let planA: LabPlan;
let planB: LabPlan;

/** The CLI for real: its exit code and its JSON report. */
function status(opts: LabOptions, extra: string[] = []) {
  return new Promise<{ code: number; report: StatusReport; stderr: string }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        path.join(root, "scripts/status.ts"),
        "--lab",
        "--stack",
        opts.stack!,
        "--state-dir",
        stateRoot,
        "--json",
        ...extra,
      ],
      { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      try {
        resolve({ code: code ?? -1, report: JSON.parse(out) as StatusReport, stderr: err });
      } catch {
        reject(new Error(`status printed no JSON (exit ${code}):\n${out}\n${err}`));
      }
    });
  });
}

const roots = (r: StatusReport) => r.problems.map(formatProblem).sort();

/** Until the lab's own transport finds it healthy (a restored fault may take a BIRD scan). */
async function healthy(opts: LabOptions, ms = 20_000) {
  const { target, plan } = labTarget(opts);
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await runStatus(target, labNamespaceTransport(plan));
    if (r.ok) return;
    if (Date.now() > deadline) assert.fail(`not healthy again: ${roots(r).join("; ")}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

describe("npm run status -- --lab: real labs, real SSH, faults named exactly", { skip }, () => {
  before(async () => {
    baseline = await systemSnapshot();
    stateRoot = await mkdtemp(path.join(tmpdir(), "status-lab-"));
    a = {
      stack: `t-status-a-${process.pid}`,
      stateRoot,
      // The health probes over SSH are what is tested here; the policy is lab-policy's.
      felix: "stand-in",
      config: stackWith("dev", (raw) => {
        raw.bgp = { enabled: true };
        (raw.hosts as unknown[]).push({ name: "host-3", zone: "us-central1-a" });
        (raw.endpoints as unknown[]).push({ host: "host-3", ip: "192.168.1.4", group: "web" });
      }),
    };
    b = {
      stack: `t-status-b-${process.pid}`,
      stateRoot,
      felix: "stand-in",
      config: stackWith("dev"),
      endpoints: "netns",
    };
    planA = (await labUp(a)).plan;
    planB = (await labUp(b)).plan;
    await healthy(a);
    await healthy(b);
  });

  after(async () => {
    const states = [a, b].map((o) => new StateDir(stateRoot, o.stack!));
    await labDown(a);
    await labDown(b);
    for (const s of states) assert.deepEqual(labSshdPids(s), [], "no sshd left behind");
    const { stdout } = await run("ps", ["-eo", "pid,args"]);
    assert.deepEqual(
      stdout.split("\n").filter((l) => l.includes(stateRoot)),
      [],
      "no process of the labs left",
    );
    await rm(stateRoot, { recursive: true, force: true });
    assert.deepEqual(leftovers(baseline, await systemSnapshot()), NOTHING);
  });

  it("reports healthy labs as healthy, every host reached over SSH, exit 0", async () => {
    for (const [opts, plan] of [
      [a, planA],
      [b, planB],
    ] as const) {
      const { code, report, stderr } = await status(opts);
      assert.equal(code, 0, `${roots(report).join("; ")}\n${stderr}`);
      assert.equal(report.ok, true);
      assert.equal(report.transport, "ssh");
      assert.deepEqual(
        report.hosts.map((h) => h.host),
        plan.hosts.map((h) => h.name),
      );
      for (const h of report.hosts) {
        assert.equal(h.reachable, true);
        const by = new Map(h.checks.map((c) => [c.check, c.status]));
        assert.equal(by.get("routes"), "ok");
        assert.equal(by.get("endpoints"), "ok");
        assert.equal(by.get("snat"), "ok");
        // Production pieces the lab does not have are said to be not applicable.
        assert.equal(by.get("felix"), "n/a");
        assert.ok(["n/a", "ok"].includes(by.get("agent")!), "the agent, where the lab runs one");
        assert.equal(by.get("bgp"), plan.bgp ? "ok" : "n/a");
        if (h.controller) assert.equal(by.get("plugin-data"), "ok");
      }
      assert.match(stderr, /host-1: ok/, "progress on stderr");
    }
  });

  it("runs each SSH command without the machine's root ~/.bashrc (sshd sets SHLVL)", async () => {
    // Debian's bash reads ~/.bashrc for an SSH command only when SHLVL is unset; the lab's
    // sshd sets it to 1, so root's shell reads no rc file, and the bash it hands the command
    // to says level 2 (without it: level 1, and where root's .bashrc sets up pyenv,
    // PYENV_SHELL is set).
    const t = labSshTransport(planB, new StateDir(stateRoot, b.stack!));
    const r = await t.exec("host-1", ["bash", "-c", 'echo "$SHLVL ${PYENV_SHELL-none}"']);
    assert.equal(r.stdout.trim(), "2 none");
  });

  it("one host's BIRD stopped: that BIRD, and the sessions and routes it takes along as consequences", async () => {
    await stopBird(a, "host-2");
    try {
      const { code, report } = await status(a);
      assert.equal(code, 1);
      assert.deepEqual(roots(report), [
        "host-2: bgp: bird: expected BIRD answering on its control socket, found " +
          report.problems[0]!.found,
      ]);
      assert.match(report.problems[0]!.found, /Unable to connect|No such file|socket/i);
      for (const c of report.consequences) {
        assert.equal(c.causedBy, "host-2/bgp/bird", formatProblem(c));
      }
    } finally {
      await startBird(a, "host-2");
    }
    await healthy(a);
  });

  it("an endpoint's tap deleted: that endpoint, nothing else", async () => {
    const e = planA.endpoints.find((x) => x.host === "host-2")!;
    const ns = planA.hosts.find((h) => h.name === "host-2")!.ns;
    await run("ip", ["-n", ns, "link", "del", e.tap]);
    try {
      const { code, report } = await status(a);
      assert.equal(code, 1);
      assert.deepEqual(roots(report), [
        `host-2: endpoints: ${e.name}: expected tap ${e.tap}, found no such interface`,
      ]);
      for (const c of report.consequences) {
        assert.equal(c.causedBy, `host-2/endpoints/${e.name}`, formatProblem(c));
      }
    } finally {
      await endpointScriptAction(a, e.name, "add");
      await felixStandIn(planA, 4, [e.name]);
    }
    await healthy(a);
  });

  it("an endpoint container stopped: that endpoint's container, nothing else", async () => {
    const e = planA.endpoints.find((x) => x.host === "host-1")!;
    const host = labDockerHost(a);
    await docker(host, ["stop", e.container]);
    try {
      const { code, report } = await status(a);
      assert.equal(code, 1);
      assert.deepEqual(roots(report), [
        `host-1: endpoints: ${e.name}: expected its container running, found container exited`,
      ]);
      for (const c of report.consequences) {
        assert.equal(c.causedBy, `host-1/endpoints/${e.name}`, formatProblem(c));
      }
    } finally {
      // The lab's host agent wires the started container again (as on a real host).
      await docker(host, ["start", e.container]);
    }
    await healthy(a);
  });

  it("a remote endpoint's route deleted (the fabric's static route, BGP off): that route only", async () => {
    const e = planB.endpoints.find((x) => x.host === "host-2")!;
    const route = planB.fabricRoutes.find((r) => r.dest === `${e.ip}/32`)!;
    await run("ip", ["-n", planB.fabricNs, "route", "del", route.dest]);
    try {
      const { code, report } = await status(b);
      assert.equal(code, 1);
      const addr = planB.hosts.find((h) => h.name === "host-2")!.address;
      assert.deepEqual(roots(report), [
        `host-1: routes: ${e.name} (${e.ip}): expected a fabric route via host-2 (${addr}), found no fabric route`,
      ]);
      assert.deepEqual(report.consequences, []);
    } finally {
      await run("ip", [
        "-n",
        planB.fabricNs,
        "route",
        "replace",
        route.dest,
        "via",
        route.via,
        "dev",
        planB.bridge,
      ]);
    }
    await healthy(b);
  });

  it("plugin data: a file removed, one stale, one extra, each named", async () => {
    const dir = labTarget(a).target.dataDir;
    const e = planA.endpoints[1]!;
    const removed = path.join(dir, `${e.name}.txt`);
    const felix = path.join(dir, "felix.txt");
    const [removedText, felixText] = [
      await readFile(removed, "utf8"),
      await readFile(felix, "utf8"),
    ];
    await unlink(removed);
    await writeFile(felix, felixText.replace("[felix host-3]", "[felix host-9]"));
    await writeFile(path.join(dir, "old-endpoint.txt"), "[endpoint old-endpoint]\n");
    try {
      const { code, report } = await status(a);
      assert.equal(code, 1);
      assert.deepEqual(roots(report), [
        `host-1: plugin-data: ${e.name}.txt: expected present, found missing`,
        "host-1: plugin-data: felix.txt: expected as rendered from the stack, found different (stale)",
        "host-1: plugin-data: old-endpoint.txt: expected no such file (not in the stack), found present",
      ]);
      assert.deepEqual(report.consequences, []);
    } finally {
      await writeFile(removed, removedText);
      await writeFile(felix, felixText);
      await unlink(path.join(dir, "old-endpoint.txt"));
    }
    await healthy(a);
  });

  it("a host's sshd stopped: that host unreachable, the others still checked", async () => {
    const state = new StateDir(stateRoot, a.stack!);
    const h3 = requireState(state).plan.hosts.find((h) => h.name === "host-3")!;
    const stopped = await stopLabSshd(state, h3);
    assert.ok(stopped.length > 0, "host-3's sshd was running");
    try {
      const { code, report } = await status(a, ["--connect-timeout", "2"]);
      assert.equal(code, 1);
      assert.equal(report.problems.length, 1, roots(report).join("; "));
      const p = report.problems[0]!;
      assert.equal(`${p.host}/${p.check}`, "host-3/reach");
      assert.match(p.found, /refused|timed out/i);
      assert.deepEqual(report.consequences, []);
      for (const h of report.hosts.filter((x) => x.host !== "host-3")) {
        assert.equal(h.reachable, true);
        assert.deepEqual(h.problems, []);
        assert.ok(h.checks.filter((c) => c.status === "ok").length >= 5, h.host);
      }
      // --host narrows the report; the fault is still found when that host is asked for.
      const only = await status(a, ["--connect-timeout", "2", "--host", "host-1"]);
      assert.equal(only.code, 0);
      assert.deepEqual(
        only.report.hosts.map((h) => h.host),
        ["host-1"],
      );
    } finally {
      startSshdProcess(state, h3);
      await waitForSshd(state, [h3]);
    }
    assert.equal((await status(a)).code, 0);
    assert.ok(existsSync(state.sshdPid(h3.index)));
  });
});
