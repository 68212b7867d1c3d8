// The stack's policy with the real Felix and ACL Manager 0.10.2 (root, real dockerd, the felix
// image built from images/felix/Dockerfile): `check` proves both ways who may reach whom on
// dev (ICMP and TCP, same host and across hosts); a policy change re-rendered into the plugin
// data is enforced with no restart; a stack whose rules changed fails `check` while Felix is
// stopped; a hung Felix is found by the image's health check and restarted by the host agent;
// a restarted plugin and ACL Manager resync with nothing lost. Traffic stays inside the
// namespaces the lab makes.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { CalicoConfig } from "../components/config.js";
import { kindLabel } from "../components/reachability.js";
import { applyPolicy } from "../lab/apply.js";
import { labCheck, type CheckReport } from "../lab/check.js";
import type { LabOptions } from "../lab/context.js";
import { docker } from "../lab/docker.js";
import { run, sleep } from "../lab/exec.js";
import { labDockerHost, labDown, labUp, restartLabPlugin } from "../lab/lab.js";
import type { LabPlan } from "../lab/plan.js";
import { StateDir } from "../lab/state.js";
import {
  LAB_SKIP,
  leftovers,
  NOTHING,
  stackWith,
  systemSnapshot,
  type SystemSnapshot,
} from "./helpers/lab.js";

type Raw = Record<string, unknown>;
type Groups = Record<string, { inbound: Raw[]; outbound: Raw[] }>;

/** dev, with its groups changed by `change`. */
const dev = (change: (groups: Groups) => void = () => {}): CalicoConfig =>
  stackWith("dev", (raw) => change(raw.groups as Groups));

/** `from → to kind` → what was seen, from a check report. */
function seen(r: CheckReport): Map<string, string> {
  const m = new Map<string, string>();
  const j = r.policy!.judgement;
  for (const k of j.matrices) {
    j.endpoints.forEach((from, a) =>
      j.endpoints.forEach((to, b) => {
        const cell = k.observed[a]![b];
        if (cell !== null && cell !== undefined) m.set(`${from.name} ${to.name} ${k.kind}`, cell);
      }),
    );
  }
  return m;
}

describe("lab policy with the real Felix and ACL Manager (dev)", { skip: LAB_SKIP }, () => {
  let opts: LabOptions;
  let plan: LabPlan;
  let host = "";
  let stateRoot = "";
  let baseline: SystemSnapshot;
  const felixOf = (h: string) =>
    `${plan.prefix}-h${plan.hosts.find((x) => x.name === h)!.index}-felix`;
  const aclmgr = () => `${plan.prefix}-h0-aclmgr`;
  const inspect = async (name: string, format: string) =>
    (await docker(host, ["inspect", "-f", format, name])).stdout.trim();
  const check = (timeoutMs = 120_000) => labCheck({ ...opts, timeoutMs });

  async function holds(after: string) {
    const r = await check();
    assert.deepEqual(r.problems, [], `after ${after}`);
    return r;
  }

  before(async () => {
    baseline = await systemSnapshot();
    stateRoot = await mkdtemp(path.join(tmpdir(), "lab-policy-"));
    opts = { stack: `t-pol-${process.pid}`, stateRoot, config: dev(), felix: "real" };
    plan = (await labUp(opts)).plan;
    host = labDockerHost(opts);
  });

  after(async () => {
    await labDown(opts);
    await rm(stateRoot, { recursive: true, force: true });
    assert.deepEqual(leftovers(baseline, await systemSnapshot()), NOTHING);
  });

  it("proves dev's policy both ways: allowed pairs connect, denied pairs are dropped", async () => {
    const r = await holds("up");
    const s = seen(r);
    const [web1, db, web3] = ["192_168_1_1", "192_168_1_2", "192_168_1_3"];
    // Same group, across hosts: everything passes.
    for (const k of ["icmp", "tcp/5432", "tcp/5433"]) {
      assert.equal(s.get(`${web1} ${web3} ${k}`), "connected", `web -> web ${k}`);
    }
    // web -> db: only tcp/5432 (db's inbound rule), on the same host and across hosts.
    for (const from of [web1, web3]) {
      assert.equal(s.get(`${from} ${db} tcp/5432`), "connected", `${from} -> db 5432`);
      assert.equal(s.get(`${from} ${db} tcp/5433`), "dropped", `${from} -> db 5433`);
      assert.equal(s.get(`${from} ${db} icmp`), "dropped", `${from} -> db icmp`);
    }
    // db reaches no web endpoint at all (web's inbound admits only web).
    for (const to of [web1, web3]) {
      for (const k of ["icmp", "tcp/5432", "tcp/5433"]) {
        assert.equal(s.get(`${db} ${to} ${k}`), "dropped", `db -> ${to} ${k}`);
      }
    }
    assert.equal(r.isolation?.reached.length, 0, "containers reach no host's SSH or ZeroMQ");
  });

  it("carries a TCP transfer of many segments across hosts, at the fabric's MTU (1460)", async () => {
    const [from, to] = [plan.endpoints[0]!, plan.endpoints[2]!]; // web on host-1, web on host-2
    for (const e of [from, to]) {
      const { stdout } = await run("ip", ["-n", e.ns, "-o", "link", "show", "eth0"]);
      assert.match(stdout, / mtu 1460 /, `${e.name}'s eth0`);
    }
    const size = 512 * 1024;
    const server = run(
      "ip",
      ["netns", "exec", to.ns, "sh", "-c", "busybox nc -l -p 5433 | wc -c"],
      { timeoutMs: 30_000 },
    );
    await sleep(300);
    await run(
      "ip",
      [
        "netns",
        "exec",
        from.ns,
        "bash",
        "-c",
        `head -c ${size} /dev/zero > /dev/tcp/${to.ip}/5433`,
      ],
      { timeoutMs: 30_000 },
    );
    assert.equal(Number((await server).stdout.trim()), size, "every byte arrived");
  });

  it("enforces a policy change with no restart (a rule, then an endpoint's group)", async () => {
    const started = await inspect(felixOf("host-1"), "{{.State.StartedAt}}");
    // db lets web ping it.
    applyPolicy(
      opts,
      dev((g) => g.db!.inbound.push({ group: "web", protocol: "icmp" })),
    );
    let r = await holds("db admits icmp from web");
    assert.equal(seen(r).get("192_168_1_1 192_168_1_2 icmp"), "connected");
    // 192.168.1.3 moves to db: web on host-1 may no longer ping it; db may.
    const moved = stackWith("dev", (raw) => {
      (raw.groups as Groups).db!.inbound.push({ group: "web", protocol: "icmp" });
      (raw.endpoints as Raw[])[2]!.group = "db";
    });
    applyPolicy(opts, moved);
    r = await holds("an endpoint moved to db");
    assert.equal(seen(r).get("192_168_1_2 192_168_1_3 tcp/5433"), "connected", "db <-> db");
    assert.equal(seen(r).get("192_168_1_3 192_168_1_1 icmp"), "dropped", "db -> web");
    applyPolicy(opts, dev());
    await holds("back to dev");
    assert.equal(await inspect(felixOf("host-1"), "{{.State.StartedAt}}"), started, "no restart");
  });

  it("fails check when the rules deny a pair that the stopped Felix still lets through", async () => {
    await holds("before Felix stops"); // what Felix leaves programmed is dev's policy
    const felixes = plan.hosts.map((h) => felixOf(h.name));
    await docker(host, ["stop", ...felixes]);
    try {
      // web may no longer reach db on 5432; the stopped Felix never hears of it.
      applyPolicy(
        opts,
        dev((g) => {
          g.db!.inbound = g.db!.inbound.filter((x) => x.port !== 5432);
        }),
      );
      const r = await check(6_000); // Felix is stopped: nothing can converge
      assert.equal(r.ok, false);
      const bad = r.policy!.judgement.mismatches.map(
        (m) => `${m.probe.from} ${m.probe.to} ${kindLabel(m.probe)} ${m.observed?.outcome}`,
      );
      assert.ok(bad.includes("192_168_1_1 192_168_1_2 tcp/5432 connected"), bad.join("\n"));
      assert.ok(
        r.problems.some((p) => /tcp\/5432: expected .*dropped/.test(p)),
        r.problems[0],
      );
    } finally {
      await docker(host, ["start", ...felixes]);
    }
    await holds("Felix started again with the new rules");
    applyPolicy(opts, dev());
    await holds("back to dev");
  });

  it("restarts a hung Felix (SIGSTOP): the health check finds it, the host agent restarts it", async () => {
    const name = felixOf("host-2");
    const before = await inspect(name, "{{.State.StartedAt}}");
    process.kill(Number(await inspect(name, "{{.State.Pid}}")), "SIGSTOP");
    const deadline = Date.now() + 150_000;
    while ((await inspect(name, "{{.State.StartedAt}}")) === before) {
      assert.ok(Date.now() < deadline, "the hung Felix was not restarted within 150 s");
      await sleep(1000);
    }
    const log = readFileSync(new StateDir(stateRoot, opts.stack!).agentLog(1), "utf8");
    assert.match(log, /restarting felix container .*unhealthy/);
    await holds("the hung Felix restarted");
  });

  it("resyncs a restarted plugin (both roles) and ACL Manager with nothing lost", async () => {
    await restartLabPlugin(opts, "endpoint");
    await restartLabPlugin(opts, "network");
    await docker(host, ["restart", aclmgr()]);
    await holds("plugin and ACL Manager restarts");
  });
});
