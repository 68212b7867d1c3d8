import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { inCidr } from "../components/ipv4.js";
import { modelArb } from "./helpers/arbitraries.js";
import {
  buildModel,
  endpointMac,
  prototypePolicy,
  routesFor,
  syntheticEndpointId,
  tapName,
} from "../components/model.js";
import { loadStackFile, stackFilePath } from "../components/stackfile.js";

/** Valid random stacks with BGP on (the shared generator), up to 8 hosts. */
const stackArb = modelArb({ bgp: true, maxHosts: 8 }).map(({ model }) => model.config);

describe("cluster model properties (fast-check)", () => {
  it("no host peers with itself; one session per peer; sessions are symmetric", () => {
    fc.assert(
      fc.property(stackArb, (config) => {
        const model = buildModel(config);
        for (const host of model.hosts) {
          const peerNames = host.peers.map((p) => p.host);
          assert.ok(!peerNames.includes(host.name), `${host.name} peers with itself`);
          assert.equal(new Set(peerNames).size, peerNames.length, "one session per peer");
          assert.equal(
            new Set(host.peers.map((p) => p.protocol)).size,
            host.peers.length,
            "protocol names unique in one bird.conf",
          );
          for (const peer of host.peers) {
            const other = model.hosts.find((h) => h.name === peer.host)!;
            assert.equal(peer.address, other.internalAddress);
            assert.ok(
              other.peers.some((p) => p.host === host.name),
              `${peer.host} does not peer back with ${host.name}`,
            );
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it("full mesh: every host peers with every other; route reflection: clients only with reflectors", () => {
    fc.assert(
      fc.property(stackArb, (config) => {
        const model = buildModel(config);
        const n = model.hosts.length;
        for (const host of model.hosts) {
          if (config.bgp.peering === "full-mesh" || host.isRouteReflector) {
            assert.equal(host.peers.length, n - 1);
          } else {
            assert.ok(host.peers.every((p) => config.bgp.routeReflectors.includes(p.host)));
            assert.equal(host.peers.length, config.bgp.routeReflectors.length);
          }
          for (const peer of host.peers) {
            const other = model.hosts.find((h) => h.name === peer.host)!;
            assert.equal(peer.rrClient, host.isRouteReflector && !other.isRouteReflector);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it("every endpoint is on exactly one host, inside the pool and its host's block", () => {
    fc.assert(
      fc.property(stackArb, (config) => {
        const model = buildModel(config);
        const placed = model.hosts.flatMap((h) => h.endpoints.map((e) => [h, e] as const));
        assert.equal(placed.length, model.endpoints.length);
        for (const [host, e] of placed) {
          assert.equal(e.host, host.name);
          assert.ok(inCidr(e.ip, config.endpointPool));
          if (host.endpointBlock) assert.ok(inCidr(e.ip, host.endpointBlock));
        }
      }),
      { numRuns: 150 },
    );
  });

  it("names, MACs, taps and data files are unique", () => {
    fc.assert(
      fc.property(stackArb, (config) => {
        const model = buildModel(config);
        for (const key of ["name", "mac", "containerName", "dataFile"] as const) {
          const values = model.endpoints.map((e) => e[key]);
          assert.equal(new Set(values).size, values.length, `${key} not unique`);
        }
        const taps = model.endpoints.map((e) => tapName(syntheticEndpointId(e.name)));
        assert.equal(new Set(taps).size, taps.length, "tap names not unique");
        const hostAddrs = model.hosts.map((h) => h.internalAddress);
        assert.equal(new Set(hostAddrs).size, hostAddrs.length, "host addresses not unique");
      }),
      { numRuns: 150 },
    );
  });

  it("GCE routes: one per endpoint to its host, or one per host block", () => {
    fc.assert(
      fc.property(stackArb, (config) => {
        const routes = routesFor(config);
        if (config.gce.routeGranularity === "host-block") {
          assert.equal(routes.length, config.hosts.length);
          for (const r of routes) {
            const host = config.hosts.find((h) => h.name === r.host)!;
            assert.equal(r.destRange, host.endpointBlock);
          }
        } else {
          assert.equal(routes.length, config.endpoints.length);
          for (const e of config.endpoints) {
            const r = routes.filter((x) => x.destRange === `${e.ip}/32`);
            assert.equal(r.length, 1);
            assert.equal(r[0]!.host, e.host);
          }
        }
        const names = routes.map((r) => r.name);
        assert.equal(new Set(names).size, names.length);
        assert.ok(names.every((n) => /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n)));
        assert.equal(
          buildModel(config).routes.length,
          config.platform === "gce" ? routes.length : 0,
        );
      }),
      { numRuns: 150 },
    );
  });
});

describe("cluster model of the dev stack", () => {
  const model = buildModel(loadStackFile(stackFilePath("dev")));

  it("host-1 is the controller; BGP is off so nobody peers", () => {
    assert.equal(model.controller.name, "host-1");
    assert.ok(model.hosts.every((h) => h.peers.length === 0));
  });

  it("groups: db has the stack's rules, web the prototype's policy", () => {
    const db = model.groups.find((g) => g.name === "db")!;
    const web = model.groups.find((g) => g.name === "web")!;
    assert.equal(db.explicit, true);
    assert.deepEqual(db.inbound[1], { group: "web", cidr: null, protocol: "tcp", port: 5432 });
    assert.equal(web.explicit, false);
    assert.deepEqual({ inbound: web.inbound, outbound: web.outbound }, prototypePolicy("web"));
    assert.deepEqual(web.members, ["192_168_1_1", "192_168_1_3"]);
  });

  it("MACs are locally administered unicast and derived from the IP", () => {
    assert.equal(endpointMac("192.168.1.1"), "02:ca:c0:a8:01:01");
    for (const e of model.endpoints) {
      const first = parseInt(e.mac.slice(0, 2), 16);
      assert.equal(first & 0b10, 0b10, "locally administered bit");
      assert.equal(first & 0b01, 0, "unicast");
    }
  });

  it("taps are tap + the first 11 characters of the endpoint id", () => {
    const id = syntheticEndpointId("192_168_1_1");
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(tapName(id), `tap${id.slice(0, 11)}`);
    assert.equal(tapName(id).length, 14, "fits the 15-character interface name limit");
  });
});
