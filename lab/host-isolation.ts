/**
 * `check`'s host isolation: the firewall's promise that containers do not reach the hosts'
 * SSH, BGP or ZeroMQ ports. From every endpoint whose own policy lets it out to a host (so
 * that Felix is not what stops it), a TCP connect to every other host's Felix (9902) and BGP
 * (179, with BGP on) and to the controller's plugin and ACL Manager ports (9901, 9903–9906)
 * and sshd (22) must fail. On GCE (the lab's router fabric, which runs the stack's firewall
 * rules) the rules admit those ports from the hosts only, and host preparation keeps the
 * hosts' addresses out of SNAT, so the packet keeps the endpoint's own address and is
 * dropped. On a LAN (platform existing) the hosts' own firewall is the operator's: skipped.
 */
import type { ClusterModel } from "../components/model.js";
import { PORTS } from "../components/model.js";
import { sideVerdict } from "../components/reachability.js";
import type { LabPlan } from "./plan.js";
import { probeAll, type Observation, type ProbeSpec } from "./policy-probes.js";

export interface IsolationResult {
  /** Why nothing was probed, when so. */
  skipped?: string;
  probes: number;
  /** Probes that got through: each a broken promise. */
  reached: { probe: ProbeSpec; observed: Observation }[];
  durationMs: number;
}

const CONTROLLER_PORTS = [
  PORTS.pluginEndpoint,
  PORTS.pluginGroups,
  PORTS.pluginPublish,
  PORTS.aclRouter,
  PORTS.aclPublish,
  22,
];

/** The probes: endpoint → another host's Calico and SSH ports. */
export function isolationProbes(plan: LabPlan, model: ClusterModel): ProbeSpec[] {
  const probes: ProbeSpec[] = [];
  for (const e of model.endpoints) {
    for (const h of plan.hosts.filter((x) => x.name !== e.host)) {
      const ports = [
        PORTS.felix,
        ...(model.config.bgp.enabled ? [179] : []),
        ...(h.name === model.controller.name ? CONTROLLER_PORTS : []),
      ];
      for (const port of ports) {
        const out = sideVerdict(
          model.groups,
          { name: e.name, ip: e.ip, group: e.group },
          "outbound",
          { name: h.name, ip: h.address, group: "" },
          { proto: "tcp", port },
        );
        if (!out.allowed) continue; // Felix stops it: proves nothing about the firewall
        probes.push({ from: e.name, to: h.name, toIp: h.address, proto: "tcp", port });
      }
    }
  }
  return probes;
}

export async function checkHostIsolation(
  plan: LabPlan,
  model: ClusterModel,
): Promise<IsolationResult> {
  const t0 = performance.now();
  if (plan.fabric !== "router") {
    return {
      skipped: "platform existing: the hosts' own firewall is the operator's, not the stack's",
      probes: 0,
      reached: [],
      durationMs: 0,
    };
  }
  const probes = isolationProbes(plan, model);
  const seen = await probeAll(plan, probes);
  const reached = probes
    .map((probe, i) => ({ probe, observed: seen[i]! }))
    .filter((x) => x.observed.outcome !== "dropped");
  return { probes: probes.length, reached, durationMs: performance.now() - t0 };
}
