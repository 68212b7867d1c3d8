// Address allocation (components/allocation.ts): regional subnets carved from the host
// range, and host internal addresses, as properties over random inputs and random stacks.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  allocateInternalAddresses,
  carveSubnets,
  gceAddressProblem,
  regionOfZone,
  type AddressRequest,
} from "../components/allocation.js";
import { loadConfig } from "../components/config.js";
import {
  cidrContains,
  cidrProblem,
  cidrRange,
  cidrsOverlap,
  inCidr,
  intToIp,
  ipToInt,
} from "../components/ipv4.js";
import { stackArb } from "./helpers/arbitraries.js";

const REGIONS = ["us-central1", "europe-west1", "asia-east1", "us-east4", "me-west1"] as const;

/** A host range as GCE takes it: a /8 to /24, host bits zero. */
const baseArb = fc
  .record({ n: fc.integer({ min: 0, max: 2 ** 32 - 1 }), bits: fc.integer({ min: 8, max: 24 }) })
  .map(({ n, bits }) => {
    const size = 2 ** (32 - bits);
    return `${intToIp(Math.floor(n / size) * size)}/${bits}`;
  });

const regionsArb = fc.uniqueArray(fc.constantFrom(...REGIONS), { minLength: 1, maxLength: 5 });

describe("carveSubnets", () => {
  it("one subnet per region, in order, equal power-of-two parts, disjoint, inside the range", () => {
    fc.assert(
      fc.property(baseArb, regionsArb, (base, regions) => {
        const plan = carveSubnets(base, regions);
        assert.deepEqual(
          plan.subnets.map((s) => s.region),
          regions,
        );
        assert.equal(
          plan.prefixLength,
          cidrRange(base).prefixLength + Math.ceil(Math.log2(regions.length)),
        );
        assert.equal(plan.size, 2 ** (32 - plan.prefixLength));
        assert.equal(plan.subnets[0]!.cidr.split("/")[0], base.split("/")[0]);
        plan.subnets.forEach((s, i) => {
          assert.equal(cidrProblem(s.cidr), undefined, s.cidr);
          assert.equal(cidrRange(s.cidr).size, plan.size);
          assert.ok(cidrContains(base, s.cidr), `${s.cidr} outside ${base}`);
          for (const o of plan.subnets.slice(0, i)) {
            assert.ok(!cidrsOverlap(o.cidr, s.cidr), `${o.cidr} overlaps ${s.cidr}`);
          }
        });
      }),
      { numRuns: 300 },
    );
  });

  it("a zone's region drops the zone letter", () => {
    assert.equal(regionOfZone("us-central1-a"), "us-central1");
    assert.equal(regionOfZone("europe-west1-b"), "europe-west1");
  });
});

describe("gceAddressProblem", () => {
  it("the first two and last two addresses are reserved; the rest of the subnet is usable", () => {
    fc.assert(
      fc.property(
        baseArb
          .filter((b) => cidrRange(b).prefixLength <= 29)
          .chain((subnet) => {
            const { size } = cidrRange(subnet);
            // Near both edges, and anywhere.
            const offset = fc.oneof(
              fc.integer({ min: -3, max: 4 }),
              fc.integer({ min: size - 4, max: size + 3 }),
              fc.integer({ min: 0, max: size - 1 }),
            );
            return fc.tuple(fc.constant(subnet), offset);
          }),
        ([subnet, n]) => {
          const { first, size } = cidrRange(subnet);
          if (first + n < 0 || first + n > 2 ** 32 - 1) return;
          const problem = gceAddressProblem(intToIp(first + n), subnet, size);
          if (n < 0 || n >= size) assert.equal(problem, "outside");
          else if (n < 2 || n >= size - 2) assert.equal(problem, "reserved");
          else assert.equal(problem, undefined);
        },
      ),
      { numRuns: 500 },
    );
  });
});

/** Hosts in random regions of a plan, some with an address of their subnet given. */
const gceHostsArb = fc
  .record({ base: baseArb.filter((b) => cidrRange(b).prefixLength >= 22), regions: regionsArb })
  .filter(({ base, regions }) => carveSubnets(base, regions).prefixLength <= 29)
  .chain(({ base, regions }) => {
    const plan = carveSubnets(base, regions);
    return fc
      .array(
        fc.record({
          region: fc.constantFrom(...regions),
          given: fc.option(fc.integer({ min: 2, max: plan.size - 3 }), { nil: undefined }),
        }),
        { minLength: 1, maxLength: Math.min(40, plan.size) },
      )
      .map((hosts) => {
        const firstOf = new Map(plan.subnets.map((s) => [s.region, cidrRange(s.cidr).first]));
        const seen = new Set<string>();
        const requests: AddressRequest[] = hosts.map((h) => {
          if (h.given === undefined) return { region: h.region };
          const ip = intToIp(firstOf.get(h.region)! + h.given);
          if (seen.has(ip)) return { region: h.region }; // the config refuses duplicates
          seen.add(ip);
          return { region: h.region, internalAddress: ip };
        });
        return { plan, requests };
      });
  });

describe("allocateInternalAddresses", () => {
  it("gce: given addresses kept; the others the lowest free usable ones of the host's subnet, all unique", () => {
    fc.assert(
      fc.property(gceHostsArb, ({ plan, requests }) => {
        const out = allocateInternalAddresses("gce", requests, plan);
        assert.equal(out.length, requests.length);
        const subnetOf = new Map(plan.subnets.map((s) => [s.region, s.cidr]));
        const given = new Set(requests.map((r) => r.internalAddress).filter((a) => a));
        const used = new Set<string>();
        requests.forEach((r, i) => {
          const ip = out[i];
          if (r.internalAddress !== undefined) {
            assert.equal(ip, r.internalAddress);
            return;
          }
          const subnet = subnetOf.get(r.region)!;
          if (ip === undefined) {
            // Only when every usable address of the subnet is already someone's.
            const { first, size } = cidrRange(subnet);
            for (let n = first + 2; n < first + size - 2; n++) {
              const a = intToIp(n);
              assert.ok(given.has(a) || used.has(a), `${a} was free in ${subnet}`);
            }
            return;
          }
          assert.ok(inCidr(ip, subnet), `${ip} outside ${subnet}`);
          assert.equal(gceAddressProblem(ip, subnet, plan.size), undefined, ip);
          assert.ok(!given.has(ip) && !used.has(ip), `${ip} handed out twice`);
          // Dense: every usable address below it in the subnet is taken.
          for (let n = cidrRange(subnet).first + 2; n < ipToInt(ip); n++) {
            const a = intToIp(n);
            assert.ok(given.has(a) || used.has(a), `${a} skipped before ${ip}`);
          }
          used.add(ip);
        });
      }),
      { numRuns: 300 },
    );
  });

  it("existing: the given internal address, else an IPv4 SSH address, else none", () => {
    const plan = carveSubnets("10.240.0.0/16", ["us-central1"]);
    const out = allocateInternalAddresses(
      "existing",
      [
        { region: "us-central1", address: "10.0.0.5" },
        { region: "us-central1", address: "host.example.com", internalAddress: "10.0.0.6" },
        { region: "us-central1", address: "host.example.com" },
        { region: "us-central1", address: "10.0.0.8", internalAddress: "10.1.0.8" },
      ],
      plan,
    );
    assert.deepEqual(out, ["10.0.0.5", "10.0.0.6", undefined, "10.1.0.8"]);
  });
});

describe("allocation through loadConfig (random GCE stacks)", () => {
  it("every host gets a unique usable address of its region's subnet; subnets tile gce.subnetCidr", () => {
    fc.assert(
      fc.property(stackArb({ platform: "gce", maxHosts: 8 }), (raw) => {
        const config = loadConfig(raw);
        const regions = [...new Set(config.hosts.map((h) => h.region))];
        assert.deepEqual(
          config.gce.subnets.map((s) => s.region),
          regions,
        );
        const subnetOf = new Map(config.gce.subnets.map((s) => [s.region, s.cidr]));
        const size = cidrRange(config.gce.subnets[0]!.cidr).size;
        for (const s of config.gce.subnets) {
          assert.ok(cidrContains(config.gce.subnetCidr, s.cidr));
        }
        const addresses = config.hosts.map((h) => h.internalAddress);
        assert.equal(new Set(addresses).size, addresses.length, "addresses unique");
        for (const h of config.hosts) {
          assert.equal(regionOfZone(h.zone), h.region);
          const subnet = subnetOf.get(h.region)!;
          assert.equal(gceAddressProblem(h.internalAddress, subnet, size), undefined);
        }
      }),
      { numRuns: 150 },
    );
  });
});
