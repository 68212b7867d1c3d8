/**
 * `bird.conf` for one host (BIRD 1.x): the seed's device/kernel/direct protocols, one
 * `template bgp` holding what every session shares (as Calico's own BIRD templates do), and
 * one short `protocol bgp … from` block per peer (BIRD 1.x takes one neighbour per block),
 * every session filtered to the endpoint pool.
 */
import type { ClusterModel, HostModel, PeerModel } from "../model.js";
import { banner } from "./text.js";

/** Names of the filters defined once per bird.conf. */
export const BIRD_FILTERS = {
  import: "calico_pool_import",
  export: "calico_pool_export",
  kernel: "calico_kernel_export",
} as const;

/** Seconds; small so that a restarted peer is talked to again within seconds. */
const CONNECT_RETRY_SECONDS = 5;
const ERROR_WAIT_MIN_SECONDS = 1;
const ERROR_WAIT_MAX_SECONDS = 10;
const HOLD_SECONDS = 30;
const KEEPALIVE_SECONDS = 10;

/** The one `template bgp` every peer's `protocol bgp … from` block inherits. */
export const BIRD_BGP_TEMPLATE = "calico_peer";

/**
 * The session settings every peer of `host` shares: AS, source address, multihop or direct,
 * next hop handling, timers and the pool filters.
 */
function bgpTemplate(model: ClusterModel, host: HostModel): string {
  const { asNumber, session, connectDelaySeconds } = model.config.bgp;
  const lines = [
    "# What every BGP session of this host shares; each peer below adds its neighbour.",
    `template bgp ${BIRD_BGP_TEMPLATE} {`,
    `  local as ${asNumber};`,
    `  source address ${host.internalAddress};`,
  ];
  if (session === "multihop") {
    lines.push("  multihop;", "  gateway recursive;");
  } else {
    lines.push("  direct;", "  gateway direct;");
  }
  if (!host.isRouteReflector) {
    // A reflector passes on its clients' routes with their own next hop: `next hop self`
    // would make every reflected route point at the reflector. Its own endpoint routes
    // carry its source address anyway (they come from the kernel without a next hop).
    lines.push("  next hop self;");
  }
  lines.push(
    `  connect delay time ${connectDelaySeconds};`,
    `  connect retry time ${CONNECT_RETRY_SECONDS};`,
    `  error wait time ${ERROR_WAIT_MIN_SECONDS}, ${ERROR_WAIT_MAX_SECONDS};`,
    `  hold time ${HOLD_SECONDS};`,
    `  keepalive time ${KEEPALIVE_SECONDS};`,
    `  import filter ${BIRD_FILTERS.import};`,
    `  export filter ${BIRD_FILTERS.export};`,
    "}",
  );
  return lines.join("\n") + "\n";
}

function bgpBlock(model: ClusterModel, host: HostModel, peer: PeerModel): string {
  const { asNumber } = model.config.bgp;
  const role =
    model.config.bgp.peering === "full-mesh"
      ? "a full-mesh peer"
      : peer.rrClient
        ? "a route-reflector client of this host"
        : "a route reflector";
  const lines = [
    `# ${peer.host} (${peer.address}): ${role}.`,
    `protocol bgp ${peer.protocol} from ${BIRD_BGP_TEMPLATE} {`,
    `  description "${peer.host}";`,
    `  neighbor ${peer.address} as ${asNumber};`,
  ];
  if (host.isRouteReflector && peer.rrClient) {
    lines.push("  rr client;", `  rr cluster id ${host.internalAddress};`);
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}

/** BIRD 1.x configuration for `host`; meaningful when `config.bgp.enabled`. */
export function renderBirdConf(model: ClusterModel, host: HostModel): string {
  const pool = model.config.endpointPool;
  const set = `[ ${pool}+ ]`;
  const { peering } = model.config.bgp;
  const summary =
    peering === "full-mesh"
      ? "full mesh"
      : host.isRouteReflector
        ? "route reflector"
        : "route-reflector client";
  const head = `${banner(
    `bird.conf for host ${host.name} (BIRD 1.x): AS ${model.config.bgp.asNumber}, ${summary}, ` +
      `${host.peers.length} BGP session${host.peers.length === 1 ? "" : "s"}.`,
  )}
router id ${host.internalAddress};

# BIRD runs in the foreground in its container: \`docker logs bird\` shows this.
log stderr all;

# The endpoint pool ${pool}: only routes inside it are learnt from or told to peers.
filter ${BIRD_FILTERS.import} {
  if net ~ ${set} then accept;
  reject;
}

# Endpoint routes only: never the host's own \`unreachable ${pool}\` guard route (GCE with
# BGP), which would otherwise reach the peers as a route to the whole pool.
filter ${BIRD_FILTERS.export} {
  if dest = RTD_UNREACHABLE || dest = RTD_BLACKHOLE || dest = RTD_PROHIBIT then reject;
  if net ~ ${set} then accept;
  reject;
}

# Only routes learnt over BGP go into the kernel (Felix programs the local ones), and only
# usable ones: a route whose next hop does not resolve (on GCE, before the peer address is
# in place) would otherwise go in as an unreachable /32 and black-hole that endpoint.
filter ${BIRD_FILTERS.kernel} {
  if dest = RTD_UNREACHABLE || dest = RTD_BLACKHOLE || dest = RTD_PROHIBIT then reject;
  if source = RTS_BGP && net ~ ${set} then accept;
  reject;
}

# Watch interface up/down events.
protocol device {
  scan time 2;    # Scan interfaces every 2 seconds
}

# Synchronise BIRD's table with the kernel's.
protocol kernel {
  learn;          # Learn alien routes from the kernel (Felix's routes to local endpoints)
  persist;        # Don't remove routes on BIRD shutdown
  scan time 2;    # Scan the kernel routing table every 2 seconds
  graceful restart;
  import all;
  export filter ${BIRD_FILTERS.kernel};
}

# The hosts' own networks, so that next hops resolve (the GCE peer address included).
protocol direct {
  interface "-tap*", "*";
}
`;
  if (host.peers.length === 0) {
    return `${head}\n# No BGP peers: this host is the only one in the stack.\n`;
  }
  return [head, bgpTemplate(model, host), ...host.peers.map((p) => bgpBlock(model, host, p))].join(
    "\n",
  );
}
