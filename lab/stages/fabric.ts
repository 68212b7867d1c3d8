/**
 * Stages `namespaces` and `fabric`: a network namespace per host (plus the fabric's and the
 * operator's), and the network between them — one bridge in the fabric namespace, a veth per
 * host, addresses as on GCE (a /32 and a gateway) or on a LAN, and the GCE network's static
 * routes. The fabric runs at the platform's MTU (1460 as a GCE VPC; 1500 on a LAN), the MTU
 * the endpoints' veths get by default.
 * Their undo is deleting the namespaces (`down`, see namespaces-down in lab.ts).
 */
import { ipBatch, pool, poolSettled, run, runIn } from "../exec.js";
import { applyFabricFirewall } from "../fabric-firewall.js";
import { planNamespaces, type HostPlan, type LabPlan } from "../plan.js";
import type { LabRun, Stage } from "./run.js";

/**
 * The lab's fabric MTU: a GCE VPC network's default (1460) for the router fabric, Ethernet's
 * for a LAN of existing hosts — the endpoints' veths default to the same (config vethMtu).
 */
export function fabricMtu(plan: Pick<LabPlan, "fabric">): number {
  return plan.fabric === "router" ? 1460 : 1500;
}

export const namespacesStage: Stage = {
  title: (r) => `create ${planNamespaces(r.plan).length} network namespaces`,
  async up(r: LabRun) {
    r.st.namespaces = planNamespaces(r.plan);
    r.save(); // recorded first: a failure half-way is still cleaned up by `down`
    const failures = await poolSettled(r.st.namespaces, r.concurrency, (ns) =>
      run("ip", ["netns", "add", ns]),
    );
    if (failures.length > 0) throw failures[0]!.error;
  },
};

export const fabricStage: Stage = {
  title: (r) => `fabric: bridge, host links and addresses (MTU ${fabricMtu(r.plan)})`,
  up: (r) => buildFabric(r.plan, r.concurrency),
};

export const fabricRoutesStage: Stage = {
  title: (r) => `fabric: ${r.plan.fabricRoutes.length} static route(s) of the GCE network`,
  applies: (r) => r.plan.fabricRoutes.length > 0,
  up: (r) =>
    ipBatch(
      r.plan.fabricNs,
      r.plan.fabricRoutes.map((x) => `route replace ${x.dest} via ${x.via} dev ${r.plan.bridge}`),
    ),
};

export const fabricFirewallStage: Stage = {
  title: () => "fabric: the stack's GCE firewall rules (ingress to the hosts)",
  applies: (r) => r.plan.fabric === "router",
  up: (r) => applyFabricFirewall(r.plan, r.model),
};

async function buildFabric(plan: LabPlan, concurrency: number): Promise<void> {
  const f = plan.fabricNs;
  const mtu = fabricMtu(plan);
  await ipBatch(f, [
    "link set lo up",
    `link add ${plan.bridge} mtu ${mtu} type bridge`,
    ...plan.bridgeAddresses.map((a) => `addr add ${a} dev ${plan.bridge}`),
    `link set ${plan.bridge} up`,
    ...[...plan.hosts, plan.operator].flatMap((h) => [
      `link add ${h.fabricPort} mtu ${mtu} type veth peer name ${h.uplink} mtu ${mtu} netns ${h.ns}`,
      `link set ${h.fabricPort} master ${plan.bridge}`,
      `link set ${h.fabricPort} up`,
    ]),
  ]);
  await ipBatch(plan.operator.ns, hostLinkCommands(plan.operator));
  // The fabric routes between the regional subnets on one bridge: no redirects.
  await runIn(f, "sysctl", [
    "-q",
    "-w",
    `net.ipv4.ip_forward=${plan.fabric === "router" ? 1 : 0}`,
    "net.ipv4.conf.all.send_redirects=0",
    `net.ipv4.conf.${plan.bridge}.send_redirects=0`,
  ]);
  await pool(plan.hosts, concurrency, async (h) => {
    await ipBatch(h.ns, hostLinkCommands(h));
    // New namespaces inherit ip_forward from the root namespace: set it explicitly.
    await runIn(h.ns, "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
  });
}

/** The host's uplink as on GCE (a /32 and a gateway), or as on a LAN. */
export function hostLinkCommands(
  h: Pick<HostPlan, "address" | "prefixLength" | "gateway" | "uplink">,
): string[] {
  const lines = [
    "link set lo up",
    `addr add ${h.address}/${h.prefixLength} dev ${h.uplink}`,
    `link set ${h.uplink} up`,
  ];
  if (h.gateway !== undefined) {
    lines.push(
      `route add ${h.gateway} dev ${h.uplink} scope link`,
      `route add default via ${h.gateway} dev ${h.uplink}`,
    );
  }
  return lines;
}
