/**
 * The GCE-with-BGP part of the host preparation script: the point-to-point peer address that
 * makes GCE's gateway a BGP neighbour (hosts get a /32), and the unreachable route for the
 * endpoint pool; both recorded in the state directory so removal undoes only what was
 * added. Pure: no I/O.
 */
import type { ClusterModel } from "../model.js";

/** True when the host script sets up the GCE peer address and unreachable pool route. */
export function gceBgp(model: ClusterModel): boolean {
  return model.config.platform === "gce" && model.config.bgp.enabled;
}

/** The bash functions `apply_gce_bgp`, `remove_peer_address` and `remove_unreachable`. */
export function gceBgpFunctions(): string {
  return `# "<iface> <gateway>" of the IPv4 default route.
default_route() {
  local -a words
  local i iface="" gateway=""
  read -r -a words < <(ip -4 route show default | head -n 1) || true
  for ((i = 0; i + 1 < \${#words[@]}; i++)); do
    case \${words[i]} in
      dev) iface=\${words[i + 1]} ;;
      via) gateway=\${words[i + 1]} ;;
    esac
  done
  [[ -n "$iface" && -n "$gateway" ]] || fail "no IPv4 default route with a gateway: cannot set up the BGP peer address"
  printf '%s %s\\n' "$iface" "$gateway"
}

has_peer_address() { # iface address gateway
  ip -4 -o addr show dev "$1" 2>/dev/null | grep -Fq " inet $2 peer $3/32 "
}

has_unreachable() { # cidr
  [[ -n "$(ip -4 route show exact "$1" type unreachable 2>/dev/null)" ]]
}

remove_peer_address() {
  local iface address gateway
  if [[ ! -f "$PEER_STATE" ]]; then
    say "no peer address was added"
    return 0
  fi
  read -r iface address gateway <"$PEER_STATE" || true
  if [[ -n "\${gateway:-}" ]] && has_peer_address "$iface" "$address" "$gateway"; then
    ip addr del "$address" peer "$gateway" dev "$iface"
    say "removed peer address $address peer $gateway from $iface"
  else
    say "peer address \${address:-?} peer \${gateway:-?} is already gone"
  fi
  rm -f -- "$PEER_STATE"
}

remove_unreachable() {
  local cidr
  if [[ ! -f "$UNREACHABLE_STATE" ]]; then
    say "no unreachable route was added"
    return 0
  fi
  read -r cidr <"$UNREACHABLE_STATE" || true
  if [[ -n "\${cidr:-}" ]] && has_unreachable "$cidr"; then
    ip route del unreachable "$cidr"
    say "removed route unreachable $cidr"
  else
    say "route unreachable \${cidr:-?} is already gone"
  fi
  rm -f -- "$UNREACHABLE_STATE"
}

apply_gce_bgp() {
  local iface gateway recorded=""
  read -r iface gateway < <(default_route)
  mkdir -p -- "$STATE_DIR"
  # BIRD refuses a gateway outside the interface's subnet, and GCE gives hosts a /32:
  # a point-to-point peer address makes the gateway a neighbour.
  if [[ -f "$PEER_STATE" ]]; then recorded=$(cat -- "$PEER_STATE"); fi
  if [[ -n "$recorded" && "$recorded" != "$iface $INTERNAL_ADDRESS $gateway" ]]; then
    remove_peer_address
    recorded=""
  fi
  if has_peer_address "$iface" "$INTERNAL_ADDRESS" "$gateway"; then
    say "peer address $INTERNAL_ADDRESS peer $gateway on $iface is in place"
  else
    ip addr add "$INTERNAL_ADDRESS" peer "$gateway" dev "$iface"
    printf '%s %s %s\\n' "$iface" "$INTERNAL_ADDRESS" "$gateway" >"$PEER_STATE"
    say "added peer address $INTERNAL_ADDRESS peer $gateway on $iface"
  fi
  # Endpoints are reachable only through the /32 routes Felix and BIRD add, not through
  # the default route; the /32s are more specific than this guard route.
  recorded=""
  if [[ -f "$UNREACHABLE_STATE" ]]; then recorded=$(cat -- "$UNREACHABLE_STATE"); fi
  if [[ -n "$recorded" && "$recorded" != "$ENDPOINT_POOL" ]]; then
    remove_unreachable
  fi
  if has_unreachable "$ENDPOINT_POOL"; then
    say "route unreachable $ENDPOINT_POOL is in place"
  else
    ip route add unreachable "$ENDPOINT_POOL"
    printf '%s\\n' "$ENDPOINT_POOL" >"$UNREACHABLE_STATE"
    say "added route unreachable $ENDPOINT_POOL"
  fi
}`;
}
