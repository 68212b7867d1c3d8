import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { inCidr } from "../components/ipv4.js";
import { ruleEffect, admitsKind } from "../components/felix-rules.js";
import type { ClusterModel, GroupModel, WireRule } from "../components/model.js";
import {
  closedPort,
  decide,
  kindLabel,
  listeners,
  probeKinds,
  reachability,
  type ExpectedProbe,
  type ProbeKind,
  type Reachability,
} from "../components/reachability.js";
import { modelArb } from "./helpers/arbitraries.js";
import { devModel, modelOf, stackRaw } from "./helpers/stacks.js";

const stacks = modelArb({ maxHosts: 3, maxEndpointsPerHost: 3 });
const models = stacks.map(({ model }) => model);
const GROUPS = ["web", "db", "app", "cache", "g.1", "Blue_team"];

/** Wire rules as the plugin may publish them, including some Felix 0.10.2 skips. */
const portArb = fc.oneof(
  fc.constant(null),
  fc.integer({ min: 1, max: 65535 }),
  fc
    .tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }))
    .map(([a, b]): [number, number] => [Math.min(a, b), Math.max(a, b)]),
);
const wireRuleArb: fc.Arbitrary<WireRule> = fc
  .record({
    peer: fc.oneof(
      fc.constantFrom(...GROUPS).map((group) => ({ group, cidr: null })),
      fc
        .constantFrom("0.0.0.0/0", "192.168.0.0/16", "172.20.0.0/17", "10.0.0.0/8")
        .map((cidr) => ({ group: null, cidr })),
    ),
    protocol: fc.constantFrom(null, "tcp", "udp", "icmp", "sctp", "gre"),
    port: portArb,
  })
  .map(({ peer, protocol, port }) => ({ ...peer, protocol, port }));

function find(reach: Reachability, from: string, to: string, kind: string): ExpectedProbe {
  const p = reach.probes.find((q) => q.from === from && q.to === to && kindLabel(q) === kind);
  assert.ok(p, `no probe ${from} -> ${to} ${kind}`);
  return p;
}

function allowedSet(model: Pick<ClusterModel, "endpoints" | "groups">, kinds: ProbeKind[]) {
  const eps = reachability(model).endpoints;
  const out = new Set<string>();
  for (const a of eps) {
    for (const b of eps) {
      if (a.name === b.name) continue;
      for (const k of kinds) {
        if (decide(model.groups, a, b, k).expected === "allow") {
          out.add(`${a.name}>${b.name}>${kindLabel(k)}`);
        }
      }
    }
  }
  return out;
}

/**
 * A second reading of the policy, the way the real pipeline does it: the ACL Manager turns
 * each endpoint's group rules into cidr rules (one /32 per member of a named group), and
 * Felix matches the peer address against those cidrs.
 */
function aclManagerAllows(model: ClusterModel, p: ExpectedProbe): boolean {
  const ips = (group: string) =>
    model.endpoints.filter((e) => e.group === group).map((e) => `${e.ip}/32`);
  const acls = (group: string, dir: "inbound" | "outbound"): WireRule[] =>
    (model.groups.find((g) => g.name === group)?.[dir] ?? []).flatMap((r) =>
      r.group === null ? [r] : ips(r.group).map((cidr) => ({ ...r, group: null, cidr })),
    );
  const from = model.endpoints.find((e) => e.name === p.from)!;
  const to = model.endpoints.find((e) => e.name === p.to)!;
  const admits = (rules: WireRule[], peerIp: string) =>
    rules.some((r) => inCidr(peerIp, r.cidr!) && admitsKind(ruleEffect(r), p));
  return admits(acls(from.group, "outbound"), to.ip) && admits(acls(to.group, "inbound"), from.ip);
}

describe("reachability properties (fast-check)", () => {
  it("with no rules anywhere, exactly the same-group pairs are allowed, for every kind", () => {
    fc.assert(
      fc.property(stacks, ({ raw }) => {
        const bare = modelOf({ ...raw, groups: {} });
        const reach = reachability(bare);
        const groupOf = new Map(reach.endpoints.map((e) => [e.name, e.group]));
        for (const p of reach.probes) {
          const same = groupOf.get(p.from) === groupOf.get(p.to);
          assert.equal(p.expected, same ? "allow" : "deny", `${p.from} -> ${p.to}: ${p.because}`);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("covers every ordered pair of distinct endpoints with every kind, ICMP and TCP always", () => {
    fc.assert(
      fc.property(models, (model) => {
        const reach = reachability(model);
        const n = reach.endpoints.length;
        assert.equal(reach.probes.length, n * Math.max(n - 1, 0) * reach.kinds.length);
        assert.ok(reach.kinds.some((k) => k.proto === "icmp"));
        assert.ok(reach.kinds.some((k) => k.proto === "tcp"));
        assert.ok(reach.probes.every((p) => p.from !== p.to));
        const keys = reach.probes.map((p) => `${p.from}>${p.to}>${kindLabel(p)}`);
        assert.equal(new Set(keys).size, keys.length);
      }),
      { numRuns: 60 },
    );
  });

  it("appending a rule to any group never removes an allowed probe", () => {
    fc.assert(
      fc.property(
        models,
        wireRuleArb,
        fc.nat(),
        fc.constantFrom("inbound", "outbound"),
        (model, rule, pick, dir: "inbound" | "outbound") => {
          if (model.groups.length === 0) return;
          const target = model.groups[pick % model.groups.length]!.name;
          const groups: GroupModel[] = model.groups.map((g) =>
            g.name === target ? { ...g, [dir]: [...g[dir], rule] } : g,
          );
          const kinds = [...probeKinds(model.groups), ...probeKinds(groups)];
          const before = allowedSet(model, kinds);
          const after = allowedSet({ endpoints: model.endpoints, groups }, kinds);
          for (const key of before) assert.ok(after.has(key), `${key} lost by ${target}.${dir}`);
        },
      ),
      { numRuns: 80 },
    );
  });

  it("every probe names its deciding rules: both when allowed, the default deny when not", () => {
    fc.assert(
      fc.property(models, (model) => {
        for (const p of reachability(model).probes) {
          if (p.expected === "allow") {
            const out = p.outbound.rule;
            const inn = p.inbound.rule;
            assert.ok(out && inn, `${p.from} -> ${p.to} allowed without rules`);
            assert.ok(p.because.includes(out.label) && p.because.includes(inn.label));
            assert.ok(admitsKind(ruleEffect(out.rule), p) && admitsKind(ruleEffect(inn.rule), p));
          } else {
            const deny = [p.outbound, p.inbound].filter((s) => !s.allowed);
            assert.ok(deny.length > 0 && deny.every((s) => s.rule === undefined));
            for (const s of deny) {
              assert.ok(p.because.includes(`no ${s.direction} rule of ${s.group} admits`));
            }
            assert.match(p.because, /default deny/);
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it("agrees with the ACL Manager's expansion of group rules into member /32 cidrs", () => {
    fc.assert(
      fc.property(models, (model) => {
        for (const p of reachability(model).probes) {
          assert.equal(p.expected === "allow", aclManagerAllows(model, p), p.because);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("symmetric rules (each group's inbound = its outbound) give symmetric results", () => {
    const symmetric = fc
      .tuple(models, fc.array(fc.array(wireRuleArb, { maxLength: 4 }), { maxLength: 6 }))
      .map(([model, lists]) => ({
        endpoints: model.endpoints,
        groups: model.groups.map((g, i) => {
          const rules = lists[i] ?? [];
          return { ...g, explicit: true, inbound: rules, outbound: rules };
        }),
      }));
    fc.assert(
      fc.property(symmetric, (model) => {
        const reach = reachability(model);
        for (const p of reach.probes) {
          const back = find(reach, p.to, p.from, kindLabel(p));
          assert.equal(back.expected, p.expected, `${p.from} <-> ${p.to} ${kindLabel(p)}`);
        }
      }),
      { numRuns: 80 },
    );
  });

  it("the closed port of a protocol is one no rule opens; every endpoint listens on every port", () => {
    fc.assert(
      fc.property(models, (model) => {
        const reach = reachability(model);
        for (const proto of ["tcp", "udp"] as const) {
          const port = closedPort(model.groups, proto);
          if (port === undefined) continue;
          const ported = model.groups
            .flatMap((g) => [...g.inbound, ...g.outbound])
            .map(ruleEffect)
            .filter((e) => e.kind === "ports");
          assert.ok(!ported.some((e) => admitsKind(e, { proto, port })), `${proto}/${port}`);
        }
        const ports = reach.kinds.filter((k) => k.proto !== "icmp").map(kindLabel);
        for (const l of listeners(reach)) {
          assert.deepEqual(l.listen.map(kindLabel), ports, l.endpoint);
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe("reachability on the shipped stacks", () => {
  // dev: web 192_168_1_1 and db 192_168_1_2 on host-1, web 192_168_1_3 on host-2.
  const dev = reachability(devModel());
  const web1 = "192_168_1_1";
  const db = "192_168_1_2";
  const web2 = "192_168_1_3";

  it("dev probes ICMP, the rule's tcp/5432 and the closed tcp/5433; each endpoint listens on both", () => {
    assert.deepEqual(dev.kinds.map(kindLabel), ["icmp", "tcp/5432", "tcp/5433"]);
    assert.equal(dev.probes.length, 3 * 2 * 3);
    assert.deepEqual(
      listeners(dev).map((l) => [l.endpoint, l.ip, l.listen.map(kindLabel)]),
      [web1, db, web2].map((e, i) => [e, `192.168.1.${i + 1}`, ["tcp/5432", "tcp/5433"]]),
    );
  });

  it("dev: web reaches web across hosts, both ways, on every kind, by web's default policy", () => {
    for (const [a, b] of [
      [web1, web2],
      [web2, web1],
    ] as const) {
      for (const kind of ["icmp", "tcp/5432", "tcp/5433"]) {
        const p = find(dev, a, b, kind);
        assert.equal(p.expected, "allow");
        assert.equal(p.outbound.rule?.label, "web's default outbound[0] (group web)");
        assert.equal(p.inbound.rule?.label, "web's default inbound[0] (group web)");
      }
    }
    const p = find(dev, web1, web2, "icmp");
    assert.deepEqual(
      [p.fromIp, p.fromHost, p.toIp, p.toHost],
      ["192.168.1.1", "host-1", "192.168.1.3", "host-2"],
    );
  });

  it("dev: web -> db: ICMP and tcp/5433 denied by db's inbound rules, tcp/5432 allowed", () => {
    const icmp = find(dev, web1, db, "icmp");
    assert.equal(icmp.expected, "deny");
    assert.equal(
      icmp.because,
      `no inbound rule of db admits icmp from ${web1} (group web): default deny`,
    );
    assert.ok(icmp.outbound.allowed, "web may start traffic to anywhere");
    const open = find(dev, web2, db, "tcp/5432");
    assert.equal(open.expected, "allow");
    assert.equal(open.inbound.rule?.label, "groups.db.inbound[1] (group web, tcp 5432)");
    assert.equal(open.outbound.rule?.label, "web's default outbound[1] (cidr 0.0.0.0/0)");
    const closed = find(dev, web1, db, "tcp/5433");
    assert.equal(closed.expected, "deny");
    assert.match(closed.because, /^no inbound rule of db admits tcp\/5433/);
  });

  it("dev: db reaches no web endpoint at all (web admits only its own group)", () => {
    for (const p of dev.probes.filter((q) => q.from === db)) {
      assert.equal(p.expected, "deny", `${p.to} ${kindLabel(p)}`);
      assert.ok(p.outbound.allowed, "db's outbound rules let it out");
      assert.match(p.because, /^no inbound rule of web admits .* \(group db\): default deny$/);
    }
  });

  it("lab-rr (no rules): web and db each reach only their own group, on every host", () => {
    const rr = reachability(modelOf(stackRaw("lab-rr")));
    assert.deepEqual(rr.kinds.map(kindLabel), ["icmp", "tcp/5000"]);
    const groupOf = new Map(rr.endpoints.map((e) => [e.name, e.group]));
    for (const p of rr.probes) {
      assert.equal(p.expected === "allow", groupOf.get(p.from) === groupOf.get(p.to));
    }
    assert.equal(rr.probes.filter((p) => p.expected === "allow").length, 2 * (3 * 2) * 2);
  });
});

describe("reachability: Felix 0.10.2's reading of rules", () => {
  const withDb = (rules: Record<string, unknown>[], extra: Record<string, unknown> = {}) =>
    reachability(devModel({ groups: { db: { inbound: rules, outbound: [] }, ...extra } }));
  const web1 = "192_168_1_1";
  const db = "192_168_1_2";

  it("a port range is probed at its low end and just above it", () => {
    const r = withDb([{ group: "web", protocol: "tcp", port: [8000, 8010] }]);
    assert.deepEqual(r.kinds.map(kindLabel), ["icmp", "tcp/8000", "tcp/8011"]);
    assert.equal(find(r, web1, db, "tcp/8000").expected, "allow");
    assert.equal(find(r, web1, db, "tcp/8011").expected, "deny");
  });

  it("udp rules add udp probes, the rule's port and a closed one; tcp is still probed", () => {
    const r = withDb([{ group: "web", protocol: "udp", port: 53 }]);
    assert.deepEqual(r.kinds.map(kindLabel), ["icmp", "tcp/5000", "udp/53", "udp/54"]);
    assert.equal(find(r, web1, db, "udp/53").expected, "allow");
    assert.equal(find(r, web1, db, "tcp/5000").expected, "deny");
  });

  it("an icmp rule admits ICMP only; a rule without protocol admits everything", () => {
    const icmp = withDb([{ group: "web", protocol: "icmp" }]);
    assert.equal(find(icmp, web1, db, "icmp").expected, "allow");
    assert.equal(find(icmp, web1, db, "tcp/5000").expected, "deny");
    const all = withDb([{ group: "web" }]);
    assert.ok(all.probes.filter((p) => p.to === db).every((p) => p.expected === "allow"));
  });

  it("a cidr rule matches the peer's address, not its group", () => {
    const r = withDb([{ cidr: "192.168.1.3/32" }]);
    assert.equal(find(r, "192_168_1_3", db, "icmp").expected, "allow");
    assert.equal(find(r, web1, db, "icmp").expected, "deny");
  });

  it("db with rules but no outbound ones can start nothing, not even to its own group", () => {
    const r = withDb([{ group: "web" }]);
    const p = find(r, db, web1, "icmp");
    assert.equal(p.expected, "deny");
    assert.match(p.because, /^no outbound rule of db admits icmp to 192_168_1_1 \(group web\)/);
    assert.match(p.because, /; no inbound rule of web admits/);
  });

  it("a tcp rule without a port opens tcp port 0 only, and the denial says so", () => {
    const r = withDb([{ group: "web", protocol: "tcp" }]);
    assert.deepEqual(r.kinds.map(kindLabel), ["icmp", "tcp/5000"]);
    const p = find(r, web1, db, "tcp/5000");
    assert.equal(p.expected, "deny");
    assert.match(
      p.because,
      /groups\.db\.inbound\[0\] \(group web, tcp\): Felix 0\.10\.2 opens tcp port 0 only/,
    );
  });

  it("rules Felix skips (a port on icmp, a port without protocol) admit nothing and are named", () => {
    const model = devModel();
    const groups = model.groups.map((g) =>
      g.name === "db"
        ? {
            ...g,
            inbound: [
              { group: "web", cidr: null, protocol: "icmp", port: 8 },
              { group: "web", cidr: null, protocol: null, port: 80 },
            ],
          }
        : g,
    );
    const r = reachability({ endpoints: model.endpoints, groups });
    const p = find(r, web1, db, "icmp");
    assert.equal(p.expected, "deny");
    assert.match(
      p.because,
      /inbound\[0\] \(group web, icmp 8\): Felix 0\.10\.2 skips it \(a port on protocol icmp\)/,
    );
    assert.ok(
      r.kinds.every((k) => k.port !== 80),
      "a skipped rule's port is not probed",
    );
  });

  it("when the rules open every tcp port there is no closed tcp port to probe", () => {
    const everything = { db: { inbound: [{ group: "web", protocol: "tcp", port: [1, 65535] }] } };
    assert.equal(closedPort(devModel({ groups: everything }).groups, "tcp"), undefined);
    const r = withDb([{ group: "web", protocol: "tcp", port: [1, 65535] }]);
    assert.equal(
      closedPort(
        devModel({
          groups: { db: { inbound: [{ group: "web", protocol: "tcp", port: [1, 65535] }] } },
        }).groups,
        "tcp",
      ),
      undefined,
    );
    assert.deepEqual(r.kinds.map(kindLabel), ["icmp", "tcp/1"]);
  });

  it("the closed port skips past ranges and wraps below the lowest named port", () => {
    const r = withDb([
      { group: "web", protocol: "tcp", port: 5432 },
      { group: "web", protocol: "tcp", port: [5433, 65535] },
    ]);
    assert.deepEqual(r.kinds.map(kindLabel), ["icmp", "tcp/1", "tcp/5432", "tcp/5433"]);
    assert.equal(find(r, web1, db, "tcp/1").expected, "deny");
  });
});

describe("reachability: further kinds (ports a revoked rule opened)", () => {
  it("probes them too, denied when no rule admits them, without repeating a kind", () => {
    const r = reachability(devModel(), [{ proto: "tcp", port: 6000 }, { proto: "icmp" }]);
    assert.deepEqual(
      r.kinds.map((k) => kindLabel(k)),
      ["icmp", "tcp/5432", "tcp/5433", "tcp/6000"],
    );
    const extra = r.probes.filter((p) => p.proto === "tcp" && p.port === 6000);
    assert.ok(extra.length > 0);
    // web <-> web admits every port (same group); nothing else admits 6000.
    for (const p of extra) {
      const sameWeb = p.from !== "192_168_1_2" && p.to !== "192_168_1_2";
      assert.equal(p.expected, sameWeb ? "allow" : "deny", `${p.from} -> ${p.to}`);
    }
  });
});
