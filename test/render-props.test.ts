/**
 * Properties of the rendered files over generated stacks (fast-check): peering shape,
 * unique names, endpoint placement, plugin data round trips, and real BIRD and shellcheck
 * runs on what generated stacks render.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { inCidr } from "../components/ipv4.js";
import { syntheticEndpointId, tapName } from "../components/model.js";
import {
  renderAll,
  renderBirdConf,
  renderEndpointData,
  renderFelixTxt,
  renderGroupsTxt,
} from "../components/render/index.js";
import { modelArb } from "./helpers/arbitraries.js";
import { bgpBlocks } from "./helpers/bird.js";
import { birdParse, shellcheck } from "./helpers/tools.js";

/**
 * The sections of seed-format INI text, names kept whole (the \`ini\` package would split
 * a section name such as \`endpoint web.1\` at its dot).
 */
function sections(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let cur: Record<string, string> | undefined;
  for (const line of text.split("\n")) {
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      assert.ok(!(header[1]! in out), `duplicate section [${header[1]}]`);
      cur = out[header[1]!] = {};
    } else if (line !== "") {
      const eq = line.indexOf("=");
      assert.ok(cur && eq > 0, `stray line ${JSON.stringify(line)}`);
      cur[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return out;
}

describe("rendered stacks (properties)", () => {
  it("bird.conf: one block per peer, never itself, sessions pair up, peering shape holds", () => {
    fc.assert(
      fc.property(modelArb({ bgp: true }), ({ model }) => {
        const pairs = new Set<string>();
        const reflectors = new Set(
          model.hosts.filter((h) => h.isRouteReflector).map((h) => h.name),
        );
        for (const h of model.hosts) {
          const blocks = bgpBlocks(renderBirdConf(model, h));
          assert.equal(blocks.length, h.peers.length);
          assert.equal(new Set(blocks.map((b) => b.name)).size, blocks.length, "unique names");
          assert.deepEqual(
            blocks.map((b) => b.neighbor),
            h.peers.map((p) => p.address),
          );
          for (const b of blocks) {
            assert.notEqual(b.neighbor, h.internalAddress, "no session with itself");
            assert.equal(b.source, h.internalAddress);
            assert.ok(/^[A-Za-z_][A-Za-z0-9_]*$/.test(b.name), `BIRD symbol ${b.name}`);
          }
          const others = model.hosts.filter((o) => o.name !== h.name).map((o) => o.name);
          const expected =
            model.config.bgp.peering === "full-mesh" || h.isRouteReflector
              ? others
              : others.filter((o) => reflectors.has(o));
          assert.deepEqual(h.peers.map((p) => p.host).sort(), expected.sort());
          assert.deepEqual(
            blocks.filter((b) => b.rrClient).length,
            h.isRouteReflector ? h.peers.filter((p) => !reflectors.has(p.host)).length : 0,
          );
          for (const p of h.peers) pairs.add(`${h.name}>${p.host}`);
        }
        for (const pair of pairs) {
          const [a, b] = pair.split(">");
          assert.ok(pairs.has(`${b}>${a}`), `${a} peers ${b} but not back`);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("every endpoint: in the pool and its host's block, in exactly one plugin data file with its host, one script on its host", () => {
    fc.assert(
      fc.property(modelArb(), ({ model }) => {
        const files = renderAll(model);
        const paths = files.map((f) => f.path);
        assert.equal(new Set(paths).size, paths.length, "unique paths");
        const taps = model.endpoints.map((e) => tapName(syntheticEndpointId(e.name)));
        assert.equal(new Set(taps).size, taps.length, "unique taps");
        for (const e of model.endpoints) {
          const host = model.hosts.find((h) => h.name === e.host)!;
          assert.ok(inCidr(e.ip, model.config.endpointPool));
          if (host.endpointBlock) assert.ok(inCidr(e.ip, host.endpointBlock));
          const data = files.filter((f) =>
            new RegExp(`^\\[endpoint ${e.name.replaceAll(".", "\\.")}\\]$`, "m").test(f.content),
          );
          assert.equal(data.length, 1, `${e.name} in ${data.length} data files`);
          assert.equal(data[0]!.path, `${model.controller.name}/plugin-data/${e.dataFile}`);
          const parsed = sections(data[0]!.content)[`endpoint ${e.name}`]!;
          assert.equal(parsed.host, e.host);
          assert.equal(parsed.ip, e.ip);
          const scripts = paths.filter((p) => p.endsWith(`/endpoint-${e.name}.sh`));
          assert.deepEqual(scripts, [`${e.host}/endpoint-${e.name}.sh`]);
        }
        const hostDirs = new Set(paths.map((p) => p.split("/")[0]));
        assert.deepEqual([...hostDirs].sort(), model.hosts.map((h) => h.name).sort());
        assert.equal(
          paths.filter((p) => p.endsWith("/bird.conf")).length,
          model.config.bgp.enabled ? model.hosts.length : 0,
        );
        assert.equal(
          paths.filter((p) => p.endsWith("/ignition.json")).length,
          model.config.platform === "gce" ? model.hosts.length : 0,
        );
      }),
      { numRuns: 150 },
    );
  });

  it("plugin data parses back to the model (felix.txt, endpoints, groups.txt)", () => {
    fc.assert(
      fc.property(modelArb(), ({ model }) => {
        const felix = sections(renderFelixTxt(model));
        assert.deepEqual(
          Object.entries(felix).map(([k, v]) => [k, { ...v }]),
          model.hosts.map((h) => [`felix ${h.name}`, { ip: h.internalAddress, host: h.name }]),
        );
        for (const e of model.endpoints) {
          const id = syntheticEndpointId(e.name);
          const s = sections(renderEndpointData(e, id))[`endpoint ${e.name}`];
          assert.deepEqual({ ...s }, { id, ip: e.ip, mac: e.mac, host: e.host, group: e.group });
        }
        const groups = renderGroupsTxt(model);
        const explicit = model.groups.filter((g) => g.explicit);
        if (explicit.length === 0) {
          assert.equal(groups, undefined);
          return;
        }
        const parsed = sections(groups!);
        assert.deepEqual(
          Object.keys(parsed),
          explicit.map((g) => `group ${g.name}`),
        );
        for (const g of explicit) {
          const inbound = JSON.parse(parsed[`group ${g.name}`]!.inbound!) as Record<
            string,
            unknown
          >[];
          assert.deepEqual(inbound, g.inbound);
          assert.deepEqual(JSON.parse(parsed[`group ${g.name}`]!.outbound!), g.outbound);
          for (const r of inbound)
            assert.deepEqual(Object.keys(r), ["group", "cidr", "protocol", "port"]);
        }
      }),
      { numRuns: 150 },
    );
  });

  for (const peering of ["full-mesh", "route-reflector"] as const) {
    for (const session of ["multihop", "direct"] as const) {
      it(`BIRD 1.x accepts every generated bird.conf (${peering}, ${session})`, () => {
        fc.assert(
          fc.property(
            modelArb({ platform: "existing", bgp: true, peering, session }),
            ({ model }) => {
              for (const h of model.hosts) {
                const r = birdParse(renderBirdConf(model, h));
                assert.ok(r.ok, `${h.name}: ${r.output}`);
              }
            },
          ),
          { numRuns: 30 },
        );
      });
    }
  }

  it("BIRD accepts generated GCE bird.conf (BGP on GCE: multihop)", () => {
    fc.assert(
      fc.property(modelArb({ platform: "gce", bgp: true }), ({ model }) => {
        for (const h of model.hosts) {
          const r = birdParse(renderBirdConf(model, h));
          assert.ok(r.ok, `${h.name}: ${r.output}`);
        }
      }),
      { numRuns: 30 },
    );
  });

  it("shellcheck passes every generated script", () => {
    fc.assert(
      fc.property(modelArb({ maxHosts: 3, maxEndpointsPerHost: 3 }), ({ model }) => {
        const scripts = renderAll(model).filter((f) => f.path.endsWith(".sh"));
        const r = shellcheck(scripts.map((s) => s.content));
        assert.ok(r.ok, r.output);
      }),
      { numRuns: 8 },
    );
  });
});
