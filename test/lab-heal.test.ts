// Self-healing on a real lab (root, real dockerd): endpoints are Docker containers with a
// restart policy, and each host runs the agent host preparation installed. After each fault
// the stack's policy must hold again — every allowed pair connects, every denied one is
// dropped, with the real Felix and ACL Manager — with no lab command and no `pulumi up`:
// `docker restart` of an endpoint, a crash of one (its process killed: the restart policy
// brings it back), a host reboot (its containers and Felix die, its taps and Calico state are
// flushed, then its boot path runs: host preparation, agent start), a restart of the Docker
// daemon, and a container labelled as an endpoint that has no script (the agent says so and
// goes on). For `dev` (the GCE fabric's routes) and `lab-bgp` (BIRD).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { labCheck } from "../lab/check.js";
import type { LabOptions } from "../lab/context.js";
import { docker } from "../lab/docker.js";
import { run, sleep } from "../lab/exec.js";
import {
  hostScriptActionFor,
  labDockerHost,
  labDown,
  labUp,
  restartLabDocker,
  startHostAgent,
  stopHostAgent,
} from "../lab/lab.js";
import type { LabPlan } from "../lab/plan.js";
import { StateDir } from "../lab/state.js";
import {
  leftovers,
  NOTHING,
  stackWith,
  systemSnapshot,
  type SystemSnapshot,
  LAB_SKIP,
} from "./helpers/lab.js";

const skip = LAB_SKIP;

// dev with the real Felix and ACL Manager (the policy must hold after every fault); lab-bgp
// with the routing stand-in (BIRD's routes must come back; its all-pairs ping matrix).
for (const [stack, felix] of [
  ["dev", "real"],
  ["lab-bgp", "stand-in"],
] as const) {
  describe(`lab self-healing with Docker endpoints (${stack})`, { skip }, () => {
    let opts: LabOptions;
    let plan: LabPlan;
    let stateRoot = "";
    let baseline: SystemSnapshot;
    let host = "";

    const agentLog = (hostName: string) => {
      const h = plan.hosts.find((x) => x.name === hostName)!;
      return readFileSync(new StateDir(stateRoot, opts.stack!).agentLog(h.index), "utf8");
    };
    const pidOf = async (container: string) =>
      Number((await docker(host, ["inspect", "-f", "{{.State.Pid}}", container])).stdout.trim());

    /**
     * Healed: every allowed pair connects and every denied one is dropped again (the real
     * Felix enforcing the stack's policy), with nothing but reads from the lab.
     */
    async function fullMatrix(after: string) {
      const report = await labCheck({ ...opts, timeoutMs: 90_000 });
      assert.deepEqual(report.problems, [], `after ${after}`);
      const pairs = plan.endpoints.length * (plan.endpoints.length - 1);
      if (felix === "stand-in") {
        assert.equal(report.matrix!.ok, pairs, `after ${after}`);
        return;
      }
      const j = report.policy!.judgement;
      assert.equal(j.counts.passed, j.counts.probes, `after ${after}`);
      assert.ok(j.counts.probes >= pairs);
    }

    /** Wait until `probe` holds (the fault took effect before healing is asserted). */
    async function until(what: string, probe: () => Promise<boolean>, ms = 15_000) {
      const deadline = Date.now() + ms;
      while (!(await probe())) {
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        await sleep(100);
      }
    }

    before(async () => {
      baseline = await systemSnapshot();
      stateRoot = await mkdtemp(path.join(tmpdir(), "lab-heal-"));
      opts = {
        stack: `t-heal-${stack}-${process.pid}`,
        stateRoot,
        config: stackWith(stack),
        felix,
      };
      plan = (await labUp(opts)).plan;
      host = labDockerHost(opts);
      await fullMatrix("up");
    });

    after(async () => {
      await labDown(opts);
      await rm(stateRoot, { recursive: true, force: true });
      assert.deepEqual(leftovers(baseline, await systemSnapshot()), NOTHING);
    });

    it("docker restart of an endpoint: the agent wires the new namespace", async () => {
      const e = plan.endpoints.find((x) => x.host === "host-2")!;
      const before = await pidOf(e.container);
      await docker(host, ["restart", e.container]);
      assert.notEqual(await pidOf(e.container), before, "a new process, a new namespace");
      await fullMatrix("docker restart");
      assert.match(
        agentLog("host-2"),
        new RegExp(`wired endpoint ${e.name} \\(container ${e.id.slice(0, 12)}, started\\)`),
      );
    });

    it("an endpoint that crashes: the restart policy brings it back, the agent wires it", async () => {
      // `docker kill` is a manual stop to Docker (no restart); a crash is the process dying.
      const e = plan.endpoints.find((x) => x.host === "host-1")!;
      const restarts = async () =>
        Number((await docker(host, ["inspect", "-f", "{{.RestartCount}}", e.container])).stdout);
      const count = await restarts();
      process.kill(await pidOf(e.container), "SIGKILL");
      await until("Docker to restart the container", async () => (await restarts()) > count);
      await fullMatrix("a crash");
    });

    it("a host reboot: containers die, taps and routes go; the boot path heals it", async () => {
      const h = "host-1";
      const mine = plan.endpoints.filter((e) => e.host === h);
      const ns = plan.hosts.find((x) => x.name === h)!.ns;
      // Down: the agent stops, the host's Calico network state goes (host script remove:
      // SNAT, peer address, unreachable route), its taps (and with them their routes) go.
      await stopHostAgent(opts, h);
      await hostScriptActionFor(opts, h, "remove");
      for (const e of mine) await run("ip", ["-n", ns, "link", "del", e.tap], { okCodes: [1] });
      // Its containers die — Felix too — and Docker brings them back by their restart
      // policy: the endpoints unwired, Felix starting from nothing.
      if (felix === "real") {
        const index = plan.hosts.find((x) => x.name === h)!.index;
        process.kill(await pidOf(`${plan.prefix}-h${index}-felix`), "SIGKILL");
      }
      const pids = await Promise.all(mine.map((e) => pidOf(e.container)));
      for (const p of pids) process.kill(p, "SIGKILL");
      await until("Docker to start the host's containers again", async () => {
        const now = await Promise.all(mine.map((e) => pidOf(e.container)));
        return now.every((p, i) => p > 0 && p !== pids[i]);
      });
      const links = await run("ip", ["-n", ns, "-o", "link", "show"]);
      for (const e of mine) assert.ok(!links.stdout.includes(e.tap), `${e.tap} stays gone`);
      // Boot: host preparation (installs the agent), then the agent's unit starts it.
      await hostScriptActionFor(opts, h, "apply");
      await startHostAgent(opts, h);
      await fullMatrix("a reboot");
      assert.match(agentLog(h), /pass \(agent start\): \d+ endpoint container\(s\) running/);
    });

    it("the Docker daemon restarts: its containers come back, the agents reconnect and wire them", async () => {
      const pids = await Promise.all(plan.endpoints.map((e) => pidOf(e.container)));
      await restartLabDocker(opts);
      await until("every endpoint container to run again", async () => {
        const now = await Promise.all(plan.endpoints.map((e) => pidOf(e.container)));
        return now.every((p, i) => p > 0 && p !== pids[i]);
      });
      await fullMatrix("a daemon restart");
      for (const h of plan.hosts) {
        assert.match(agentLog(h.name), /pass \(Docker is back\)/, h.name);
      }
    });

    it("an endpoint container with no script: the agent says so and goes on", async () => {
      const ghost = `ghost-${process.pid}`;
      await docker(host, [
        "run",
        "-d",
        "--name",
        ghost,
        "--net=none",
        "--label",
        "calico-docker.role=endpoint",
        "--label",
        "calico-docker.host=host-1",
        "--label",
        `calico-docker.endpoint=${ghost}`,
        "--label",
        `calico-lab.prefix=${plan.prefix}`,
        "calico-lab/util:latest",
      ]);
      await until("the agent to log the skip", async () =>
        new RegExp(`skipped endpoint ${ghost} .*no script`).test(agentLog("host-1")),
      );
      // It goes on: a restart of a real endpoint of the same host is still healed.
      const e = plan.endpoints.find((x) => x.host === "host-1")!;
      await docker(host, ["restart", e.container]);
      await fullMatrix("a container without a script, then a restart");
      await docker(host, ["rm", "-f", ghost]);
    });
  });
}
