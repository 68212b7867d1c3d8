/**
 * The stack's GCE ingress firewall rules as data: what `components/gce.ts` creates on the
 * stack's host tag, and what the lab emulates in its fabric (`lab/fabric-firewall.ts`). All
 * ingress; whatever no rule allows is dropped (GCE's implied deny). Nothing but ICMP may ever
 * be open to 0.0.0.0/0 (the policy pack checks it too); here nothing is. Pure: no Pulumi.
 */
import type { ClusterModel } from "./model.js";
import { PORTS } from "./model.js";

/** The rules' name suffixes (`names.firewall(suffix)`). */
export type FirewallSuffix = "endpoints" | "zeromq" | "ssh" | "bgp";

/** One allowed protocol, with its ports as GCE takes them (`"22"`, `"9901-9906"`). */
export interface FirewallAllow {
  protocol: "tcp" | "udp" | "icmp";
  ports?: string[];
}

/** Source (and destination) address ranges of a rule. */
export interface FirewallRanges {
  sourceRanges: string[];
  destinationRanges?: string[];
}

/** Where a rule admits traffic from: address ranges, or the stack's hosts (its host tag). */
export type FirewallSource = FirewallRanges | "hosts";

export interface FirewallRule {
  suffix: FirewallSuffix;
  description: string;
  allows: FirewallAllow[];
  source: FirewallSource;
}

/** The ingress rules on the stack's host tag; `bgp` only with BGP on. */
export function firewallRules(model: ClusterModel): FirewallRule[] {
  const { endpointPool, gce, bgp } = model.config;
  const rules: FirewallRule[] = [
    {
      suffix: "endpoints",
      description: `Endpoint traffic from the pool ${endpointPool}`,
      allows: [{ protocol: "tcp" }, { protocol: "udp" }, { protocol: "icmp" }],
      // To endpoint addresses only: containers do not reach the hosts' own SSH or ZeroMQ.
      source: { sourceRanges: [endpointPool], destinationRanges: [endpointPool] },
    },
    {
      suffix: "zeromq",
      description: "Felix, ACL Manager and plugin (ZeroMQ) between Calico hosts",
      // The ZeroMQ ports of PROTOCOL.md, 9901-9906: one contiguous range.
      allows: [{ protocol: "tcp", ports: [`${PORTS.pluginEndpoint}-${PORTS.aclPublish}`] }],
      source: "hosts",
    },
    {
      suffix: "ssh",
      description: "SSH from the administrators' ranges (gce.sshSourceRanges)",
      allows: [{ protocol: "tcp", ports: ["22"] }],
      source: { sourceRanges: [...gce.sshSourceRanges] },
    },
  ];
  if (bgp.enabled) {
    rules.push({
      suffix: "bgp",
      description: "BGP between Calico hosts",
      allows: [{ protocol: "tcp", ports: ["179"] }],
      source: "hosts",
    });
  }
  return rules;
}
