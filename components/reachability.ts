/**
 * Who may reach whom: ONE pure function over the cluster model (no Pulumi, no I/O), used by
 * `lab check`, `npm run status` and the tests alike.
 *
 * `reachability(model)` lists every probe that matters — for every ordered pair of distinct
 * endpoints, ICMP echo, a TCP/UDP probe to the port of every rule that names one (the low
 * end of a range), and per protocol one port that no rule opens (TCP always, so that TCP is
 * proved both ways even without rules) — with what Calico 0.10.2 (the ACL Manager and Felix)
 * does with it, and why. A probe is allowed when an outbound rule of the sender's group AND
 * an inbound rule of the receiver's group admit it (the packet meets both endpoints' chains;
 * replies pass as conntrack ESTABLISHED traffic); otherwise the default, deny, drops it. A
 * group the stack gives no rules has the prototype's policy (`prototypePolicy` in
 * `model.ts`): members reach each other and may start traffic to anywhere; nothing else
 * gets in. How one rule is read is in `felix-rules.ts`.
 *
 * `listeners(reach)` says which TCP/UDP ports every endpoint must listen on, so that an
 * allowed probe connects and a denied one is dropped rather than refused.
 */
import {
  admitsKind,
  inertReason,
  kindLabel,
  matchesPeer,
  ruleEffect,
  ruleText,
  type Peer,
  type ProbeKind,
  type ProbeProto,
} from "./felix-rules.js";
import type { ClusterModel, EndpointModel, GroupModel, WireRule } from "./model.js";

export type { Peer, ProbeKind, ProbeProto } from "./felix-rules.js";
export { kindLabel } from "./felix-rules.js";

export type Direction = "inbound" | "outbound";

/** The part of the cluster model policy depends on. */
export type PolicyModel = Pick<ClusterModel, "endpoints" | "groups">;

export interface ReachEndpoint extends Peer {
  host: string;
}

/** One rule of one group, located and named for people. */
export interface RuleRef {
  group: string;
  direction: Direction;
  index: number;
  /** False when the rule is the prototype's default policy of a group without rules. */
  explicit: boolean;
  rule: WireRule;
  /** `groups.db.inbound[1] (group web, tcp 5432)` or `web's default outbound[1] (cidr 0.0.0.0/0)`. */
  label: string;
}

/** What one endpoint's chain (its group's rules in one direction) does with a probe. */
export interface SideVerdict {
  direction: Direction;
  /** The group whose rules were applied. */
  group: string;
  allowed: boolean;
  /** The first rule that admits the probe; absent when the default denies it. */
  rule?: RuleRef;
  because: string;
}

export interface ExpectedProbe extends ProbeKind {
  from: string;
  to: string;
  fromHost: string;
  toHost: string;
  fromIp: string;
  toIp: string;
  expected: "allow" | "deny";
  /** The deciding rule(s) in words: both rules when allowed, the denying side(s) when not. */
  because: string;
  outbound: SideVerdict;
  inbound: SideVerdict;
}

export interface Reachability {
  /** The endpoints in stack order. */
  endpoints: ReachEndpoint[];
  /** The probe kinds, ICMP first, then TCP and UDP by port. */
  kinds: ProbeKind[];
  /** Every ordered pair of distinct endpoints times every kind, in that order. */
  probes: ExpectedProbe[];
}

/** The TCP/UDP ports one endpoint must listen on. */
export interface EndpointListeners {
  endpoint: string;
  host: string;
  ip: string;
  listen: Listener[];
}

export interface Listener {
  proto: "tcp" | "udp";
  port: number;
}

/** Where probes go looking for a closed port when no rule names one of that protocol. */
export const DEFAULT_CLOSED_PORT = 5000;

const PROBED: readonly ProbeProto[] = ["tcp", "udp"];

function allRules(groups: readonly GroupModel[]): WireRule[] {
  return groups.flatMap((g) => [...g.inbound, ...g.outbound]);
}

/** The port ranges the rules open for one protocol, as Felix programs them. */
function openRanges(groups: readonly GroupModel[], proto: ProbeProto): [number, number][] {
  return allRules(groups).flatMap((r) => {
    const e = ruleEffect(r);
    return e.kind === "ports" && e.proto === proto && e.high > 0 ? [[e.low, e.high]] : [];
  });
}

/**
 * A port of `proto` that no rule opens: the first free one above the lowest port the rules
 * name (5433 beside a rule for 5432), else from 5000; undefined when every port is open.
 */
export function closedPort(groups: readonly GroupModel[], proto: ProbeProto): number | undefined {
  const ranges = openRanges(groups, proto);
  const named = Math.min(...ranges.map(([low]) => low));
  const start = Number.isFinite(named) ? named + 1 : DEFAULT_CLOSED_PORT;
  for (const first of [start, 1]) {
    let port = first;
    for (let hit = true; hit && port <= 65535;) {
      const covering = ranges.find(([low, high]) => port >= low && port <= high);
      hit = covering !== undefined;
      if (covering) port = covering[1] + 1;
    }
    if (port <= 65535) return port;
  }
  return undefined;
}

/** The probe kinds that matter for these groups: see the module comment. */
export function probeKinds(groups: readonly GroupModel[]): ProbeKind[] {
  const kinds: ProbeKind[] = [{ proto: "icmp" }];
  for (const proto of PROBED) {
    const ports = new Set(openRanges(groups, proto).map(([low]) => low));
    const closed = closedPort(groups, proto);
    const named = allRules(groups).some((r) => r.protocol === proto);
    if (closed !== undefined && (proto === "tcp" || named)) ports.add(closed);
    for (const port of [...ports].sort((a, b) => a - b)) kinds.push({ proto, port });
  }
  return kinds;
}

function ruleRef(group: GroupModel, direction: Direction, index: number): RuleRef {
  const rule = group[direction][index]!;
  const where = group.explicit
    ? `groups.${group.name}.${direction}[${index}]`
    : `${group.name}'s default ${direction}[${index}]`;
  return {
    group: group.name,
    direction,
    index,
    explicit: group.explicit,
    rule,
    label: `${where} (${ruleText(rule)})`,
  };
}

function deniedBecause(
  group: GroupModel | undefined,
  groupName: string,
  direction: Direction,
  peer: Peer,
  kind: ProbeKind,
): string {
  const way = direction === "inbound" ? "from" : "to";
  const base =
    `no ${direction} rule of ${groupName} admits ${kindLabel(kind)} ${way} ` +
    `${peer.name} (group ${peer.group}): default deny`;
  const notes = (group?.[direction] ?? []).flatMap((rule, i) => {
    const why = matchesPeer(rule, peer) ? inertReason(rule, kind) : undefined;
    return why === undefined || group === undefined
      ? []
      : [`${ruleRef(group, direction, i).label}: ${why}`];
  });
  return [base, ...notes].join("; ");
}

/** What `self`'s group's rules in one direction do with a probe to or from `peer`. */
export function sideVerdict(
  groups: readonly GroupModel[],
  self: Peer,
  direction: Direction,
  peer: Peer,
  kind: ProbeKind,
): SideVerdict {
  const group = groups.find((g) => g.name === self.group);
  const index = (group?.[direction] ?? []).findIndex(
    (rule) => matchesPeer(rule, peer) && admitsKind(ruleEffect(rule), kind),
  );
  if (group === undefined || index < 0) {
    const because = deniedBecause(group, self.group, direction, peer, kind);
    return { direction, group: self.group, allowed: false, because };
  }
  const rule = ruleRef(group, direction, index);
  return { direction, group: group.name, allowed: true, rule, because: rule.label };
}

function peerOf(e: EndpointModel | ReachEndpoint): ReachEndpoint {
  return { name: e.name, ip: e.ip, group: e.group, host: e.host };
}

/** The expected outcome of one probe from `from` to `to`. */
export function decide(
  groups: readonly GroupModel[],
  from: ReachEndpoint,
  to: ReachEndpoint,
  kind: ProbeKind,
): ExpectedProbe {
  const outbound = sideVerdict(groups, from, "outbound", to, kind);
  const inbound = sideVerdict(groups, to, "inbound", from, kind);
  const allowed = outbound.allowed && inbound.allowed;
  const because = allowed
    ? `${outbound.because} lets it out; ${inbound.because} lets it in`
    : [outbound, inbound]
        .filter((s) => !s.allowed)
        .map((s) => s.because)
        .join("; ");
  return {
    from: from.name,
    to: to.name,
    fromHost: from.host,
    toHost: to.host,
    fromIp: from.ip,
    toIp: to.ip,
    ...kind,
    expected: allowed ? "allow" : "deny",
    because,
    outbound,
    inbound,
  };
}

/** Every probe that matters for the model, with its expected outcome and deciding rule. */
/**
 * Every probe of the stack. `also`: further kinds to probe — e.g. ports that rules opened
 * before a policy change, so that a revoked rule is proven revoked, not just left unprobed.
 */
export function reachability(model: PolicyModel, also: readonly ProbeKind[] = []): Reachability {
  const endpoints = model.endpoints.map(peerOf);
  const kinds = withKinds(probeKinds(model.groups), also);
  const probes = endpoints.flatMap((from) =>
    endpoints
      .filter((to) => to.name !== from.name)
      .flatMap((to) => kinds.map((kind) => decide(model.groups, from, to, kind))),
  );
  return { endpoints, kinds, probes };
}

/** The TCP/UDP ports each endpoint must listen on: every port any probe is sent to. */
export function listeners(reach: Pick<Reachability, "endpoints" | "kinds">): EndpointListeners[] {
  const listen = reach.kinds.flatMap((k): Listener[] =>
    k.proto !== "icmp" && k.port !== undefined ? [{ proto: k.proto, port: k.port }] : [],
  );
  return reach.endpoints.map((e) => ({
    endpoint: e.name,
    host: e.host,
    ip: e.ip,
    listen: listen.map((l) => ({ ...l })),
  }));
}

/** `kinds` and `also` without repeats, in probeKinds' order (ICMP, then TCP and UDP by port). */
export function withKinds(kinds: readonly ProbeKind[], also: readonly ProbeKind[]): ProbeKind[] {
  const order = { icmp: 0, tcp: 1, udp: 2 } as const;
  const seen = new Map<string, ProbeKind>();
  for (const k of [...kinds, ...also]) seen.set(kindLabel(k), k);
  return [...seen.values()].sort(
    (a, b) => order[a.proto] - order[b.proto] || (a.port ?? 0) - (b.port ?? 0),
  );
}
