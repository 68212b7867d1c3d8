#!/usr/bin/env bash
# Calico endpoint wiring for 192_168_1_1 (192.168.1.1, group web) on host host-1.
# Rendered from the stack config by calico-docker; do not edit by hand.
#
# Usage: endpoint-192_168_1_1.sh add|remove [--netns NAME]      (as root, on host-1)
#
#   add     wire the container: a veth pair (MTU 1460 on both ends), host side $TAP,
#           container side eth0 with
#           $IP/32, MAC $MAC and a default route through eth0; on the host, proxy ARP
#           (with no delay) and route_localnet on $TAP, the ARP entry $IP -> $MAC and
#           the route $IP/32 dev $TAP (what Felix sets too). Idempotent; re-wires a restarted
#           container (the calico-agent service runs it at every container start).
#   remove  delete the host route, the tap (its container side goes with it) and the
#           namespace link.
#
# By default the container's network namespace is found from Docker
# (docker inspect -f '{{.State.Pid}}' $CONTAINER) and linked as $NETNS_DIR/$NETNS_LINK.
# --netns NAME uses the existing named namespace $NETNS_DIR/NAME instead (ip netns add).
#
# One add or remove of this endpoint at a time, whoever runs it (pulumi up, pulumi destroy,
# the host agent): each holds the lock file $LOCK_FILE (flock) while it works.
set -euo pipefail

ENDPOINT_NAME='192_168_1_1'
CONTAINER='192_168_1_1'
ENDPOINT_ID='042385007ad02ffc760324ea826cd20fecb08596ca680ce4b7b893f09e229d16'
TAP='tap042385007ad'
IP='192.168.1.1'
MAC='02:ca:c0:a8:01:01'
HOST_NAME='host-1'
NETNS_DIR='/var/run/netns'
NETNS_LINK='calico-192_168_1_1'
NETNS_RE='^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'
MTU='1460'
LOCK_FILE='/run/lock/calico-docker/endpoint-192_168_1_1.lock'

say() { printf '[calico-endpoint] %s: %s\n' "$ENDPOINT_NAME" "$*"; }
fail() {
  printf '[calico-endpoint] %s: error: %s\n' "$ENDPOINT_NAME" "$*" >&2
  exit 1
}
usage() {
  echo "usage: $0 add|remove [--netns NAME]" >&2
  exit 2
}

ACTION=${1:-}
[[ $# -gt 0 ]] && shift
NETNS=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --netns)
      [[ $# -ge 2 ]] || usage
      NETNS=$2
      shift 2
      ;;
    --netns=*)
      NETNS=${1#--netns=}
      shift
      ;;
    *) usage ;;
  esac
done
if [[ -n "$NETNS" && ! "$NETNS" =~ $NETNS_RE ]]; then
  fail "--netns: '$NETNS' is not a namespace name (letters, digits, '_', '.', '-'; at most 63)"
fi

# Hold the endpoint's lock (a stable file: the script is replaced with mv) until exit.
lock() {
  local fd
  if ! command -v flock >/dev/null 2>&1; then
    say "no flock here: running unlocked"
    return 0
  fi
  [[ -d "${LOCK_FILE%/*}" ]] || mkdir -p -- "${LOCK_FILE%/*}"
  exec {fd}>>"$LOCK_FILE"
  flock -w 120 "$fd" || fail "another add or remove of this endpoint held $LOCK_FILE for 120 s"
}

# Sets NS to the name of the endpoint's namespace under $NETNS_DIR.
resolve_netns() {
  local out pid id
  if [[ -n "$NETNS" ]]; then
    [[ -e "$NETNS_DIR/$NETNS" ]] || fail "no network namespace named '$NETNS' (see ip netns list)"
    NS=$NETNS
    return 0
  fi
  command -v docker >/dev/null 2>&1 || fail "docker is not installed here (or use --netns NAME)"
  out=$(docker inspect -f '{{.State.Pid}} {{.Id}}' "$CONTAINER" 2>&1) ||
    fail "cannot inspect container '$CONTAINER': $out"
  read -r pid id <<<"$out"
  [[ "$pid" =~ ^[1-9][0-9]*$ ]] || fail "container '$CONTAINER' is not running"
  [[ "$id" == "$ENDPOINT_ID" ]] ||
    fail "container '$CONTAINER' has id $id, but this script is for $ENDPOINT_ID: render it again"
  mkdir -p -- "$NETNS_DIR"
  if [[ "$(readlink -- "$NETNS_DIR/$NETNS_LINK" 2>/dev/null || true)" != "/proc/$pid/ns/net" ]]; then
    ln -sfn -- "/proc/$pid/ns/net" "$NETNS_DIR/$NETNS_LINK"
    say "linked $NETNS_DIR/$NETNS_LINK to the namespace of container $CONTAINER (pid $pid)"
  fi
  NS=$NETNS_LINK
}

# The interface index of a link of this (the host's) namespace.
ifindex() {
  local line
  line=$(ip -o link show dev "$1" 2>/dev/null) || return 1
  printf '%s\n' "${line%%:*}"
}

add() {
  local tap_index peer_line
  resolve_netns
  if tap_index=$(ifindex "$TAP"); then
    peer_line=$(ip -n "$NS" -o link show dev eth0 2>/dev/null || true)
    if [[ "$peer_line" == *"eth0@if$tap_index:"* ]]; then
      say "veth pair $TAP / eth0 is in place"
      repair
      say "wired on host $HOST_NAME: $IP on $TAP"
      return 0
    fi
    # The tap's other side is not this namespace's eth0 (a restarted container, or an
    # interrupted run): start again.
    ip link del dev "$TAP"
    say "deleted stale $TAP"
  fi
  create
  say "wired on host $HOST_NAME: $IP on $TAP"
}

# A new veth pair, its container side made as eth0 in the namespace, with its MTU and MAC;
# the tap's host side first, then eth0's address, links and default route: eth0 comes up
# with its host side ready (an ARP it sends at once is answered, not retried a second
# later). Two batches: a few processes rather than twenty, as the agent re-wires a
# restarted container.
create() {
  if ip -n "$NS" link show dev eth0 >/dev/null 2>&1; then
    fail "namespace '$NS' already has an eth0 that is not paired with $TAP"
  fi
  ip link add "$TAP" mtu "$MTU" type veth peer name eth0 mtu "$MTU" address "$MAC" netns "$NS"
  tap_sysctls
  ip -batch - <<BATCH
link set dev $TAP up
neigh replace $IP lladdr $MAC dev $TAP nud permanent
route replace $IP/32 dev $TAP
BATCH
  ip -n "$NS" -batch - <<BATCH
addr add $IP/32 dev eth0
link set dev eth0 up
link set dev lo up
route replace default dev eth0
BATCH
  say "created veth pair $TAP / eth0 (in namespace $NS, MTU $MTU, MAC $MAC, $IP/32, default route through eth0)"
  say "$TAP up, ARP entry $IP -> $MAC, host route $IP dev $TAP"
}

# An existing pair: each setting checked, and set again only where it differs.
repair() {
  local eth0_line addr
  if [[ "$(ip -o link show dev "$TAP")" != *" mtu $MTU "* ]]; then
    ip link set dev "$TAP" mtu "$MTU"
    say "$TAP MTU set to $MTU"
  fi
  eth0_line=$(ip -n "$NS" -o link show dev eth0)
  if [[ "$eth0_line" != *" mtu $MTU "* ]]; then
    ip -n "$NS" link set dev eth0 mtu "$MTU"
    say "eth0 MTU set to $MTU"
  fi
  if [[ "$eth0_line" != *" link/ether $MAC "* ]]; then
    ip -n "$NS" link set dev eth0 address "$MAC"
    say "eth0 MAC set to $MAC"
  fi
  # Exactly one IPv4 address on eth0: the endpoint's.
  while read -r addr; do
    if [[ -n "$addr" && "$addr" != "$IP/32" ]]; then
      ip -n "$NS" addr del "$addr" dev eth0
      say "removed old address $addr from eth0"
    fi
  done < <(ip -n "$NS" -4 -o addr show dev eth0 | awk '{ print $4 }')
  if ! ip -n "$NS" -4 -o addr show dev eth0 | grep -Fq " inet $IP/32 "; then
    ip -n "$NS" addr add "$IP/32" dev eth0
    say "eth0 has address $IP/32"
  fi
  ip -n "$NS" link set dev eth0 up
  ip -n "$NS" link set dev lo up
  if [[ "$(ip -n "$NS" -4 route show default)" != "default dev eth0 scope link "* ]]; then
    ip -n "$NS" route replace default dev eth0
    say "default route through eth0"
  fi
  ip link set dev "$TAP" up
  tap_sysctls
  if [[ "$(ip -4 neigh show "$IP" dev "$TAP")" != *"lladdr $MAC PERMANENT"* ]]; then
    ip -4 neigh replace "$IP" lladdr "$MAC" dev "$TAP" nud permanent
    say "ARP entry $IP -> $MAC on $TAP"
  fi
  if [[ "$(ip -4 route show exact "$IP/32")" != "$IP dev $TAP "* ]]; then
    ip -4 route replace "$IP/32" dev "$TAP"
    say "host route $IP dev $TAP"
  fi
}

# What Felix sets on an enabled endpoint's tap, with the same values (read and written
# with bash alone: no process each).
tap_sysctls() {
  local conf="/proc/sys/net/ipv4/conf/$TAP" key value
  for key in proxy_arp route_localnet; do
    read -r value <"$conf/$key"
    if [[ "$value" != 1 ]]; then
      echo 1 >"$conf/$key"
      say "$key on $TAP"
    fi
  done
  # Not Felix's, and harmless to it: answer the container's first ARP at once, not after
  # the default random delay of up to 0.8 s, so a re-wired endpoint is reachable sooner.
  read -r value <"/proc/sys/net/ipv4/neigh/$TAP/proxy_delay"
  [[ "$value" == 0 ]] || echo 0 >"/proc/sys/net/ipv4/neigh/$TAP/proxy_delay"
}

remove() {
  # Each step tolerates what is already gone (a container that went away takes its eth0,
  # and with it the tap and the host route).
  if [[ -n "$(ip -4 route show exact "$IP/32" dev "$TAP" 2>/dev/null)" ]] &&
    ip -4 route del "$IP/32" dev "$TAP" 2>/dev/null; then
    say "deleted the host route $IP dev $TAP"
  fi
  if ip link show dev "$TAP" >/dev/null 2>&1 && ip link del dev "$TAP" 2>/dev/null; then
    say "deleted $TAP and the container's eth0"
  elif ip link show dev "$TAP" >/dev/null 2>&1; then
    fail "cannot delete $TAP"
  else
    say "no $TAP: nothing to delete"
  fi
  if [[ -z "$NETNS" && -L "$NETNS_DIR/$NETNS_LINK" ]]; then
    rm -f -- "$NETNS_DIR/$NETNS_LINK"
    say "removed the namespace link $NETNS_DIR/$NETNS_LINK"
  fi
}

case "$ACTION" in
  add | remove) ;;
  *) usage ;;
esac
lock
"$ACTION"
