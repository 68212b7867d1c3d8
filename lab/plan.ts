/**
 * The lab's plan for a stack: which namespaces, addresses, links and fabric routes stand in
 * for the hosts, the endpoints and the network between them. Pure (no I/O): derived from the
 * cluster model, so the lab builds exactly the stack that production would.
 */
import { createHash } from "node:crypto";
import ipaddr from "ipaddr.js";
import { intToIp, ipToInt } from "../components/ipv4.js";
import { syntheticEndpointId, tapName, type ClusterModel } from "../components/model.js";
import { netnsLinkName } from "../components/render/index.js";

/** Every lab name starts with this, then a short hash of the stack: `cl3fa91c-...`. */
export const LAB_PREFIX = "cl";

export interface HostPlan {
  name: string;
  index: number;
  /** The host's network namespace. */
  ns: string;
  address: string;
  /** 32 on the GCE-like fabric (the host sees only its own /32), else the LAN's prefix. */
  prefixLength: number;
  /** GCE: the regional subnet's gateway (.1), the host's default route. */
  gateway?: string;
  /** The host's interface towards the fabric, inside the host namespace. */
  uplink: string;
  /** The other end, inside the fabric namespace, enslaved to the bridge. */
  fabricPort: string;
}

/**
 * `docker`: each endpoint is a Docker container (`--net=none`) wired by the endpoint script in
 * its Docker mode; `netns`: a bare named namespace wired with `--netns` (for very large labs).
 */
export type EndpointMode = "docker" | "netns";

export interface EndpointPlan {
  name: string;
  host: string;
  ip: string;
  group: string;
  /** The container's name (docker mode). */
  container: string;
  /**
   * The endpoint's network namespace name: its own named namespace (netns mode), or the
   * `/var/run/netns` link the endpoint script makes to the container's (docker mode).
   */
  ns: string;
  /** The container id: synthetic in netns mode; in docker mode Docker's, once created. */
  id: string;
  tap: string;
  /** Where the endpoint is in the stack config (`endpoints[2]`), for messages. */
  configPath: string;
  /**
   * What the container runs (docker mode): the stack's image (else the lab's util image),
   * command, plain environment, working directory and user; or `attach`: a running
   * container of that name, which the lab wires and never starts or removes.
   */
  workload: {
    attach: boolean;
    image?: string;
    command?: string[];
    env?: Record<string, string>;
    workingDir?: string;
    user?: string;
  };
}

/**
 * The operator's seat: a namespace on the fabric, like a workstation on the network, from
 * which `npm run status -- --lab` reaches the hosts' sshd (never the root namespace). It is
 * addressed as a host is (a /32 and a gateway on the GCE-like fabric, else the LAN's prefix).
 */
export type OperatorPlan = Omit<HostPlan, "name" | "index">;

export interface FabricRoute {
  name: string;
  dest: string;
  via: string;
}

export interface LabPlan {
  stack: string;
  prefix: string;
  fabricNs: string;
  bridge: string;
  /** `router`: a GCE-like VPC (gateways on the bridge, static routes); `lan`: one L2 segment. */
  fabric: "router" | "lan";
  bgp: boolean;
  endpointMode: EndpointMode;
  /** Addresses on the fabric bridge (the regional gateways), as CIDRs. */
  bridgeAddresses: string[];
  hosts: HostPlan[];
  endpoints: EndpointPlan[];
  operator: OperatorPlan;
  /** The routes the GCE fabric would hold (the stack's static routes). */
  fabricRoutes: FabricRoute[];
}

/** The lab prefix of a stack: `cl` + 6 hex of its name's hash, unique per stack. */
export function labPrefix(stack: string): string {
  return LAB_PREFIX + createHash("sha256").update(`calico-lab/${stack}`).digest("hex").slice(0, 6);
}

/** The number of leading bits all addresses share. */
function commonBits(addresses: string[]): number {
  const ints = addresses.map(ipToInt);
  let bits = 32;
  for (const n of ints.slice(1)) {
    const diff = (n ^ ints[0]!) >>> 0;
    bits = Math.min(bits, diff === 0 ? 32 : Math.clz32(diff));
  }
  return bits;
}

function networkOf(ip: string, bits: number): string {
  return ipaddr.IPv4.networkAddressFromCIDR(`${ip}/${bits}`).toString();
}

export function buildPlan(
  model: ClusterModel,
  stack: string,
  endpointMode: EndpointMode = "netns",
): LabPlan {
  const prefix = labPrefix(stack);
  const config = model.config;
  const router = config.platform === "gce";
  let lanBits = 24;
  if (!router) {
    // One LAN whose prefix covers every host address (a /24 when they fit in one), so that
    // BGP `session: direct` finds its neighbours on a connected network.
    lanBits = Math.min(24, commonBits(model.hosts.map((h) => h.internalAddress)));
    const lan = `${networkOf(model.hosts[0]!.internalAddress, lanBits)}/${lanBits}`;
    const [poolNet, poolBits] = ipaddr.IPv4.parseCIDR(config.endpointPool);
    const [lanNet] = ipaddr.IPv4.parseCIDR(lan);
    const overlap =
      lanBits <= poolBits ? poolNet.match(lanNet, lanBits) : lanNet.match(poolNet, poolBits);
    if (overlap) {
      throw new Error(
        `hosts[*].internalAddress: the smallest network holding every host address, ${lan}, ` +
          `overlaps endpointPool ${config.endpointPool}; the lab cannot put the hosts on one LAN`,
      );
    }
  }
  const subnetOf = new Map(config.gce.subnets.map((s) => [s.region, s.cidr]));
  const gatewayOf = (region: string) => {
    const subnet = subnetOf.get(region)!;
    return intToIp(ipToInt(subnet.split("/")[0]!) + 1);
  };
  const hosts: HostPlan[] = model.hosts.map((h) => ({
    name: h.name,
    index: h.index,
    ns: `${prefix}-h-${h.name}`,
    address: h.internalAddress,
    prefixLength: router ? 32 : lanBits,
    ...(router ? { gateway: gatewayOf(h.region) } : {}),
    uplink: "eth0",
    fabricPort: `h${h.index}`,
  }));
  const endpoints: EndpointPlan[] = model.endpoints.map((e, i) => {
    // Docker mode: Docker's id, known once the container exists (the tap name follows it).
    const id = syntheticEndpointId(e.name);
    // The wiring script takes namespace names of at most 63 characters.
    const named = `${prefix}-e-${e.name}`;
    const ns =
      endpointMode === "docker"
        ? netnsLinkName(e.name)
        : named.length <= 63
          ? named
          : `${prefix}-x${i}`;
    const base = { name: e.name, host: e.host, ip: e.ip, group: e.group };
    const w = e.workload;
    const workload: EndpointPlan["workload"] =
      w.kind === "attach"
        ? { attach: true }
        : {
            attach: false,
            ...(w.image !== undefined ? { image: w.image } : {}),
            ...(w.command !== undefined ? { command: w.command } : {}),
            ...(Object.keys(w.env).length > 0 ? { env: w.env } : {}),
            ...(w.workingDir !== undefined ? { workingDir: w.workingDir } : {}),
            ...(w.user !== undefined ? { user: w.user } : {}),
          };
    return {
      ...base,
      container: e.containerName,
      ns,
      id,
      tap: tapName(id),
      configPath: e.configPath,
      workload,
    };
  });
  const addressOf = new Map(model.hosts.map((h) => [h.name, h.internalAddress]));
  // The operator: a free address of the first host's subnet (GCE) or of the LAN, from the top.
  const first = hosts[0]!;
  const [opNet, opBits] = router
    ? ipaddr.IPv4.parseCIDR(subnetOf.get(model.hosts[0]!.region)!)
    : ipaddr.IPv4.parseCIDR(`${first.address}/${lanBits}`);
  const used = new Set(hosts.map((h) => h.address));
  let op = ipToInt(networkOf(opNet.toString(), opBits)) + 2 ** (32 - opBits) - 3;
  while (used.has(intToIp(op))) op--;
  const operator: OperatorPlan = {
    ns: `${prefix}-op`,
    address: intToIp(op),
    prefixLength: router ? 32 : lanBits,
    ...(first.gateway !== undefined ? { gateway: first.gateway } : {}),
    uplink: "eth0",
    fabricPort: "op0",
  };
  return {
    stack,
    prefix,
    fabricNs: `${prefix}-fabric`,
    bridge: "br0",
    fabric: router ? "router" : "lan",
    bgp: config.bgp.enabled,
    endpointMode,
    bridgeAddresses: router
      ? config.gce.subnets
          .filter((s) => model.hosts.some((h) => h.region === s.region))
          .map((s) => `${gatewayOf(s.region)}/${s.cidr.split("/")[1]}`)
      : [],
    hosts,
    endpoints,
    operator,
    fabricRoutes: model.routes.map((r) => ({
      name: r.name,
      dest: r.destRange,
      via: addressOf.get(r.host)!,
    })),
  };
}

/** Every namespace the lab creates, fabric first (docker mode: endpoints are containers). */
export function planNamespaces(plan: LabPlan): string[] {
  return [
    plan.fabricNs,
    plan.operator.ns,
    ...plan.hosts.map((h) => h.ns),
    ...(plan.endpointMode === "netns" ? plan.endpoints.map((e) => e.ns) : []),
  ];
}

/** True when `ns` is one of this stack's lab namespaces (for the sweep in `down`). */
export function isLabNamespace(plan: Pick<LabPlan, "prefix">, ns: string): boolean {
  return ns.startsWith(`${plan.prefix}-`);
}
