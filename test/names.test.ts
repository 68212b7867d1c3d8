// GCE names per project and stack: unique, within GCE's 63 characters, and a name that
// would overflow is a config error naming the key, before anything is created.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../components/config.js";
import { gceNameIssues, gceNames } from "../components/names.js";
import { devRaw } from "./helpers/stacks.js";

const GCE_NAME = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

describe("gceNames", () => {
  it("gives every stack its own prefix, tag and names, even when the names slug alike", () => {
    const deployments = [
      { project: "calico-docker", stack: "dev" },
      { project: "calico-docker", stack: "staging" },
      { project: "calico-docker", stack: "dev_1" },
      { project: "calico-docker", stack: "dev.1" },
      { project: "DEV-1", stack: "dev-1" },
      { project: "other", stack: "dev" },
    ];
    const all = deployments.map(gceNames);
    for (const key of ["prefix", "hostTag", "network"] as const) {
      assert.equal(new Set(all.map((n) => n[key])).size, deployments.length, key);
    }
    assert.equal(new Set(all.map((n) => n.instance("host-1"))).size, deployments.length);
    for (const n of all) {
      for (const name of [n.hostTag, n.network, n.firewall("zeromq"), n.route("calico-ep-1-2-3-4")])
        assert.match(name, GCE_NAME);
    }
  });
  it("keeps a long or odd stack name short and valid", () => {
    const n = gceNames({ project: "p", stack: "9_Very.Long_Stack-Name-For-Integration-Tests" });
    assert.match(n.prefix, /^calico-s9-very-long-stack-n-[0-9a-f]{6}$/);
    assert.ok(n.firewall("endpoints").length <= 63);
  });
});

describe("name checks at config load", () => {
  const d = { project: "calico-docker", stack: "dev" };
  it("the dev stack's names all fit", () => {
    assert.deepEqual(gceNameIssues(loadConfig(devRaw()), d), []);
  });
  it("a host name that makes the instance name overflow is named, with the name", () => {
    const raw = devRaw();
    const long = `h${"x".repeat(50)}`;
    (raw.hosts as { name: string }[])[1]!.name = long;
    (raw.endpoints as { host: string }[])[2]!.host = long;
    const issues = gceNameIssues(loadConfig(raw), d);
    assert.deepEqual(
      issues.map((i) => [i.path, i.value]),
      [["hosts[1].name", long]],
    );
    assert.match(
      issues[0]!.message,
      /instance name "calico-dev-[0-9a-f]{6}-hx+" 69 characters, over GCE's 63/,
    );
  });
  it("with host-block routes, the route name overflows too, naming the host", () => {
    const raw: Record<string, unknown> = {
      ...devRaw(),
      gce: { ...(devRaw().gce as object), routeGranularity: "host-block" },
    };
    const long = `h${"x".repeat(48)}`;
    (raw.hosts as Record<string, unknown>[]).forEach(
      (h, i) => (h.endpointBlock = `192.168.${i}.0/24`),
    );
    (raw.hosts as { name: string }[])[0]!.name = long;
    (raw.endpoints as { host: string; ip: string }[]).forEach((e, i) => {
      if (e.host === "host-1") e.host = long;
      e.ip = i < 2 ? `192.168.0.${i + 1}` : "192.168.1.1";
    });
    const paths = gceNameIssues(loadConfig(raw), d).map((i) => i.path);
    assert.deepEqual(paths, ["hosts[0].name", "hosts[0].name"]);
  });
  it("loadConfig with the deployment refuses it, naming the key and the value", () => {
    const raw = devRaw();
    const long = `h${"y".repeat(55)}`;
    (raw.hosts as { name: string }[])[0]!.name = long;
    for (const e of raw.endpoints as { host: string }[]) if (e.host === "host-1") e.host = long;
    assert.doesNotThrow(() => loadConfig(raw), "render and the lab name no GCE resource");
    assert.throws(
      () => loadConfig(raw, d),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.issues.length === 1 &&
        err.issues[0]!.path === "hosts[0].name" &&
        err.issues[0]!.value === long &&
        /makes the instance name "calico-dev-[0-9a-f]{6}-hy+" 74 characters, over GCE's 63/.test(
          err.message,
        ),
    );
  });
});
