// GCE's routes quota: per-endpoint routes past it failed at apply time, long after the
// preview. The config refuses them when it loads, pointing at host-block routes, unless the
// stack says its quota was raised.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { GCE_DEFAULT_ROUTE_QUOTA, loadConfig } from "../components/config.js";
import { buildModel } from "../components/model.js";
import { configIssues } from "./helpers/config.js";

/** A GCE stack of 2 hosts and `n` endpoints, each host's endpoints in its own /23 block. */
function stack(n: number, gce: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    platform: "gce",
    endpointPool: "192.168.0.0/16",
    gce: { sshSourceRanges: ["203.0.113.0/24"], ...gce },
    hosts: [
      { name: "host-1", zone: "us-central1-a", endpointBlock: "192.168.0.0/23" },
      { name: "host-2", zone: "us-central1-a", endpointBlock: "192.168.2.0/23" },
    ],
    endpoints: Array.from({ length: n }, (_, i) => ({
      host: i % 2 === 0 ? "host-1" : "host-2",
      ip: `192.168.${(i % 2) * 2 + Math.floor(i / 2 / 250)}.${(Math.floor(i / 2) % 250) + 1}`,
      group: "web",
    })),
  };
}

describe("the routes quota", () => {
  it("is GCE's default, 250, unless the stack raises it", () => {
    assert.equal(GCE_DEFAULT_ROUTE_QUOTA, 250);
    assert.equal(loadConfig(stack(2)).gce.routeQuota, 250);
  });
  it("takes exactly the quota in per-endpoint routes", () => {
    const model = buildModel(loadConfig(stack(250)));
    assert.equal(model.routes.length, 250);
  });
  it("refuses one route more, naming endpoints and pointing at host-block", () => {
    const issues = configIssues(stack(251));
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, "endpoints");
    assert.equal(issues[0]!.value, "251 routes");
    assert.match(
      issues[0]!.message,
      /needs 251 static routes \(one per endpoint\), over gce\.routeQuota 250/,
    );
    assert.match(issues[0]!.message, /gce\.routeGranularity: host-block/);
  });
  it("accepts the same endpoints as host-block routes, or with a raised quota", () => {
    const blocks = buildModel(loadConfig(stack(251, { routeGranularity: "host-block" })));
    assert.equal(blocks.routes.length, 2);
    assert.equal(buildModel(loadConfig(stack(251, { routeQuota: 1000 }))).routes.length, 251);
  });
  it("a quota below the host blocks is refused too, naming hosts", () => {
    const issues = configIssues(stack(4, { routeGranularity: "host-block", routeQuota: 1 }));
    assert.deepEqual(
      issues.map((i) => [i.path, i.value]),
      [["hosts", "2 routes"]],
    );
  });
  it("routes off GCE do not count", () => {
    const raw = stack(300);
    raw.platform = "existing";
    raw.hosts = (raw.hosts as Record<string, unknown>[]).map((h, i) => ({
      name: h.name,
      address: `198.51.100.${i + 1}`,
      sshUser: "core",
    }));
    raw.gce = {};
    raw.sshPrivateKey = "[secret]";
    assert.deepEqual(configIssues(raw), []);
  });
  it("a bad quota is a schema error naming gce.routeQuota", () => {
    assert.deepEqual(
      configIssues(stack(2, { routeQuota: 0 })).map((i) => i.path),
      ["gce.routeQuota"],
    );
  });
});
