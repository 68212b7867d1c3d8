/**
 * How Felix 0.10.2 reads one wire rule, as the ACL Manager hands it over: which packets it
 * admits. Pure; `reachability.ts` builds the who-may-reach-whom answer on it.
 *
 * The facts, from the 0.10.2 sources (`calico/acl_manager/processor.py`,
 * `calico/felix/frules.py`):
 * - The ACL Manager turns a `group` rule into one `/32` cidr rule per member address of
 *   that group; a `cidr` rule passes as is. So a group rule matches a peer exactly when the
 *   peer is a member of the named group, and a cidr rule when the peer's address is in it.
 * - Felix puts each rule into an ipset: protocol null → the peer address alone (every
 *   protocol, every port); `icmp` → every ICMP type; tcp/udp/sctp/udplite → `proto:port`
 *   (a range is every port in it); any other protocol → `proto:0`, which matches all of
 *   that protocol (ipset gives port 0 to protocols without ports).
 * - A tcp/udp/sctp/udplite rule WITHOUT a port is written as `proto:0`, which Felix's
 *   comment calls "any port" but ipset matches literally: such a rule admits port 0 only,
 *   i.e. nothing a client can connect to.
 * - Felix skips, with an error in its log, a rule with a port but no protocol, an icmp rule
 *   with a port, a port on a protocol without ports, and a port outside 1..65535.
 */
import { inCidr } from "./ipv4.js";
import type { WireRule } from "./model.js";

/** What a probe sends: ICMP echo, or a TCP/UDP packet to a port. */
export type ProbeProto = "icmp" | "tcp" | "udp";

export interface ProbeKind {
  proto: ProbeProto;
  /** The destination port (tcp and udp only). */
  port?: number;
}

/** The side of a probe a rule is checked against. */
export interface Peer {
  name: string;
  ip: string;
  group: string;
}

/** What Felix makes of a rule's protocol and port. */
export type RuleEffect =
  | { kind: "all" }
  | { kind: "icmp" }
  | { kind: "ports"; proto: string; low: number; high: number }
  | { kind: "protocol"; proto: string }
  | { kind: "skipped"; why: string };

const PORT_PROTOCOLS = new Set(["tcp", "udp", "sctp", "udplite"]);

function validPort(p: number): boolean {
  return Number.isInteger(p) && p > 0 && p <= 65535;
}

function portEffect(proto: string, port: WireRule["port"]): RuleEffect {
  if (port === null) return { kind: "ports", proto, low: 0, high: 0 };
  const [low, high] = Array.isArray(port) ? port : [port, port];
  if (!validPort(low) || !validPort(high)) {
    return { kind: "skipped", why: `port ${JSON.stringify(port)} is not valid` };
  }
  return { kind: "ports", proto, low, high };
}

/** The packets a rule admits by protocol and port, as Felix 0.10.2 programs it. */
export function ruleEffect(rule: WireRule): RuleEffect {
  const { protocol, port } = rule;
  if (protocol === null) {
    return port === null ? { kind: "all" } : { kind: "skipped", why: "a port without protocol" };
  }
  if (PORT_PROTOCOLS.has(protocol)) return portEffect(protocol, port);
  if (port !== null) return { kind: "skipped", why: `a port on protocol ${protocol}` };
  return protocol === "icmp" || protocol === "icmpv6"
    ? { kind: "icmp" }
    : { kind: "protocol", proto: protocol };
}

/** True when the rule's group or cidr covers the peer. */
export function matchesPeer(rule: WireRule, peer: Peer): boolean {
  if (rule.group !== null) return rule.group === peer.group;
  return rule.cidr !== null && inCidr(peer.ip, rule.cidr);
}

/** True when the rule's protocol and port, as Felix programs them, admit the probe. */
export function admitsKind(effect: RuleEffect, kind: ProbeKind): boolean {
  switch (effect.kind) {
    case "all":
      return true;
    case "icmp":
      return kind.proto === "icmp";
    case "ports":
      return (
        effect.proto === kind.proto &&
        kind.port !== undefined &&
        kind.port >= effect.low &&
        kind.port <= effect.high
      );
    case "protocol":
      return effect.proto === kind.proto;
    case "skipped":
      return false;
  }
}

/** Why a rule that covers the peer and names the probe's protocol still does not admit it. */
export function inertReason(rule: WireRule, kind: ProbeKind): string | undefined {
  const effect = ruleEffect(rule);
  if (effect.kind === "skipped" && rule.protocol === kind.proto) {
    return `Felix 0.10.2 skips it (${effect.why})`;
  }
  if (effect.kind === "ports" && effect.high === 0 && effect.proto === kind.proto) {
    return `Felix 0.10.2 opens ${kind.proto} port 0 only for a rule without a port`;
  }
  return undefined;
}

/** `tcp 5432`, `udp 5000-5010`, `icmp`, `tcp` (no port): a rule's protocol part. */
export function protocolText(rule: WireRule): string | undefined {
  if (rule.protocol === null) return rule.port === null ? undefined : `port ${portText(rule)}`;
  return rule.port === null ? rule.protocol : `${rule.protocol} ${portText(rule)}`;
}

function portText(rule: WireRule): string {
  return Array.isArray(rule.port) ? `${rule.port[0]}-${rule.port[1]}` : String(rule.port);
}

/** `group web, tcp 5432` or `cidr 0.0.0.0/0`: a rule in a few words. */
export function ruleText(rule: WireRule): string {
  const peer = rule.group !== null ? `group ${rule.group}` : `cidr ${String(rule.cidr)}`;
  const proto = protocolText(rule);
  return proto === undefined ? peer : `${peer}, ${proto}`;
}

/** `icmp`, `tcp/5432`: a probe kind as the matrices and messages name it. */
export function kindLabel(kind: ProbeKind): string {
  return kind.port === undefined ? kind.proto : `${kind.proto}/${kind.port}`;
}
