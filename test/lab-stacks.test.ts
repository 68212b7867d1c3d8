// The lab for real (root): each stack up — with the real Felix and ACL Manager enforcing its
// policy, proven both ways (BGP on: lab-bgp's shape and lab-rr), or the routing stand-in and a
// full ping matrix (dev's routes, per endpoint and per host block; one LAN) — and down again
// with nothing left behind (namespaces, links, BIRD, plugin and Docker processes, state).
// Namespaces, addresses and traffic stay inside namespaces these tests create.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { CalicoConfig } from "../components/config.js";
import { labCheck, type CheckReport } from "../lab/check.js";
import type { LabOptions } from "../lab/context.js";
import { docker } from "../lab/docker.js";
import { labDockerHost, labDown, labNamespaces, labUp } from "../lab/lab.js";
import type { EndpointMode } from "../lab/plan.js";
import { labPrefix } from "../lab/plan.js";
import { labSshdPids } from "../lab/sshd.js";
import { StateDir } from "../lab/state.js";
import {
  configFromYaml,
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

/** Unique per run, so a lab someone has up (or a parallel run) is never touched. */
const stackName = (kind: string) => `t-${kind}-${process.pid}`;

async function cycle(
  kind: string,
  config: CalicoConfig,
  expect: (r: CheckReport) => void,
  endpoints: EndpointMode = "docker",
  felix: "real" | "stand-in" = "real",
) {
  const opts: LabOptions = { stack: stackName(kind), config, stateRoot, endpoints, felix };
  const before = await systemSnapshot();
  try {
    const up = await labUp(opts);
    assert.ok(existsSync(path.join(up.stateDir, "state.json")));
    const made = await labNamespaces(labPrefix(opts.stack!));
    if (endpoints === "docker") {
      // Hosts and fabric are namespaces; each endpoint a running container, labelled.
      assert.equal(made.length, 2 + config.hosts.length, "fabric, operator, hosts");
      const { stdout } = await docker(labDockerHost(opts), [
        "ps",
        "--filter",
        "label=calico-docker.role=endpoint",
        "--format",
        '{{.Label "calico-docker.role"}} {{.Label "calico-docker.host"}} {{.Label "calico-docker.ip"}}',
      ]);
      assert.deepEqual(
        stdout.trim().split("\n").sort(),
        config.endpoints.map((e) => `endpoint ${e.host} ${e.ip}`).sort(),
      );
    } else {
      assert.equal(made.length, 2 + config.hosts.length + config.endpoints.length);
    }
    if (felix === "real") {
      // Felix in every host, the ACL Manager on the controller, as containers of the lab.
      const { stdout } = await docker(labDockerHost(opts), [
        "ps",
        "--format",
        '{{.Label "calico-docker.role"}} {{.Label "calico-docker.host"}}',
      ]);
      const system = stdout.split("\n").filter((l) => /^(felix|aclmgr) /.test(l));
      assert.deepEqual(
        system.sort(),
        [...config.hosts.map((h) => `felix ${h.name}`), `aclmgr ${config.hosts[0]!.name}`].sort(),
      );
    }
    const report = await labCheck({ ...opts, timeoutMs: 90_000 });
    assert.deepEqual(report.problems, [], JSON.stringify(report.problems, null, 2));
    assert.equal(report.ok, true);
    const n = config.endpoints.length;
    if (felix === "real") {
      const j = report.policy!.judgement;
      assert.equal(j.ok, true);
      assert.equal(j.counts.passed, j.counts.probes);
      assert.ok(j.counts.allowed > 0, "some probes must connect");
      // Every ordered pair is probed (ICMP at least), allowed or denied.
      assert.ok(j.counts.probes >= n * (n - 1));
      assert.equal(report.matrix, undefined);
      assert.match(report.felix, /policy is enforced and tested/);
    } else {
      assert.equal(report.matrix!.pairs, n * (n - 1));
      assert.equal(report.matrix!.ok, report.matrix!.pairs);
      assert.equal(report.policy, undefined);
      assert.match(report.felix, /NO POLICY WAS TESTED/);
    }
    for (const h of report.routes) {
      assert.equal(h.present, h.expected, `${h.host} routes`);
      assert.equal(h.expected, config.endpoints.filter((e) => e.host !== h.host).length);
    }
    assert.ok(report.timings.fullMatrix !== undefined);
    expect(report);
  } finally {
    await labDown(opts);
  }
  const left = leftovers(before, await systemSnapshot());
  assert.deepEqual(left, NOTHING, "left behind");
  assert.deepEqual(labSshdPids(new StateDir(stateRoot, opts.stack!)), [], "sshd left running");
  assert.equal(existsSync(new StateDir(stateRoot, opts.stack!).dir), false, "state folder");
}

describe("lab stacks, up to a full matrix and down", { skip }, () => {
  before(async () => {
    stateRoot = await mkdtemp(path.join(tmpdir(), "lab-stacks-"));
    baseline = await systemSnapshot();
  });
  after(async () => {
    await rm(stateRoot, { recursive: true, force: true });
    const left = leftovers(baseline, await systemSnapshot());
    assert.deepEqual(left, NOTHING);
  });

  // dev with the real Felix, its policy proven both ways and `down` leaving nothing, is
  // test/lab-policy.test.ts's lab; here its routes with the stand-in's all-pairs matrix.
  it("dev stack, BGP off, one GCE route per endpoint", () =>
    cycle(
      "dev",
      stackWith("dev"),
      (r) => {
        assert.equal(r.bgp.enabled, false);
        assert.ok(r.routes.every((h) => h.via === "fabric"));
      },
      "docker",
      "stand-in",
    ));

  it("dev stack, BGP off, one GCE route per host block", () =>
    cycle(
      "blk",
      stackWith("dev", (raw) => {
        raw.gce = { ...(raw.gce as object), routeGranularity: "host-block" };
        raw.hosts = [
          { name: "host-1", zone: "asia-east1-a", endpointBlock: "192.168.1.0/30" },
          { name: "host-2", zone: "us-central1-a", endpointBlock: "192.168.1.64/26" },
        ];
        raw.endpoints = [
          { host: "host-1", ip: "192.168.1.1", group: "web" },
          { host: "host-1", ip: "192.168.1.2", group: "db" },
          { host: "host-2", ip: "192.168.1.65", group: "web" },
        ];
      }),
      (r) => assert.equal(r.bgp.enabled, false),
      "docker",
      "stand-in",
    ));

  it("dev stack with BGP on (GCE flavour: peer address, unreachable pool route)", () =>
    cycle(
      "bgp",
      stackWith("dev", (raw) => {
        raw.bgp = { enabled: true };
      }),
      (r) => {
        assert.equal(r.bgp.hosts.length, 2);
        for (const h of r.bgp.hosts) {
          assert.equal(h.running, true);
          assert.deepEqual(
            h.sessions.map((s) => s.info),
            ["Established"],
          );
        }
        assert.ok(r.routes.every((h) => h.via === "bgp"));
      },
    ));

  it("3-host route-reflector stack (lab-rr)", () =>
    cycle("rr", stackWith("lab-rr"), (r) => {
      const sessions = Object.fromEntries(r.bgp.hosts.map((h) => [h.host, h.sessions.length]));
      // The reflector talks to both clients; each client only to the reflector.
      assert.deepEqual(sessions, { "host-1": 2, "host-2": 1, "host-3": 1 });
    }));

  it("existing hosts on one LAN, full mesh with direct sessions (bare-namespace endpoints)", () =>
    cycle(
      "lan",
      configFromYaml(`
platform: existing
sshPrivateKey: { secret: true }
ssh: { user: core }
bgp: { session: direct }
hosts:
  - { name: a, address: 172.31.250.11 }
  - { name: b, address: 172.31.250.12 }
  - { name: c, address: 172.31.250.13 }
endpoints:
  - { host: a, ip: 192.168.10.1, group: g }
  - { host: b, ip: 192.168.20.1, group: g }
  - { host: c, ip: 192.168.30.1, group: g }
  - { host: c, ip: 192.168.30.2, group: g }
`),
      (r) => {
        assert.ok(r.bgp.hosts.every((h) => h.sessions.length === 2 && h.established));
      },
      "netns",
      "stand-in",
    ));

  it("down cleans up after an up killed half-way, and after its state file is lost", async () => {
    const stack = stackName("crash");
    const file = path.join(stateRoot, `Pulumi.${stack}.yaml`);
    await writeFile(
      file,
      (await import("node:fs")).readFileSync(path.join(root, "Pulumi.lab-rr.yaml"), "utf8"),
    );
    const before = await systemSnapshot();
    const prefix = labPrefix(stack);
    // 1. kill -9 right after the namespaces exist: some wired, some not.
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "lab/cli.ts",
        "up",
        "--stack",
        stack,
        "--stack-file",
        file,
        "--state-dir",
        stateRoot,
      ],
      { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (/ok fabric: bridge/.test(out)) {
          child.kill("SIGKILL");
          resolve();
        }
      });
      child.on("exit", () => reject(new Error(`up ended before it could be killed:\n${out}`)));
    });
    await new Promise((r) => child.on("exit", r));
    assert.ok((await labNamespaces(prefix)).length > 0, "the killed up left namespaces");
    await labDown({ stack, stateRoot });
    assert.deepEqual(leftovers(before, await systemSnapshot()), NOTHING);

    // 2. a complete lab whose state file is gone: found by name prefix and process scan.
    const opts = { stack, stateRoot, stackFile: file };
    await labUp(opts);
    assert.equal(
      (await systemSnapshot()).birds.filter((b) => !before.birds.includes(b)).length,
      3,
      "three BIRDs running",
    );
    await rm(new StateDir(stateRoot, stack).file);
    await labDown(opts);
    assert.deepEqual(leftovers(before, await systemSnapshot()), NOTHING);
  });
});
