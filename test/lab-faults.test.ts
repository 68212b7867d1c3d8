// Fault checks on a real lab (root): the dev stack with BGP on. A stopped BIRD withdraws its
// host's endpoint routes elsewhere and the matrix fails for exactly the pairs that cross that
// host; a restart recovers; an endpoint removed with the wiring script leaves no interface or
// route; the wiring and preparation scripts run twice give the same state.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { labCheck, routeTable } from "../lab/check.js";
import { choosePinger, pingMatrix } from "../lab/ping-matrix.js";
import { run, runIn, sleep } from "../lab/exec.js";
import { startBird, stopBird } from "../lab/bird.js";
import type { LabOptions } from "../lab/context.js";
import {
  endpointScriptAction,
  felixStandIn,
  hostScriptActionFor,
  labDockerHost,
  labDown,
  labUp,
} from "../lab/lab.js";
import { docker } from "../lab/docker.js";
import type { LabPlan } from "../lab/plan.js";
import { labNamespaceTransport, labTarget } from "../lab/probes.js";
import { runStatus } from "../status/engine.js";
import {
  leftovers,
  NOTHING,
  stackWith,
  systemSnapshot,
  type SystemSnapshot,
  LAB_SKIP,
} from "./helpers/lab.js";

const skip = LAB_SKIP;

let opts: LabOptions;
let plan: LabPlan;
let stateRoot = "";
let baseline: SystemSnapshot;
let dockerHost = "";

const hostNs = (name: string) => plan.hosts.find((h) => h.name === name)!.ns;
const endpoint = (name: string) => plan.endpoints.find((e) => e.name === name)!;

/** Routes learnt over BGP in a host namespace, by destination. */
async function birdRoutes(host: string): Promise<string[]> {
  return (await routeTable(hostNs(host)))
    .filter((r) => r.protocol === "bird")
    .map((r) => r.dst)
    .sort();
}

async function eventually(what: string, probe: () => Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Everything in a namespace that the scripts could change, as text. */
async function nsState(ns: string): Promise<string> {
  const parts = await Promise.all([
    run("ip", ["-n", ns, "-o", "link", "show"]),
    run("ip", ["-n", ns, "-o", "addr", "show"]),
    run("ip", ["-n", ns, "route", "show", "table", "all"]),
    runIn(ns, "iptables-save", []),
    runIn(ns, "sysctl", ["net.ipv4.ip_forward"]),
  ]);
  return parts
    .map((p) => p.stdout)
    .join("\n")
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .map((l) => l.replace(/\[\d+:\d+\]/g, "[counters]"))
    .join("\n");
}

describe("lab fault checks (dev stack, BGP on)", { skip }, () => {
  before(async () => {
    baseline = await systemSnapshot();
    stateRoot = await mkdtemp(path.join(tmpdir(), "lab-faults-"));
    opts = {
      stack: `t-fault-${process.pid}`,
      stateRoot,
      // Routing faults (BIRD, wiring scripts): the stand-in's all-pairs matrix shows exactly
      // the pairs a fault takes away; the policy is proven in lab-policy and lab-heal.
      felix: "stand-in",
      config: stackWith("dev", (raw) => {
        raw.bgp = { enabled: true };
      }),
    };
    plan = (await labUp(opts)).plan;
    dockerHost = labDockerHost(opts);
    const report = await labCheck({ ...opts, timeoutMs: 30_000 });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
  });

  after(async () => {
    await labDown(opts);
    await rm(stateRoot, { recursive: true, force: true });
    assert.deepEqual(leftovers(baseline, await systemSnapshot()), NOTHING);
  });

  it("a stopped BIRD: its routes are withdrawn and exactly the pairs across it fail; a restart recovers", async () => {
    assert.deepEqual(await birdRoutes("host-1"), ["192.168.1.3"]);
    await stopBird(opts, "host-2");
    await eventually(
      "host-1 to drop host-2's endpoint route",
      async () => (await birdRoutes("host-1")).length === 0,
    );
    const { target } = labTarget(opts);
    const status = await runStatus(target, labNamespaceTransport(plan));
    assert.equal(status.hosts.find((h) => h.host === "host-2")!.bgp!.running, false);
    const host1 = status.hosts.find((h) => h.host === "host-1")!;
    assert.doesNotMatch(host1.bgp!.sessions[0]!.info, /^Established/);

    const matrix = await pingMatrix(plan, { deadlineMs: 2000, pinger: await choosePinger() });
    const onHost2 = new Set(plan.endpoints.filter((e) => e.host === "host-2").map((e) => e.name));
    const expected = plan.endpoints
      .flatMap((a) => plan.endpoints.filter((b) => b !== a).map((b) => [a.name, b.name]))
      .filter(([a, b]) => onHost2.has(a!) !== onHost2.has(b!))
      .map(([a, b]) => `${a} -> ${b}`)
      .sort();
    assert.deepEqual(matrix.failed.map((f) => `${f.from} -> ${f.to}`).sort(), expected);
    assert.equal(matrix.ok, matrix.pairs - expected.length);
    assert.ok(matrix.ok > 0, "same-host pairs still answer");

    await startBird(opts, "host-2");
    const report = await labCheck({ ...opts, timeoutMs: 30_000 });
    assert.deepEqual(report.problems, []);
    assert.equal(report.matrix!.ok, report.matrix!.pairs);
  });

  it("an endpoint removed with the wiring script leaves no interface or route, here or elsewhere", async () => {
    const e = endpoint("192_168_1_3");
    const out = await endpointScriptAction(opts, e.name, "remove");
    assert.match(out, /deleted tap/);
    const links = await run("ip", ["-n", hostNs("host-2"), "-o", "link", "show"]);
    assert.ok(!links.stdout.includes(e.tap), links.stdout);
    const routes = await run("ip", ["-n", hostNs("host-2"), "route", "show", "table", "all"]);
    assert.ok(!routes.stdout.includes(e.ip), routes.stdout);
    // The script's remove also drops its namespace link: look in through the container's pid.
    const pid = (
      await docker(dockerHost, ["inspect", "-f", "{{.State.Pid}}", e.container])
    ).stdout.trim();
    assert.ok(!existsSync(`/var/run/netns/${e.ns}`), "the namespace link is gone");
    const inside = await run("nsenter", [
      `--net=/proc/${pid}/ns/net`,
      "--",
      "ip",
      "-o",
      "link",
      "show",
    ]);
    assert.deepEqual(
      inside.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(":")[1]!.trim()),
      ["lo"],
    );
    // The other host loses the route over BGP (BIRD's kernel scan, then the withdrawal).
    await eventually(
      "host-1 to drop the removed endpoint's route",
      async () => !(await birdRoutes("host-1")).includes(e.ip),
    );
    // Removing again changes nothing and does not fail.
    const again = await endpointScriptAction(opts, e.name, "remove");
    assert.match(again, /nothing to delete/);

    // Wired again, it is reachable again from everywhere.
    await endpointScriptAction(opts, e.name, "add");
    await felixStandIn(plan, 4, [e.name]);
    const report = await labCheck({ ...opts, timeoutMs: 30_000 });
    assert.deepEqual(report.problems, []);
  });

  it("the wiring and preparation scripts run twice give the same state", async () => {
    const e = endpoint("192_168_1_1");
    const host = hostNs("host-1");
    const before = [await nsState(host), await nsState(e.ns)];
    const wiring = await endpointScriptAction(opts, e.name, "add");
    assert.match(wiring, /veth pair .* is in place/);
    assert.doesNotMatch(wiring, /created|deleted|set to|has address/);
    const prep = await hostScriptActionFor(opts, "host-1", "apply");
    assert.doesNotMatch(prep, /created|added|set to|now jumps|wrote/, prep);
    assert.deepEqual([await nsState(host), await nsState(e.ns)], before);

    // remove twice, then apply again: back to the same state.
    await hostScriptActionFor(opts, "host-1", "remove");
    const removedOnce = await nsState(host);
    await hostScriptActionFor(opts, "host-1", "remove");
    assert.equal(await nsState(host), removedOnce);
    assert.doesNotMatch(removedOnce, /CALICO-SNAT|unreachable 192\.168\.0\.0\/16|peer 10\.240/);
    await hostScriptActionFor(opts, "host-1", "apply");
    // Without the peer address BIRD cannot resolve its next hops (the route turns
    // unreachable); with it back, BIRD re-resolves within a kernel scan.
    await eventually(
      "host-1 to be as it was before remove",
      async () => (await nsState(host)) === before[0],
    ).catch(async () => assert.equal(await nsState(host), before[0]));
  });
});
