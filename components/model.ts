/**
 * The cluster model: everything derived from the validated config that more than one part
 * needs (render, Pulumi components, the lab). Pure: no Pulumi, no I/O.
 */
import { createHash } from "node:crypto";
import type { CalicoConfig, EndpointConfig, GroupRules, HostConfig, Rule } from "./config.js";
import type { Deployment } from "./names.js";
import { routesFor, type RouteModel } from "./routes.js";

export { routesFor, type RouteModel };

/** Host paths where the program puts rendered files and the containers find them. */
export const PATHS = {
  configDir: "/etc/calico",
  felixCfg: "/etc/calico/felix.cfg",
  aclManagerCfg: "/etc/calico/acl_manager.cfg",
  birdConf: "/etc/calico/bird.conf",
  logDir: "/var/log/calico",
  netnsDir: "/var/run/netns",
  pluginDir: "/opt/plugin",
  dataDir: "/opt/plugin/data",
  scriptDir: "/opt/calico/bin",
  hostScript: "/opt/calico/bin/calico-host-prepare.sh",
  endpointScript: "/opt/calico/bin/calico-endpoint.sh",
  /** Where the GCE flavour of BGP records what it changed, so removal undoes exactly that. */
  stateDir: "/var/lib/calico",
} as const;

/** The ZeroMQ ports of PROTOCOL.md. */
export const PORTS = {
  pluginEndpoint: 9901,
  felix: 9902,
  pluginGroups: 9903,
  pluginPublish: 9904,
  aclRouter: 9905,
  aclPublish: 9906,
} as const;

export interface PeerModel {
  /** BIRD protocol name: unique per bird.conf, a valid BIRD symbol. */
  protocol: string;
  /** The peer host's name. */
  host: string;
  address: string;
  /** This host reflects routes to the peer (peer is a route-reflector client). */
  rrClient: boolean;
}

export interface EndpointModel extends EndpointConfig {
  /** Deterministic, locally administered unicast MAC of the container side. */
  mac: string;
  /** Docker container name (the endpoint name, as the seed named containers). */
  containerName: string;
  /** The plugin data file name in the data directory. */
  dataFile: string;
  /** The MTU of both ends of its veth (the config's vethMtu). */
  mtu: number;
}

export interface HostModel extends HostConfig {
  index: number;
  isController: boolean;
  isRouteReflector: boolean;
  /** BGP sessions of this host; empty when BGP is off. */
  peers: PeerModel[];
  endpoints: EndpointModel[];
}

/** A rule as PROTOCOL.md puts it on the wire: all four keys, null where unset. */
export interface WireRule {
  group: string | null;
  cidr: string | null;
  protocol: string | null;
  port: number | [number, number] | null;
}

export interface GroupModel {
  name: string;
  /** Endpoint names in the group. */
  members: string[];
  /** True when the stack gives this group rules; else the prototype's policy applies. */
  explicit: boolean;
  inbound: WireRule[];
  outbound: WireRule[];
}

export interface ClusterModel {
  config: CalicoConfig;
  controller: HostModel;
  hosts: HostModel[];
  endpoints: EndpointModel[];
  groups: GroupModel[];
  /** GCE static routes for the configured granularity; empty off GCE. */
  routes: RouteModel[];
  /**
   * The Pulumi project and stack the model is deployed as (from index.ts): the GCE names
   * and tags and the local SSH directory derive from it. Absent for render and the lab.
   */
  deployment?: Deployment;
}

/** `02:ca:` + the four octets of the IP: locally administered, unicast, unique per IP. */
export function endpointMac(ip: string): string {
  return ["02", "ca", ...ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0"))].join(
    ":",
  );
}

/** The host-side interface Felix expects: `tap` + the first 11 chars of the endpoint id. */
export function tapName(endpointId: string): string {
  return `tap${endpointId.slice(0, 11)}`;
}

/**
 * A stand-in endpoint id (64 hex chars, like a docker container id) for places with no
 * container: `npm run render` and the lab. Deterministic in the endpoint's name.
 */
export function syntheticEndpointId(name: string): string {
  return createHash("sha256").update(`calico-docker/endpoint/${name}`).digest("hex");
}

function toWire(rule: Rule): WireRule {
  return {
    group: rule.group ?? null,
    cidr: rule.cidr ?? null,
    protocol: rule.protocol ?? null,
    port: rule.port ?? null,
  };
}

/** The prototype's policy: members reach each other and start traffic anywhere. */
export function prototypePolicy(group: string): Pick<GroupModel, "inbound" | "outbound"> {
  const own: WireRule = { group, cidr: null, protocol: null, port: null };
  return {
    inbound: [own],
    outbound: [own, { group: null, cidr: "0.0.0.0/0", protocol: null, port: null }],
  };
}

function peersFor(config: CalicoConfig, host: string, hosts: Omit<HostModel, "peers">[]) {
  if (!config.bgp.enabled) return [];
  const reflectors = new Set(config.bgp.routeReflectors);
  const self = hosts.find((h) => h.name === host)!;
  const others = hosts.filter((h) => h.name !== host);
  const chosen =
    config.bgp.peering === "full-mesh" || self.isRouteReflector
      ? others // a reflector peers with everyone: clients and the other reflectors
      : others.filter((h) => reflectors.has(h.name));
  return chosen.map<PeerModel>((peer) => ({
    protocol: `peer_${peer.name.replaceAll("-", "_")}`,
    host: peer.name,
    address: peer.internalAddress,
    rrClient:
      config.bgp.peering === "route-reflector" && self.isRouteReflector && !peer.isRouteReflector,
  }));
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list === undefined) out.set(k, [item]);
    else list.push(item);
  }
  return out;
}

export function buildModel(config: CalicoConfig, deployment?: Deployment): ClusterModel {
  const endpoints: EndpointModel[] = config.endpoints.map((e) => ({
    ...e,
    mac: endpointMac(e.ip),
    containerName: e.name,
    dataFile: `${e.name}.txt`,
    mtu: config.vethMtu,
  }));
  // Endpoints by host and members by group, each in one pass (stack order kept).
  const endpointsOf = groupBy(endpoints, (e) => e.host);
  const reflectors = new Set(config.bgp.enabled ? config.bgp.routeReflectors : []);
  const bare = config.hosts.map((h, index) => ({
    ...h,
    index,
    isController: h.name === config.controller,
    isRouteReflector: reflectors.has(h.name),
    endpoints: endpointsOf.get(h.name) ?? [],
  }));
  const hosts: HostModel[] = bare.map((h) => ({ ...h, peers: peersFor(config, h.name, bare) }));

  const groupNames = [
    ...new Set([...endpoints.map((e) => e.group), ...Object.keys(config.groups)]),
  ];
  const membersOf = groupBy(endpoints, (e) => e.group);
  const groups: GroupModel[] = groupNames.sort().map((name) => {
    // Own keys only: a group called `constructor` or `toString` is not Object's method.
    const rules: GroupRules | undefined = Object.hasOwn(config.groups, name)
      ? config.groups[name]
      : undefined;
    return {
      name,
      members: (membersOf.get(name) ?? []).map((e) => e.name),
      explicit: rules !== undefined,
      ...(rules !== undefined
        ? { inbound: rules.inbound.map(toWire), outbound: rules.outbound.map(toWire) }
        : prototypePolicy(name)),
    };
  });

  return {
    config,
    controller: hosts.find((h) => h.isController)!,
    hosts,
    endpoints,
    groups,
    // GCE's fabric only delivers endpoint addresses it has routes for, BGP or not (with BGP
    // the hosts' own routes then follow BIRD, as the seed's "Running bird under GCE").
    routes: config.platform === "gce" ? routesFor(config) : [],
    ...(deployment !== undefined ? { deployment } : {}),
  };
}
