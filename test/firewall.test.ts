// The GCE ingress firewall rules as data (components/firewall.ts): exactly what the shipped
// stacks get, BGP's rule only with BGP on, and nothing but ICMP ever open to the internet.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import fc from "fast-check";
import { firewallRules, type FirewallRule } from "../components/firewall.js";
import { publicAddressesCovered } from "../components/ipv4.js";
import { SSH_MAX_PUBLIC_ADDRESSES } from "../components/ssh-ranges.js";
import { modelArb } from "./helpers/arbitraries.js";
import { modelOf, stackRaw } from "./helpers/stacks.js";

const REPO = new URL("..", import.meta.url);
/** Every committed GCE stack: Pulumi.<stack>.yaml at the repository root (gce is the default). */
const GCE_STACKS = readdirSync(REPO)
  .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => s !== undefined)
  .filter((s) => (stackRaw(s).platform ?? "gce") === "gce");

const ENDPOINTS: FirewallRule = {
  suffix: "endpoints",
  description: "Endpoint traffic from the pool 192.168.0.0/16",
  allows: [{ protocol: "tcp" }, { protocol: "udp" }, { protocol: "icmp" }],
  source: { sourceRanges: ["192.168.0.0/16"], destinationRanges: ["192.168.0.0/16"] },
};
const ZEROMQ: FirewallRule = {
  suffix: "zeromq",
  description: "Felix, ACL Manager and plugin (ZeroMQ) between Calico hosts",
  allows: [{ protocol: "tcp", ports: ["9901-9906"] }],
  source: "hosts",
};
const SSH: FirewallRule = {
  suffix: "ssh",
  description: "SSH from the administrators' ranges (gce.sshSourceRanges)",
  allows: [{ protocol: "tcp", ports: ["22"] }],
  source: { sourceRanges: ["203.0.113.0/24"] },
};
const BGP: FirewallRule = {
  suffix: "bgp",
  description: "BGP between Calico hosts",
  allows: [{ protocol: "tcp", ports: ["179"] }],
  source: "hosts",
};

/** Why a rule opens more than ICMP to the internet, or undefined. */
function internetOpening(rule: FirewallRule): string | undefined {
  if (rule.source === "hosts" || rule.allows.every((a) => a.protocol === "icmp")) return;
  const ranges = rule.source.sourceRanges;
  if (ranges.some((r) => r.endsWith("/0"))) return `${rule.suffix} is open to ${ranges}`;
  if (publicAddressesCovered(ranges) > SSH_MAX_PUBLIC_ADDRESSES) {
    return `${rule.suffix} admits ${publicAddressesCovered(ranges)} public addresses`;
  }
  return undefined;
}

describe("firewallRules", () => {
  it("finds the shipped GCE stacks", () => {
    for (const s of ["dev", "lab-bgp", "lab-blocks", "lab-rr"])
      assert.ok(GCE_STACKS.includes(s), s);
  });

  it("dev (BGP off): endpoints pool-to-pool, ZeroMQ from the hosts, SSH from its ranges", () => {
    assert.deepEqual(firewallRules(modelOf(stackRaw("dev"))), [ENDPOINTS, ZEROMQ, SSH]);
  });

  it("lab-blocks (BGP off) gets the same three rules", () => {
    assert.deepEqual(firewallRules(modelOf(stackRaw("lab-blocks"))), [ENDPOINTS, ZEROMQ, SSH]);
  });

  it("lab-bgp and lab-rr (BGP on) add BGP from the hosts", () => {
    for (const s of ["lab-bgp", "lab-rr"]) {
      assert.deepEqual(firewallRules(modelOf(stackRaw(s))), [ENDPOINTS, ZEROMQ, SSH, BGP], s);
    }
  });

  it("no shipped GCE stack opens anything but ICMP to 0.0.0.0/0", () => {
    for (const s of GCE_STACKS) {
      for (const r of firewallRules(modelOf(stackRaw(s)))) {
        assert.equal(internetOpening(r), undefined, `${s}: ${r.suffix}`);
      }
    }
  });

  it("no valid GCE stack does (generated stacks)", () => {
    fc.assert(
      fc.property(modelArb({ platform: "gce" }), ({ model }) => {
        const rules = firewallRules(model);
        assert.deepEqual(
          rules.map((r) => r.suffix),
          ["endpoints", "zeromq", "ssh", ...(model.config.bgp.enabled ? ["bgp"] : [])],
        );
        for (const r of rules) assert.equal(internetOpening(r), undefined, r.suffix);
      }),
      { numRuns: 100 },
    );
  });

  it("the check itself sees a rule open to the internet", () => {
    const open = { ...SSH, source: { sourceRanges: ["0.0.0.0/0"] } };
    const halves = { ...SSH, source: { sourceRanges: ["0.0.0.0/1", "128.0.0.0/1"] } };
    const icmp: FirewallRule = { ...open, allows: [{ protocol: "icmp" }] };
    assert.match(internetOpening(open) ?? "", /open to 0\.0\.0\.0\/0/);
    assert.match(internetOpening(halves) ?? "", /public addresses/);
    assert.equal(internetOpening(icmp), undefined);
  });
});
