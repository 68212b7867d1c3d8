/**
 * The stack's GCE ingress firewall (components/firewall.ts) emulated in the lab's fabric
 * namespace, for router (GCE-like) fabrics: every packet the fabric forwards to a host (to a
 * host address, or to an endpoint address, which the fabric routes to a host) passes one
 * chain that accepts replies, then what the rules allow, and drops the rest, as GCE's implied
 * deny does. Without it the lab could not show that containers do not reach the hosts' SSH or
 * ZeroMQ.
 *
 * Legacy iptables (`iptables-legacy-restore`), not nf_tables: the lab already needs the legacy
 * backend (the host script puts its SNAT chain beside Felix's legacy chains), so every rule
 * the lab makes is in one backend and `iptables-legacy-save` in any of its namespaces shows
 * them all. The fabric namespace holds no other rules, so nothing here mixes backends.
 */
import { cidrProblem, isIPv4 } from "../components/ipv4.js";
import { firewallRules, type FirewallRule } from "../components/firewall.js";
import type { ClusterModel } from "../components/model.js";
import { runIn } from "./exec.js";
import type { HostPlan, LabPlan, OperatorPlan } from "./plan.js";

/** The chain in the fabric namespace's filter table, jumped to from FORWARD. */
export const FABRIC_FIREWALL_CHAIN = "CALICO-LAB-GCE-FW";

/** What the firewall needs of a lab plan (the whole LabPlan fits). */
export interface FabricFirewallPlan {
  fabric: LabPlan["fabric"];
  fabricNs: string;
  hosts: Pick<HostPlan, "name" | "address">[];
  operator: Pick<OperatorPlan, "address">;
}

/** `value` as a CIDR iptables takes, or a clear error naming where it came from. */
function checkedCidr(value: string, field: string): string {
  const cidr = isIPv4(value) ? `${value}/32` : value;
  const problem = cidrProblem(cidr);
  if (problem !== undefined) throw new Error(`${field}: ${JSON.stringify(value)} ${problem}`);
  return cidr;
}

/** The source CIDRs of a rule in the lab: the hosts' addresses for "the stack's hosts". */
function labSources(rule: FirewallRule, plan: FabricFirewallPlan): string[] {
  if (rule.source === "hosts") {
    return plan.hosts.map((h) => checkedCidr(h.address, `hosts[${h.name}].address`));
  }
  const ranges = rule.source.sourceRanges.map((r, i) =>
    checkedCidr(r, `firewall ${rule.suffix}: sourceRanges[${i}]`),
  );
  // The lab's operator namespace stands for the administrator's workstation: its address
  // counts as inside gce.sshSourceRanges (the real ranges are kept too, and match nothing here).
  if (rule.suffix === "ssh") ranges.push(checkedCidr(plan.operator.address, "operator.address"));
  return ranges;
}

/** The iptables match of one GCE allow: `-p tcp -m tcp --dport 9901:9906`, one per port spec. */
function allowMatches(rule: FirewallRule): string[] {
  return rule.allows.flatMap((a) => {
    if (a.ports === undefined) return [`-p ${a.protocol}`];
    return a.ports.map((p) => {
      if (!/^\d{1,5}(-\d{1,5})?$/.test(p)) {
        throw new Error(`firewall ${rule.suffix}: port ${JSON.stringify(p)} is not N or N-M`);
      }
      return `-p ${a.protocol} -m ${a.protocol} --dport ${p.replace("-", ":")}`;
    });
  });
}

/** The ACCEPT lines of one rule: every source x destination x allow. */
function ruleLines(rule: FirewallRule, plan: FabricFirewallPlan): string[] {
  const dests =
    rule.source === "hosts" || rule.source.destinationRanges === undefined
      ? [undefined]
      : rule.source.destinationRanges.map((d, i) =>
          checkedCidr(d, `firewall ${rule.suffix}: destinationRanges[${i}]`),
        );
  const comment = `-m comment --comment gce-${rule.suffix}`;
  return labSources(rule, plan).flatMap((s) =>
    dests.flatMap((d) =>
      allowMatches(rule).map(
        (m) =>
          `-A ${FABRIC_FIREWALL_CHAIN} -s ${s}${d ? ` -d ${d}` : ""} ${m} ${comment} -j ACCEPT`,
      ),
    ),
  );
}

/**
 * The `iptables-restore --noflush` text of the fabric firewall: the chain (declaring it
 * flushes it, so loading again replaces it), its rules written as `iptables-save` prints
 * them. The ACCEPT lines need no destination of their own: what is not for a host is never
 * dropped here, as GCE filters only at the hosts' tag.
 */
export function renderFabricFirewall(plan: FabricFirewallPlan, model: ClusterModel): string {
  if (plan.fabric !== "router") {
    throw new Error(
      `the fabric firewall emulates GCE's: it needs a router fabric (platform gce), not ${plan.fabric}`,
    );
  }
  const chain = FABRIC_FIREWALL_CHAIN;
  const toHosts = [
    ...plan.hosts.map((h) => checkedCidr(h.address, `hosts[${h.name}].address`)),
    checkedCidr(model.config.endpointPool, "endpointPool"),
  ];
  return [
    "*filter",
    `:${chain} - [0:0]`,
    `-A ${chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    ...firewallRules(model).flatMap((r) => ruleLines(r, plan)),
    // GCE's implied deny, for what goes to a host or to an endpoint behind one.
    ...toHosts.map((d) => `-A ${chain} -d ${d} -m comment --comment gce-deny -j DROP`),
    "COMMIT",
    "",
  ].join("\n");
}

/**
 * Loads the fabric firewall into the plan's fabric namespace and makes FORWARD jump to it
 * (once: loading again replaces the chain and keeps the one jump).
 */
export async function applyFabricFirewall(
  plan: FabricFirewallPlan,
  model: ClusterModel,
): Promise<void> {
  const text = renderFabricFirewall(plan, model);
  await runIn(plan.fabricNs, "iptables-legacy-restore", ["--noflush"], { input: text });
  const jump = (op: "-C" | "-I") => ["-w", op, "FORWARD", "-j", FABRIC_FIREWALL_CHAIN];
  const present = await runIn(plan.fabricNs, "iptables-legacy", jump("-C"), { okCodes: [1] });
  if (present.code !== 0) await runIn(plan.fabricNs, "iptables-legacy", jump("-I"));
}

/** What the fabric namespace holds: the chain's rules and whether FORWARD jumps to it. */
export interface FabricFirewallState {
  jumped: boolean;
  /** The chain's rules as `iptables-legacy-save` prints them (`-A CALICO-LAB-GCE-FW ...`). */
  rules: string[];
}

/** Reads the fabric firewall back from the namespace (empty when it is not loaded). */
export async function fabricFirewallRules(fabricNs: string): Promise<FabricFirewallState> {
  const saved = await runIn(fabricNs, "iptables-legacy-save", ["-t", "filter"]);
  const lines = saved.stdout.split("\n");
  return {
    jumped: lines.some((l) => l === `-A FORWARD -j ${FABRIC_FIREWALL_CHAIN}`),
    rules: lines.filter((l) => l.startsWith(`-A ${FABRIC_FIREWALL_CHAIN} `)),
  };
}
