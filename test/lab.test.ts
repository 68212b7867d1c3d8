// The lab's plan and parsers (no root needed): namespace and interface names, the fabric's
// addresses and routes per platform, parsing birdc and kernel routes, the CLI's refusals.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ipaddr from "ipaddr.js";
import { buildModel, syntheticEndpointId, tapName } from "../components/model.js";
import { NETNS_NAME_RE, netnsLinkName } from "../components/render/index.js";
import { longestMatch, parseBirdProtocols } from "../status/engine.js";
import { agentVerdicts } from "../lab/agent.js";
import { dockerHostFromEnv, endpointCreateArgs, isStaticElf, UTIL_IMAGE } from "../lab/docker.js";
import { hostLinkCommands } from "../lab/lab.js";
import { StateDir } from "../lab/state.js";
import { buildPlan, isLabNamespace, labPrefix, planNamespaces } from "../lab/plan.js";
import { configFromYaml, stackWith } from "./helpers/lab.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const existingYaml = (hosts: string[], pool = "192.168.0.0/16") => `
platform: existing
endpointPool: ${pool}
sshPrivateKey: { secret: true }
ssh: { user: core }
bgp: { session: direct }
hosts:
${hosts.map((a, i) => `  - { name: h${i + 1}, address: ${a} }`).join("\n")}
endpoints:
  - { host: h1, ip: 192.168.5.1, group: a }
  - { host: h2, ip: 192.168.6.1, group: a }
`;

describe("lab names", () => {
  it("gives each stack its own short prefix that no other stack's names start with", () => {
    const stacks = ["dev", "dev-x", "dev.x", "lab-rr", "lab-blocks", "a", "A"];
    const prefixes = stacks.map(labPrefix);
    assert.equal(new Set(prefixes).size, stacks.length);
    for (const p of prefixes) assert.match(p, /^cl[0-9a-f]{6}$/);
    assert.equal(labPrefix("dev"), labPrefix("dev"), "stable across runs");
    for (const a of prefixes) {
      for (const b of prefixes.filter((x) => x !== a)) {
        assert.ok(!`${b}-fabric`.startsWith(`${a}-`), `${b} names look like ${a}'s`);
      }
    }
  });

  it("names every namespace of the dev stack with its prefix, uniquely, as the scripts accept", () => {
    const plan = buildPlan(buildModel(stackWith("dev")), "dev");
    const all = planNamespaces(plan);
    assert.equal(all.length, 1 + 1 + 2 + 3, "fabric, operator, hosts, endpoints");
    assert.equal(new Set(all).size, all.length);
    for (const ns of all) assert.ok(isLabNamespace(plan, ns), ns);
    assert.ok(!isLabNamespace(plan, `${labPrefix("dev-x")}-fabric`));
    for (const e of plan.endpoints) {
      assert.match(e.ns, new RegExp(NETNS_NAME_RE), `${e.ns} must pass the script's --netns check`);
      assert.equal(e.id, syntheticEndpointId(e.name));
      assert.equal(e.tap, tapName(e.id));
      assert.ok(e.tap.length <= 15, "an interface name has at most 15 characters");
    }
  });

  it("falls back to an index for endpoint names too long for a namespace name", () => {
    const long = "e".repeat(60);
    const config = stackWith("dev", (raw) => {
      (raw.endpoints as Record<string, unknown>[])[0]!.name = long;
    });
    const plan = buildPlan(buildModel(config), "dev");
    const e = plan.endpoints.find((x) => x.name === long)!;
    assert.equal(e.ns, `${plan.prefix}-x0`);
    assert.match(e.ns, new RegExp(NETNS_NAME_RE));
  });
});

describe("lab fabric plan", () => {
  it("makes the GCE fabric a router: regional gateways on the bridge, /32 hosts, static routes", () => {
    const model = buildModel(stackWith("dev"));
    const plan = buildPlan(model, "dev");
    assert.equal(plan.fabric, "router");
    assert.equal(plan.bgp, false);
    assert.deepEqual(plan.bridgeAddresses, ["10.240.0.1/17", "10.240.128.1/17"]);
    assert.deepEqual(
      plan.hosts.map((h) => [h.name, h.address, h.prefixLength, h.gateway]),
      [
        ["host-1", "10.240.0.2", 32, "10.240.0.1"],
        ["host-2", "10.240.128.2", 32, "10.240.128.1"],
      ],
    );
    // One /32 per endpoint towards its host, as the stack's GCE routes.
    assert.deepEqual(
      plan.fabricRoutes.map((r) => [r.dest, r.via]),
      model.endpoints.map((e) => [
        `${e.ip}/32`,
        model.hosts.find((h) => h.name === e.host)!.internalAddress,
      ]),
    );
    assert.deepEqual(hostLinkCommands(plan.hosts[0]!), [
      "link set lo up",
      "addr add 10.240.0.2/32 dev eth0",
      "link set eth0 up",
      "route add 10.240.0.1 dev eth0 scope link",
      "route add default via 10.240.0.1 dev eth0",
    ]);
  });

  it("routes whole host blocks with host-block granularity", () => {
    const plan = buildPlan(buildModel(stackWith("lab-blocks")), "lab-blocks");
    assert.deepEqual(
      plan.fabricRoutes.map((r) => [r.dest, r.via]),
      [
        ["192.168.1.0/26", "10.240.0.2"],
        ["192.168.1.64/26", "10.240.128.2"],
      ],
    );
  });

  it("puts existing hosts on one LAN whose prefix covers every host address", () => {
    const near = buildPlan(
      buildModel(configFromYaml(existingYaml(["10.0.0.11", "10.0.0.12"]))),
      "t",
    );
    assert.equal(near.fabric, "lan");
    assert.deepEqual(near.bridgeAddresses, []);
    assert.deepEqual(near.fabricRoutes, []);
    assert.deepEqual(
      near.hosts.map((h) => [h.address, h.prefixLength, h.gateway]),
      [
        ["10.0.0.11", 24, undefined],
        ["10.0.0.12", 24, undefined],
      ],
    );
    const far = buildPlan(buildModel(configFromYaml(existingYaml(["10.0.0.11", "10.3.9.1"]))), "t");
    const bits = far.hosts[0]!.prefixLength;
    assert.equal(bits, 14);
    for (const h of far.hosts) {
      assert.ok(ipaddr.IPv4.parse(h.address).match(ipaddr.IPv4.parse("10.0.0.11"), bits));
    }
  });

  it("refuses a LAN that would overlap the endpoint pool, naming both", () => {
    const config = configFromYaml(existingYaml(["10.0.0.11", "192.169.0.1"], "192.168.0.0/16"));
    assert.throws(
      () => buildPlan(buildModel(config), "t"),
      /internalAddress.*overlaps endpointPool 192\.168\.0\.0\/16/,
    );
  });
});

describe("lab Docker endpoints (plan and arguments)", () => {
  it("makes endpoints containers: namespace links named as the endpoint script names them", () => {
    const plan = buildPlan(buildModel(stackWith("dev")), "dev", "docker");
    assert.equal(plan.endpointMode, "docker");
    assert.deepEqual(planNamespaces(plan), [
      plan.fabricNs,
      plan.operator.ns,
      ...plan.hosts.map((h) => h.ns),
    ]);
    for (const e of plan.endpoints) {
      assert.equal(e.ns, netnsLinkName(e.name));
      assert.match(e.ns, new RegExp(NETNS_NAME_RE));
    }
  });

  it("runs each endpoint container as production does: --net=none, labels, restart policy", () => {
    const plan = buildPlan(buildModel(stackWith("dev")), "dev", "docker");
    const e = plan.endpoints.find((x) => x.name === "192_168_1_3")!;
    const args = endpointCreateArgs(e, plan.prefix);
    assert.deepEqual(args.slice(0, 6), [
      "create",
      "--name",
      "192_168_1_3",
      "--net=none",
      "--restart",
      "unless-stopped",
    ]);
    assert.equal(args.at(-1), UTIL_IMAGE);
    const labels = args.flatMap((a, i) => (args[i - 1] === "--label" ? [a] : []));
    assert.deepEqual(labels, [
      "calico-docker.role=endpoint",
      "calico-docker.host=host-2",
      "calico-docker.endpoint=192_168_1_3",
      "calico-docker.ip=192.168.1.3",
      "calico-docker.group=web",
      `calico-lab.prefix=${plan.prefix}`,
    ]);
  });

  it("keeps every unix socket path of its dockerd under 108 bytes, however deep the state", () => {
    for (const root of ["/tmp/x", `/tmp/${"d".repeat(120)}`]) {
      const state = new StateDir(root, "dev");
      const containerd = `${state.dockerExecRoot("cl000000")}/containerd/containerd.sock.ttrpc`;
      assert.ok(containerd.length < 108, containerd);
      assert.ok(state.dockerSocket("cl000000").length < 108);
    }
    assert.ok(new StateDir("/tmp/x", "dev").dockerSocket("cl000000").startsWith("/tmp/x/dev/"));
  });

  it("takes DOCKER_HOST only for a daemon on this machine", () => {
    assert.equal(dockerHostFromEnv({}), undefined);
    assert.equal(dockerHostFromEnv({ DOCKER_HOST: "unix:///run/d.sock" }), "unix:///run/d.sock");
    assert.throws(
      () => dockerHostFromEnv({ DOCKER_HOST: "tcp://10.0.0.1:2375" }),
      /DOCKER_HOST="tcp:\/\/10\.0\.0\.1:2375": the lab needs a daemon on this machine/,
    );
  });

  it("tells a static busybox from a dynamic binary", { skip: !existsSync("/bin/busybox") }, () => {
    assert.equal(isStaticElf("/bin/busybox"), true);
    assert.equal(isStaticElf(process.execPath), false);
  });
});

describe("lab parsers", () => {
  it("reads the agents' verdicts per endpoint and container id, the last line counting", () => {
    const verdicts = agentVerdicts([
      "[calico-agent] host-1: pass (agent start): 0 endpoint container(s) running\n" +
        "[calico-agent] host-1: failed to wire endpoint web-1 (container 0123456789ab, started): x add exited 1: boom\n" +
        "[calico-agent] host-1: wired endpoint web-1 (container 0123456789ab, started) in 80 ms\n",
      "[calico-agent] host-2: skipped endpoint ghost (container aaaaaaaaaaaa, started): no script /s/endpoint-ghost.sh\n" +
        "[calico-agent] host-2: failed to wire endpoint db-1 (container bbbbbbbbbbbb, once): x add exited 1: no\n",
    ]);
    assert.deepEqual(
      [...verdicts.entries()].map(([k, v]) => [k.replace("\0", "@"), v.endpoint, v.ok]),
      [
        ["web-1@0123456789ab", "web-1", true],
        ["ghost@aaaaaaaaaaaa", "ghost", false],
        ["db-1@bbbbbbbbbbbb", "db-1", false],
      ],
    );
  });

  it("reads BGP sessions from birdc show protocols (BIRD 1.6 layout)", () => {
    const text = [
      "BIRD 1.6.8 ready.",
      "name     proto    table    state  since       info",
      "device1  Device   master   up     06:01:12    ",
      "kernel1  Kernel   master   up     06:01:12    ",
      "direct1  Direct   master   up     06:01:12    ",
      "peer_host_2 BGP      master   up     06:01:14    Established   ",
      "peer_host_3 BGP      master   start  06:01:12    Connect       Socket: Connection refused",
    ].join("\n");
    assert.deepEqual(parseBirdProtocols(text), [
      { name: "peer_host_2", state: "up", info: "Established" },
      { name: "peer_host_3", state: "start", info: "Connect       Socket: Connection refused" },
    ]);
  });

  it("picks the longest matching kernel route", () => {
    const routes = [
      { dst: "default", gateway: "10.240.0.1" },
      { dst: "192.168.0.0/16", type: "unreachable" },
      { dst: "192.168.1.3", gateway: "10.240.0.1", protocol: "bird" },
    ];
    assert.equal(longestMatch(routes, "192.168.1.3")?.protocol, "bird");
    assert.equal(longestMatch(routes, "192.168.1.4")?.type, "unreachable");
    assert.equal(longestMatch(routes, "8.8.8.8")?.dst, "default");
    assert.equal(longestMatch([], "8.8.8.8"), undefined);
  });
});

describe("lab CLI refusals", { concurrency: true }, () => {
  const cli = (args: string[], asNobody = false) => {
    const argv = ["--import", "tsx", path.join(root, "lab/cli.ts"), ...args];
    const r = asNobody
      ? spawnSync(
          "setpriv",
          ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, ...argv],
          { cwd: root, encoding: "utf8" },
        )
      : spawnSync(process.execPath, argv, { cwd: root, encoding: "utf8" });
    return { code: r.status, stderr: r.stderr };
  };

  it(
    "says clearly that it needs root",
    { skip: process.getuid?.() !== 0 && "setpriv needs root" },
    () => {
      const r = cli(["down", "--stack", "no-such-lab"], true);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /needs root.*sudo npm run lab/);
    },
  );

  it("names the bad key and value of an invalid stack file", async () => {
    const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const dir = await mkdtemp(path.join(tmpdir(), "lab-cli-"));
    try {
      const file = path.join(dir, "Pulumi.bad.yaml");
      await writeFile(
        file,
        "config:\n  calico-docker:hosts:\n    - { name: Host_1 }\n  calico-docker:gce:\n    sshSourceRanges: [203.0.113.0/24]\n",
      );
      const r = cli(["up", "--stack", "bad", "--stack-file", file, "--state-dir", dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /hosts\[0\]\.name: .*RFC 1035.*"Host_1"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("names the file and line of a stack file that is not YAML, with no stack trace", async () => {
    const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const dir = await mkdtemp(path.join(tmpdir(), "lab-cli-"));
    try {
      const file = path.join(dir, "Pulumi.broken.yaml");
      await writeFile(file, "config:\n  calico-docker:hosts: [\n  calico-docker:hosts: 1\n");
      const r = cli(["up", "--stack", "broken", "--stack-file", file, "--state-dir", dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, "\\.")}, line \\d+`));
      assert.doesNotMatch(r.stderr, /\n\s+at /, "a stack trace");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("tells the operator to run up first when there is no lab to check", () => {
    const r = cli(["check", "--stack", "no-such-lab", "--state-dir", "/nonexistent"]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /no lab is up for stack no-such-lab.*npm run lab -- up --stack no-such-lab/s,
    );
  });

  it("rejects a bad --timeout by value", () => {
    const r = cli(["check", "--timeout", "soon"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--timeout must be a positive number of seconds, got "soon"/);
  });
});
