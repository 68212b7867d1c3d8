// npm run status without a lab: the SSH client's options, the private key file, the stack
// outputs it reads, the per-host command (real shellcheck), and how problems explain others.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, statSync, readFileSync } from "node:fs";
import { buildModel } from "../components/model.js";
import {
  correlate,
  gatherScript,
  parseSections,
  type HostStatus,
  type Problem,
  type StatusTarget,
} from "../status/engine.js";
import { AGENT_UNIT, parseOutputs, stackTarget, StatusError } from "../status/stack.js";
import { PrivateKeyFile, sshArgv } from "../status/transport.js";
import { stackWith } from "./helpers/lab.js";

const model = buildModel(
  stackWith("dev", (raw) => {
    raw.bgp = { enabled: true };
  }),
);
const ids = Object.fromEntries(
  model.endpoints.map((e, i) => [
    e.name,
    String(i + 1)
      .repeat(64)
      .slice(0, 64),
  ]),
);
const outputs = {
  hosts: [
    { name: "host-1", controller: true, externalAddress: "198.51.100.7", sshUser: "core" },
    { name: "host-2", controller: false, externalAddress: "198.51.100.8", sshUser: "core" },
  ],
  endpoints: model.endpoints.map((e) => ({ name: e.name, containerId: ids[e.name]! })),
  sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
};

describe("status: SSH", () => {
  it("checks host keys strictly, never prompts, bounds the connect time, quotes the command", () => {
    const argv = sshArgv(
      { hosts: [], keyFile: "/k", knownHostsFile: "/kh", connectTimeoutS: 3 },
      { name: "h", address: "198.51.100.7", user: "core" },
      ["printf", "%s|", "a b", "it's", "$HOME;x"],
    );
    const opts = argv.filter((_, i) => argv[i - 1] === "-o");
    for (const o of [
      "BatchMode=yes",
      "StrictHostKeyChecking=yes",
      "UserKnownHostsFile=/kh",
      "GlobalKnownHostsFile=/dev/null",
      "IdentitiesOnly=yes",
      "ConnectTimeout=3",
    ]) {
      assert.ok(opts.includes(o), o);
    }
    assert.deepEqual(argv.slice(-3, -1), ["--", "198.51.100.7"]);
    // The remote shell gets one line; it must give the words back unchanged.
    const out = execFileSync("sh", ["-c", argv.at(-1)!], { encoding: "utf8" });
    assert.equal(out, "a b|it's|$HOME;x|");
  });

  it("keeps the key in a 0600 file in a fresh 0700 folder, removed afterwards", () => {
    const a = new PrivateKeyFile(outputs.sshPrivateKey);
    const b = new PrivateKeyFile(outputs.sshPrivateKey);
    try {
      assert.notEqual(a.dir, b.dir, "an unpredictable folder each time");
      assert.equal(statSync(a.dir).mode & 0o777, 0o700);
      assert.equal(statSync(a.file).mode & 0o777, 0o600);
      assert.equal(readFileSync(a.file, "utf8"), outputs.sshPrivateKey);
    } finally {
      a.remove();
      b.remove();
    }
    assert.equal(existsSync(a.dir), false);
    assert.equal(existsSync(b.dir), false);
  });
});

describe("status: the stack's outputs", () => {
  it("reads addresses, users and container ids; --user overrides; root needs no sudo", () => {
    const o = parseOutputs(JSON.stringify(outputs), "test");
    const { target, hosts } = stackTarget("dev", model, o);
    assert.deepEqual(
      hosts.map((h) => `${h.user}@${h.address}`),
      ["core@198.51.100.7", "core@198.51.100.8"],
    );
    assert.deepEqual(target.sudo(model.hosts[0]!), ["sudo", "-n"]);
    assert.ok("argv" in target.agent);
    assert.deepEqual(target.agent.argv(model.hosts[0]!), ["systemctl", "is-active", AGENT_UNIT]);
    const asRoot = stackTarget("dev", model, o, { user: "root" });
    assert.deepEqual(asRoot.target.sudo(model.hosts[0]!), []);
  });

  it("says what is wrong with outputs it cannot use", () => {
    assert.throws(() => parseOutputs("{", "out.json"), /out\.json: not JSON/);
    assert.throws(
      () => parseOutputs(JSON.stringify({ hosts: [{ name: "host-1" }] }), "out.json"),
      (e: Error) =>
        e instanceof StatusError && /out\.json: hosts\.0\.externalAddress/.test(e.message),
    );
    const missing = parseOutputs(
      JSON.stringify({ ...outputs, hosts: outputs.hosts.slice(0, 1) }),
      "x",
    );
    assert.throws(
      () => stackTarget("dev", model, missing),
      /host host-2 .* not in the stack's outputs/,
    );
  });
});

describe("status: the per-host command", () => {
  const { target } = stackTarget("dev", model, parseOutputs(JSON.stringify(outputs), "t"));
  const lab: StatusTarget = {
    ...target,
    docker: {
      host: "unix:///tmp/it's/docker.sock",
      filters: (h) => [`label=calico-docker.host=${h.name}`, "label=calico-lab.prefix=cl0"],
    },
    agent: { name: "agent", argv: () => ["pgrep", "-f", "--", "/tmp/calico-agent-h0.sh run"] },
    felix: "x",
    birdc: () => ["birdc", "-s", "/tmp/it's here/bird.ctl", "show", "protocols"],
  };

  it("passes shellcheck as sh, for a production host and a lab host", () => {
    for (const t of [target, lab]) {
      for (const h of model.hosts) {
        const r = spawnSync("shellcheck", ["-s", "sh", "-"], { input: gatherScript(t, h) });
        assert.equal(r.status, 0, `${h.name}: ${r.stdout}${r.stderr}`);
      }
    }
  });

  it("finds an attached endpoint's container by name (it carries none of our labels)", () => {
    const attachedModel = buildModel(
      stackWith("dev", (raw) => {
        const eps = raw.endpoints as Record<string, unknown>[];
        eps[0] = { ...eps[0], name: "legacy-web", attach: true };
      }),
    );
    const h = attachedModel.hosts.find((x) => x.endpoints.some((e) => e.name === "legacy-web"))!;
    const t: StatusTarget = {
      ...lab,
      model: attachedModel,
      endpointIds: new Map(attachedModel.endpoints.map((e) => [e.name, "a".repeat(64)])),
    };
    const script = gatherScript(t, h);
    assert.match(script, /--filter 'name=\^\/legacy-web\$'/);
    const r = spawnSync("shellcheck", ["-s", "sh", "-"], { input: script });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    const other = attachedModel.hosts.find((x) => x !== h)!;
    assert.doesNotMatch(gatherScript(t, other), /name=/, "another host lists no attached name");
  });

  it("prints sections with their exit codes, whatever a command prints", () => {
    const out = execFileSync("/bin/sh", ["-c", gatherScript(lab, model.hosts[0]!)], {
      encoding: "utf8",
      env: { PATH: "/nonexistent" },
    });
    const s = parseSections(out);
    assert.ok(s.has("routes") && s.has("bird") && s.has("data") && s.has("containers"));
    assert.notEqual(s.get("routes")!.rc, 0, "no ip on this PATH: a failure, not a crash");
  });
});

describe("status: a problem that another explains is its consequence", () => {
  const problem = (host: string, check: Problem["check"], subject: string): Problem => ({
    host,
    check,
    subject,
    expected: "x",
    found: "y",
  });
  const host = (name: string, problems: Problem[], reachable = true): HostStatus => ({
    host: name,
    controller: false,
    reachable,
    durationMs: 0,
    checks: [],
    problems,
    containers: [],
    routes: [],
  });
  const e2 = model.endpoints.find((e) => e.host === "host-2")!;
  const e1 = model.endpoints.find((e) => e.host === "host-1")!;

  it("sessions and BGP routes follow a stopped BIRD; routes follow an unwired endpoint", () => {
    const hosts = [
      host("host-1", [
        problem("host-1", "bgp", "session host-2"),
        problem("host-1", "routes", `${e2.name} (${e2.ip})`),
      ]),
      host("host-2", [
        problem("host-2", "bgp", "bird"),
        problem("host-2", "routes", `${e1.name} (${e1.ip})`),
      ]),
    ];
    correlate(model, hosts);
    const all = hosts.flatMap((h) => h.problems);
    assert.deepEqual(
      all.map((p) => p.causedBy),
      ["host-2/bgp/bird", "host-2/bgp/bird", undefined, "host-2/bgp/bird"],
    );

    const wiring = [
      host("host-1", [problem("host-1", "routes", `${e2.name} (${e2.ip})`)]),
      host("host-2", [problem("host-2", "endpoints", e2.name)]),
    ];
    correlate(model, wiring);
    assert.equal(wiring[0]!.problems[0]!.causedBy, `host-2/endpoints/${e2.name}`);
    assert.equal(wiring[1]!.problems[0]!.causedBy, undefined);
  });

  it("a route problem with nothing behind it stays a problem of its own", () => {
    const hosts = [
      host("host-1", [problem("host-1", "routes", `${e2.name} (${e2.ip})`)]),
      host("host-2", []),
    ];
    correlate(model, hosts);
    assert.equal(hosts[0]!.problems[0]!.causedBy, undefined);
  });
});
