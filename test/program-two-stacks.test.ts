// Two stacks of the program in one GCP project, side by side: each run in its own process
// under mocks (the real index.ts, which names the stack from `pulumi.getStack()`), both on
// one existing network, the case where a rule of one stack could admit the other's hosts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { inCidr } from "../components/ipv4.js";
import { stackFileConfig, T } from "./program-mocks.js";

interface Graph {
  stack: string;
  hosts: { name: string; internalAddress: string; externalAddress: string }[];
  resources: { type: string; name: string; inputs: Record<string, unknown> }[];
}

const helper = fileURLToPath(new URL("./helpers/stack-graph.ts", import.meta.url));

/** The dev stack on one shared, existing network (hosts in one region, as that requires). */
const shared = {
  ...stackFileConfig("dev"),
  "calico-docker:gce": {
    subnetCidr: "10.240.0.0/16",
    network: "shared-vpc",
    subnetwork: "shared-subnet",
    sshSourceRanges: ["203.0.113.0/24"],
  },
  "calico-docker:hosts": [
    { name: "host-1", zone: "us-central1-a" },
    { name: "host-2", zone: "us-central1-b" },
  ],
};

function graph(stack: string, config: Record<string, unknown>): Graph {
  const res = spawnSync(
    process.execPath,
    ["--import", "tsx", helper, stack, JSON.stringify(config)],
    {
      encoding: "utf8",
    },
  );
  assert.equal(res.status, 0, res.stderr);
  return JSON.parse(res.stdout) as Graph;
}

const dev = graph("dev", shared);
const staging = graph("staging", shared);

const of = (g: Graph, type: string) => g.resources.filter((r) => r.type === type);
const strings = (v: unknown) => (Array.isArray(v) ? (v as string[]) : []);
/** The network tags of a stack's hosts. */
const tagsOf = (g: Graph) => new Set(of(g, T.instance).flatMap((i) => strings(i.inputs.tags)));

/**
 * Why a firewall rule of one stack admits a host of the other: it targets the host's tags,
 * or its source (tags or ranges) matches the host. Empty when it does neither.
 */
function admits(
  rule: Record<string, unknown>,
  hostTags: Set<string>,
  addresses: string[],
): string[] {
  const why: string[] = [];
  for (const t of strings(rule.targetTags)) if (hostTags.has(t)) why.push(`targets tag ${t}`);
  for (const t of strings(rule.sourceTags)) if (hostTags.has(t)) why.push(`sources tag ${t}`);
  for (const r of strings(rule.sourceRanges))
    for (const a of addresses) if (inCidr(a, r)) why.push(`source range ${r} holds ${a}`);
  return why;
}

describe("two stacks in one project and one network", () => {
  it("both build the same shape, on the shared network", () => {
    for (const g of [dev, staging]) {
      assert.equal(of(g, T.instance).length, 2, g.stack);
      assert.equal(of(g, T.network).length, 0, `${g.stack} makes no network of its own`);
      for (const f of of(g, T.firewall)) assert.match(String(f.inputs.network), /shared-vpc$/);
    }
  });
  it("share no physical name (instances, firewall rules, routes)", () => {
    const names = (g: Graph) =>
      new Set(
        [T.instance, T.firewall, T.route, T.subnet, T.network].flatMap((t) =>
          of(g, t).map((r) => String(r.inputs.name)),
        ),
      );
    const a = names(dev);
    const b = names(staging);
    assert.equal(a.size, 2 + 3 + 3);
    assert.deepEqual(
      [...a].filter((n) => b.has(n)),
      [],
    );
    for (const n of [...a, ...b])
      assert.ok(n.length <= 63 && /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(n), n);
  });
  it("share no network tag", () => {
    const a = tagsOf(dev);
    const b = tagsOf(staging);
    assert.equal(a.size, 1);
    assert.deepEqual(
      [...a].filter((t) => b.has(t)),
      [],
    );
  });
  it("no firewall rule of one admits the other's hosts", () => {
    for (const [mine, theirs] of [
      [dev, staging],
      [staging, dev],
    ] as const) {
      const addresses = theirs.hosts.flatMap((h) => [h.internalAddress, h.externalAddress]);
      for (const f of of(mine, T.firewall)) {
        assert.deepEqual(
          admits(f.inputs, tagsOf(theirs), addresses),
          [],
          `${mine.stack} ${String(f.inputs.name)}`,
        );
      }
    }
  });
  it("while each stack's host-to-host rules do admit its own hosts (the check can fail)", () => {
    for (const g of [dev, staging]) {
      const zmq = of(g, T.firewall).find((f) => String(f.inputs.name).endsWith("-zeromq"))!;
      const own = g.hosts.flatMap((h) => [h.internalAddress]);
      assert.deepEqual(admits(zmq.inputs, tagsOf(g), own), [
        `targets tag ${[...tagsOf(g)][0]}`,
        `sources tag ${[...tagsOf(g)][0]}`,
      ]);
    }
    // The old single tag: one stack's rule would have admitted the other's hosts.
    assert.deepEqual(admits({ sourceTags: ["calico-host"] }, new Set(["calico-host"]), []), [
      "sources tag calico-host",
    ]);
  });
});
