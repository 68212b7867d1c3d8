#!/usr/bin/env bash
# Calico host preparation for host-1.
# Rendered from the stack config by calico-docker; do not edit by hand.
#
# Usage: calico-host-prepare.sh apply|remove      (as root)
#
#   apply   load the kernel modules Felix needs (and persist them), create the directories,
#           enable IP forwarding, SNAT endpoint traffic that leaves the pool and, on GCE
#           with BGP, add the point-to-point peer address and the unreachable pool route.
#           It installs the host agent as /opt/calico/bin/calico-agent.sh and, on a systemd host,
#           enables and starts calico-agent.service (restarted when the agent changes):
#           it wires endpoint containers each time they start and restarts unhealthy
#           Calico containers.
#           Idempotent: a second run changes nothing.
#           On a systemd host, when installed as /opt/calico/bin/calico-host-prepare.sh,
#           apply also enables calico-host-prepare.service, which runs apply again at
#           every boot (the SNAT rule and the routes do not survive a reboot otherwise).
#   remove  undo the network changes of apply: the agent and its unit, the boot unit,
#           the SNAT chain, and the peer address and unreachable route (only those apply
#           added, as recorded in the state directory). Directories, modules and IP
#           forwarding stay (Docker needs forwarding too).
#
# Environment: CALICO_ROOT  prefix for every file and directory the script writes
#              (default empty: the real /); tests and the lab point it at a scratch dir.
set -euo pipefail

HOST_NAME='host-1'
INTERNAL_ADDRESS='10.240.0.2'
ENDPOINT_POOL='192.168.0.0/16'
GCE_BGP='no'
SNAT_CHAIN='CALICO-SNAT'
SNAT_COMMENT='calico-docker: SNAT for endpoints leaving the pool'
SNAT_KEEP_COMMENT='calico-docker: endpoints keep their address to the hosts'
KERNEL_MODULES=('ip_tables' 'iptable_filter' 'iptable_nat' 'ip6_tables' 'xt_set')
HOST_DIRS=('/var/log/calico' '/var/run/netns' '/opt/plugin/data' '/etc/calico' '/opt/calico/bin' '/var/lib/calico')
SYSCTLS=('net.ipv4.ip_forward=1')
# Destinations endpoint traffic keeps its own source to (the hosts' network, the metadata
# server): never masqueraded, so the firewall's host-source rules never admit a container.
SNAT_EXCLUDE=('10.240.0.0/16' '169.254.169.254/32')

HOST_SCRIPT='/opt/calico/bin/calico-host-prepare.sh'
BOOT_UNIT='calico-host-prepare.service'
BOOT_UNIT_TEXT=$(
  cat <<'UNIT'
[Unit]
Description=Calico host preparation: SNAT for the endpoint pool (and BGP routes on GCE)
Wants=network-online.target
After=network-online.target docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=5min
ExecStart=/opt/calico/bin/calico-host-prepare.sh apply

[Install]
WantedBy=multi-user.target
UNIT
)
AGENT_SCRIPT='/opt/calico/bin/calico-agent.sh'
AGENT_UNIT='calico-agent.service'
AGENT_UNIT_TEXT=$(
  cat <<'UNIT'
[Unit]
Description=Calico host agent: wires endpoint containers when they start, restarts unhealthy Calico containers
Wants=docker.service
After=docker.service network-online.target calico-host-prepare.service

[Service]
Type=simple
ExecStart=/opt/calico/bin/calico-agent.sh run
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
UNIT
)
AGENT_TEXT=$(
  cat <<'CALICO_AGENT_SCRIPT'
#!/usr/bin/env bash
# Calico host agent for host-1.
# Rendered from the stack config by calico-docker; do not edit by hand.
#
# Usage: calico-agent.sh run|once      (as root, on host-1)
#
#   run    follow Docker's events forever: every start of an endpoint container labelled
#          calico-docker.role=endpoint and calico-docker.host=host-1 runs that endpoint's
#          script "endpoint-<name>.sh add" (<name> from its calico-docker.endpoint label),
#          which gives the container its eth0, address, MAC and route again and restores
#          the tap's host route and proxy ARP. So does every start of the container of an
#          attached endpoint (attach: true: run by something else, with no labels of ours),
#          known by its name (on this host: none).
#          Starts are wired in parallel. A full pass over the running endpoint containers,
#          attached ones included, is made at start and each time the daemon comes
#          back (the events stream ends: the agent asks every 0.2 s, after 10 s every 2 s).
#          A system container of this host (felix, aclmgr, bird, plugin-*) that Docker
#          reports unhealthy is restarted (docker restart), with the reason logged.
#   once   one pass (wire every running endpoint container, restart unhealthy system
#          containers), then exit: 0 when every endpoint with a script was wired.
#
# One line per wired, skipped or failed endpoint goes to stdout (the journal). A container
# with no script is reported and skipped; a failing script is logged and the agent goes on.
# An attached container that is not running is logged once, and skipped until it appears.
#
# Environment: CALICO_SCRIPT_DIR  where the endpoint scripts are (default /opt/calico/bin)
#              DOCKER_HOST        the daemon to follow (the docker CLI's default otherwise)
set -uo pipefail

HOST_NAME='host-1'
DEFAULT_SCRIPT_DIR='/opt/calico/bin'
ROLE_LABEL='calico-docker.role'
HOST_LABEL='calico-docker.host'
ENDPOINT_LABEL='calico-docker.endpoint'
NAME_RE='^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'
SCRIPT_DIR="${CALICO_SCRIPT_DIR:-$DEFAULT_SCRIPT_DIR}"
# The attached endpoints of this host (attach: true): endpoint and container names.
ATTACHED=()
declare -A IS_ATTACHED=()
for _n in "${ATTACHED[@]}"; do IS_ATTACHED[$_n]=1; done
# Attached endpoints reported missing (logged once until they appear).
declare -A MISSING=()
MAX_JOBS=16
# Docker's output is read as JSON strings, one record a line, fields separated by tabs: a
# label value cannot break a record (JSON escapes newlines and tabs), and each field must
# be a plain name (see field) before it is used.
TAB=$'\t'
json() { printf '{{json %s}}' "$1"; }
EVENT_FORMAT="$(json .Action)$TAB$(json .Actor.ID)$TAB$(json "(index .Actor.Attributes \"$ROLE_LABEL\")")$TAB$(json "(index .Actor.Attributes \"$ENDPOINT_LABEL\")")$TAB$(json '(index .Actor.Attributes "name")')$TAB$(json "(index .Actor.Attributes \"$HOST_LABEL\")")"
PS_ENDPOINTS_FORMAT="$(json .ID)$TAB$(json "(.Label \"$ENDPOINT_LABEL\")")$TAB$(json .Names)"
PS_NAMES_FORMAT="$(json .ID)$TAB$(json .Names)"
PS_SYSTEM_FORMAT="$(json .ID)$TAB$(json .Names)$TAB$(json "(.Label \"$ROLE_LABEL\")")"
JSON_STR_RE='^"([^"\\]*)"$'
PLAIN_RE='^[A-Za-z0-9_.-]{0,128}$'
ACTION_RE='^[a-z_]+: [a-z]+$'
declare -A RESTARTING=()

log() { printf '[calico-agent] %s: %s\n' "$HOST_NAME" "$*"; }

# fields LINE VAR...: split one record of JSON strings into the named variables. Fails
# (nothing set) unless the record has exactly that many fields, each a JSON string of a
# plain value (letters, digits, '_', '.', '-', or empty; Docker's "health_status: unhealthy"
# action): a forged or hostile value, which JSON shows escaped, refuses the whole record.
fields() {
  local _line=$1 _f _i
  local -a _raw _names
  shift
  _names=("$@")
  IFS=$'\t' read -r -a _raw <<<"$_line"
  [[ ${#_raw[@]} -eq ${#_names[@]} ]] || return 1
  for ((_i = 0; _i < ${#_raw[@]}; _i++)); do
    _f=${_raw[_i]}
    [[ "$_f" =~ $JSON_STR_RE ]] || return 1
    _f=${BASH_REMATCH[1]}
    [[ "$_f" =~ $PLAIN_RE || "$_f" =~ $ACTION_RE ]] || return 1
    _raw[_i]=$_f
  done
  for ((_i = 0; _i < ${#_raw[@]}; _i++)); do printf -v "${_names[_i]}" '%s' "${_raw[_i]}"; done
}

# refused WHAT LINE: one log line for a record that is not plain names (shown escaped).
refused() { log "refused $1 from Docker (not plain names): ${2:0:200}"; }

# Microseconds since the epoch (bash 5), for the time a wiring took.
now_us() { local t=${EPOCHREALTIME:-0.0}; printf '%s\n' "${t/./}"; }

# wire ID NAME WHY: run the endpoint's script add; one log line whatever happens.
wire() {
  local id=$1 name=$2 why=$3 script out rc start ms last
  if [[ ! "$name" =~ $NAME_RE ]]; then
    log "skipped container ${id:0:12} ($why): label $ENDPOINT_LABEL='$name' is not an endpoint name"
    return 0
  fi
  script="$SCRIPT_DIR/endpoint-$name.sh"
  if [[ ! -f "$script" ]]; then
    log "skipped endpoint $name (container ${id:0:12}, $why): no script $script"
    return 0
  fi
  start=$(now_us)
  # The script takes the endpoint's lock itself: one add or remove at a time per endpoint.
  out=$(bash "$script" add 2>&1)
  rc=$?
  ms=$((($(now_us) - start) / 1000))
  if [[ $rc -eq 0 ]]; then
    log "wired endpoint $name (container ${id:0:12}, $why) in ${ms} ms"
    return 0
  fi
  last=$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -n 1)
  log "failed to wire endpoint $name (container ${id:0:12}, $why): $script add exited $rc: ${last:-no output}"
  return 1
}

# Run wire in the background, at most MAX_JOBS at once (once: remember the job).
spawn_wire() {
  while [[ $(jobs -rp | wc -l) -ge $MAX_JOBS ]]; do wait -n 2>/dev/null || true; done
  wire "$@" &
  if [[ "$MODE" == once ]]; then WIRE_PIDS+=("$!"); fi
}

# restart_unhealthy ID NAME ROLE: docker restart, with why.
restart_unhealthy() {
  local id=$1 name=$2 role=$3 why="no health log" out
  local -a health=()
  # The failing streak, then one line per health check Docker kept (output quoted).
  mapfile -t health < <(docker inspect -f '{{with .State.Health}}{{.FailingStreak}}{{range .Log}}{{"\n"}}exit {{.ExitCode}}: {{printf "%q" .Output}}{{end}}{{end}}' "$id" 2>/dev/null)
  if [[ ${#health[@]} -gt 1 ]]; then
    why="${health[0]} failed health check(s), last: ${health[-1]}"
  fi
  log "restarting $role container $name (${id:0:12}): Docker reports it unhealthy ($why)"
  if out=$(docker restart -t 10 "$id" 2>&1); then
    log "restarted $role container $name (${id:0:12})"
  else
    log "failed to restart $role container $name (${id:0:12}): $out"
  fi
}

spawn_restart() {
  local id=$1 pid=${RESTARTING[$1]:-}
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then return 0; fi
  restart_unhealthy "$@" &
  RESTARTING[$id]=$!
}

# One pass: every running endpoint container of this host, and unhealthy system ones.
pass() {
  local why=$1 list line id name role cname n=0
  local -A running=()
  if ! list=$(docker ps --no-trunc --filter "label=$ROLE_LABEL=endpoint" --filter "label=$HOST_LABEL=$HOST_NAME" --format "$PS_ENDPOINTS_FORMAT" 2>&1); then
    log "pass failed: docker ps: $list"
    return 1
  fi
  while IFS= read -r line; do
    [[ -n "$line" ]] || continue
    fields "$line" id name cname || {
      refused "a container" "$line"
      continue
    }
    # An attached container that also carries our labels is wired once, as attached.
    [[ -z "${IS_ATTACHED[$cname]:-}" ]] || continue
    spawn_wire "$id" "$name" "$why"
    n=$((n + 1))
  done <<<"$list"
  if [[ ${#ATTACHED[@]} -gt 0 ]]; then
    if ! list=$(docker ps --no-trunc --format "$PS_NAMES_FORMAT" 2>&1); then
      log "pass failed: docker ps: $list"
      return 1
    fi
    while IFS= read -r line; do
      if [[ -z "$line" ]] || ! fields "$line" id cname; then continue; fi
      if [[ -n "${IS_ATTACHED[$cname]:-}" ]]; then running[$cname]=$id; fi
    done <<<"$list"
    for name in "${ATTACHED[@]}"; do
      id=${running[$name]:-}
      if [[ -n "$id" ]]; then
        unset "MISSING[$name]"
        spawn_wire "$id" "$name" "$why"
        n=$((n + 1))
      elif [[ -z "${MISSING[$name]:-}" ]]; then
        MISSING[$name]=1
        log "skipped attached endpoint $name ($why): no running container named $name; skipped until it appears"
      fi
    done
  fi
  log "pass ($why): $n endpoint container(s) running"
  list=$(docker ps --no-trunc --filter "label=$HOST_LABEL=$HOST_NAME" --filter health=unhealthy --format "$PS_SYSTEM_FORMAT" 2>/dev/null) || list=""
  while IFS= read -r line; do
    [[ -n "$line" ]] || continue
    fields "$line" id name role || {
      refused "an unhealthy container" "$line"
      continue
    }
    [[ "$role" != endpoint ]] || continue
    spawn_restart "$id" "$name" "${role:-unlabelled}"
  done <<<"$list"
}

# Follow the events since SINCE until the stream ends.
follow() {
  local since=$1 fd line action id role name cname chost
  exec {fd}< <(exec docker events --since "$since" --filter type=container --filter event=start \
    --filter event=health_status --filter "label=$HOST_LABEL=$HOST_NAME" --format "$EVENT_FORMAT")
  EVENTS_PID=$!
  while IFS= read -r -u "$fd" line; do
    fields "$line" action id role name cname chost || {
      refused "an event" "$line"
      continue
    }
    case "$action" in
      start)
        if [[ -n "${IS_ATTACHED[$cname]:-}" ]]; then
          if [[ -n "${MISSING[$cname]:-}" ]]; then
            unset "MISSING[$cname]"
            log "attached endpoint $cname: container ${id:0:12} appeared"
          fi
          spawn_wire "$id" "$cname" "started"
        elif [[ "$role" == endpoint && "$chost" == "$HOST_NAME" ]]; then
          spawn_wire "$id" "$name" "started"
        fi
        ;;
      "health_status: unhealthy")
        if [[ "$role" != endpoint && "$chost" == "$HOST_NAME" && -z "${IS_ATTACHED[$cname]:-}" ]]; then
          spawn_restart "$id" "$cname" "${role:-unlabelled}"
        fi
        ;;
    esac
  done
  exec {fd}<&-
  wait "$EVENTS_PID" 2>/dev/null || true
  EVENTS_PID=""
}

stop_agent() {
  log "stopping"
  if [[ -n "${EVENTS_PID:-}" ]]; then kill "$EVENTS_PID" 2>/dev/null || true; fi
  exit 0
}

daemon_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

run_forever() {
  local since tries=0 waited=no
  trap stop_agent TERM INT
  log "following Docker for endpoints of host $HOST_NAME (scripts in $SCRIPT_DIR, docker ${DOCKER_HOST:-default})"
  while true; do
    if ! daemon_up; then
      if [[ "$waited" == no ]]; then log "Docker is not answering; retrying"; fi
      waited=yes
      # Every 0.2 s for the first 10 s (a daemon restart), then every 2 s.
      tries=$((tries + 1))
      if [[ $tries -le 50 ]]; then sleep 0.2; else sleep 2; fi
      continue
    fi
    tries=0
    # Events from just before the pass on are replayed, so no start falls between the two.
    since=$(date +%s.%N)
    if [[ "$waited" == yes ]]; then pass "Docker is back"; else pass "agent start"; fi
    waited=no
    follow "$since"
    log "the Docker events stream ended (daemon stopped or restarting); reconnecting"
    waited=yes
    sleep 0.2 # never a busy loop, whatever ended the stream
  done
}

once() {
  local pid failed=0
  daemon_up || {
    log "Docker is not answering"
    exit 1
  }
  pass "once" || exit 1
  for pid in "${WIRE_PIDS[@]}"; do wait "$pid" || failed=$((failed + 1)); done
  wait
  if [[ $failed -gt 0 ]]; then
    log "$failed endpoint(s) failed to wire"
    exit 1
  fi
}

EVENTS_PID=""
WIRE_PIDS=()
MODE=${1:-}
case "$MODE" in
  run) run_forever ;;
  once) once ;;
  *)
    echo "usage: $0 run|once" >&2
    exit 2
    ;;
esac
CALICO_AGENT_SCRIPT
)
CALICO_ROOT="${CALICO_ROOT:-}"
if [[ -n "$CALICO_ROOT" && "$CALICO_ROOT" != /* ]]; then
  echo "[calico-host] CALICO_ROOT must be an absolute path, got '$CALICO_ROOT'" >&2
  exit 2
fi
STATE_DIR="${CALICO_ROOT}/var/lib/calico"
PEER_STATE="${STATE_DIR}/gce-peer-address"
UNREACHABLE_STATE="${STATE_DIR}/unreachable-route"

say() { printf '[calico-host] %s\n' "$*"; }
fail() {
  printf '[calico-host] error: %s\n' "$*" >&2
  exit 1
}
# Write FILE with CONTENT unless it already holds exactly that. Returns 1 when the
# directory is not writable (read-only /etc).
write_file() {
  local file=$1 content=$2 dir
  dir=$(dirname -- "$file")
  if [[ -f "$file" && "$(cat -- "$file")" == "$content" ]]; then
    say "$file is up to date"
    return 0
  fi
  if ! mkdir -p -- "$dir" 2>/dev/null || ! printf '%s\n' "$content" >"$file.tmp.$$" 2>/dev/null; then
    rm -f -- "$file.tmp.$$" 2>/dev/null || true
    return 1
  fi
  mv -f -- "$file.tmp.$$" "$file"
  say "wrote $file"
}

apply_modules() {
  local m
  for m in "${KERNEL_MODULES[@]}"; do
    if [[ -d "/sys/module/$m" ]]; then
      say "kernel module $m: already loaded or built in"
    elif modprobe -- "$m" 2>/dev/null; then
      say "kernel module $m: loaded"
    else
      say "kernel module $m: cannot be loaded here (no module support, e.g. in a container); continuing"
    fi
  done
  if ! write_file "${CALICO_ROOT}/etc/modules-load.d/calico.conf" "$(printf '%s\n' "${KERNEL_MODULES[@]}")"; then
    say "/etc/modules-load.d is not writable: modules are not persisted across reboots"
  fi
}

apply_dirs() {
  local d
  for d in "${HOST_DIRS[@]}"; do
    if [[ -d "${CALICO_ROOT}$d" ]]; then
      say "directory ${CALICO_ROOT}$d exists"
    else
      mkdir -p -- "${CALICO_ROOT}$d"
      say "created directory ${CALICO_ROOT}$d"
    fi
  done
}

apply_sysctls() {
  local kv key value current persist=""
  for kv in "${SYSCTLS[@]}"; do
    key=${kv%%=*}
    value=${kv#*=}
    current=$(sysctl -n -- "$key")
    if [[ "$current" == "$value" ]]; then
      say "sysctl $key is $value"
    else
      sysctl -q -w -- "$key=$value" >/dev/null
      say "sysctl $key set to $value (was $current)"
    fi
    persist+="$key = $value"$'\n'
  done
  if ! write_file "${CALICO_ROOT}/etc/sysctl.d/calico.conf" "${persist%$'\n'}"; then
    say "/etc/sysctl.d is not writable: sysctls are not persisted across reboots"
  fi
}

# Felix writes the legacy x_tables through libiptc (python-iptables), whatever the host's own
# iptables uses; Flatcar's is nf_tables. Rules in the two backends do not see each other, so
# the SNAT chain goes where Felix's chains are: iptables-legacy, or an iptables that is
# legacy itself (before 1.8, or switched). docs/deploy.md, "One iptables backend".
legacy_iptables() {
  if command -v iptables-legacy >/dev/null 2>&1; then
    echo iptables-legacy
  elif command -v iptables >/dev/null 2>&1 && ! iptables -V 2>/dev/null | grep -q nf_tables; then
    echo iptables
  else
    fail "no legacy iptables here (iptables-legacy): Felix's chains are in the legacy tables, and the SNAT rule must be beside them"
  fi
}
IPT=""
ipt() { "$IPT" -w 5 -t nat "$@"; }

# The chain's rules, one per line, the words of each tab-separated ("-A CHAIN" left out):
# a RETURN per excluded destination, then the MASQUERADE rule.
rule_line() {
  local IFS=$'\t'
  printf '%s\n' "$*"
}
snat_rules() {
  local d
  local -a keep=() masq=()
  # -m comment may be missing on old kernels; the dedicated chain names the rules anyway.
  if "$IPT" -m comment --help >/dev/null 2>&1; then
    keep=(-m comment --comment "$SNAT_KEEP_COMMENT")
    masq=(-m comment --comment "$SNAT_COMMENT")
  fi
  for d in "${SNAT_EXCLUDE[@]}"; do
    rule_line -s "$ENDPOINT_POOL" -d "$d" "${keep[@]}" -j RETURN
  done
  rule_line -s "$ENDPOINT_POOL" '!' -d "$ENDPOINT_POOL" "${masq[@]}" -j MASQUERADE
}

# True when the chain holds exactly the wanted rules, the MASQUERADE one last.
snat_in_place() {
  local -a lines rule
  local line
  mapfile -t lines < <(snat_rules)
  [[ "$(ipt -S "$SNAT_CHAIN" | grep -c '^-A ')" == "${#lines[@]}" ]] || return 1
  [[ "$(ipt -S "$SNAT_CHAIN" | grep '^-A ' | tail -n 1)" == *" -j MASQUERADE"* ]] || return 1
  for line in "${lines[@]}"; do
    IFS=$'\t' read -r -a rule <<<"$line"
    ipt -C "$SNAT_CHAIN" "${rule[@]}" 2>/dev/null || return 1
  done
}

apply_snat() {
  local -a rule
  local line
  IPT=$(legacy_iptables)
  say "iptables for the SNAT chain: $IPT (Felix's backend, legacy)"
  if ! ipt -S "$SNAT_CHAIN" >/dev/null 2>&1; then
    ipt -N "$SNAT_CHAIN"
    say "created nat chain $SNAT_CHAIN"
  fi
  # Exactly the current rules: a changed pool or host network replaces the old ones.
  if snat_in_place; then
    say "SNAT rules for $ENDPOINT_POOL are in place"
  else
    ipt -F "$SNAT_CHAIN"
    while IFS= read -r line; do
      IFS=$'\t' read -r -a rule <<<"$line"
      ipt -A "$SNAT_CHAIN" "${rule[@]}"
    done < <(snat_rules)
    say "SNAT: $ENDPOINT_POOL to outside the pool is masqueraded, except to ${SNAT_EXCLUDE[*]} (chain $SNAT_CHAIN)"
  fi
  if ipt -C POSTROUTING -j "$SNAT_CHAIN" 2>/dev/null; then
    say "POSTROUTING jumps to $SNAT_CHAIN"
  else
    ipt -A POSTROUTING -j "$SNAT_CHAIN"
    say "POSTROUTING now jumps to $SNAT_CHAIN"
  fi
}

remove_snat() {
  if ! IPT=$(legacy_iptables 2>/dev/null); then
    say "no legacy iptables: no nat chain $SNAT_CHAIN to remove"
    return 0
  fi
  local removed=0
  while ipt -C POSTROUTING -j "$SNAT_CHAIN" 2>/dev/null; do
    ipt -D POSTROUTING -j "$SNAT_CHAIN"
    removed=1
  done
  if ipt -S "$SNAT_CHAIN" >/dev/null 2>&1; then
    ipt -F "$SNAT_CHAIN"
    ipt -X "$SNAT_CHAIN"
    removed=1
  fi
  if [[ $removed == 1 ]]; then say "removed nat chain $SNAT_CHAIN"; else say "no nat chain $SNAT_CHAIN"; fi
}

# "<iface> <gateway>" of the IPv4 default route.
default_route() {
  local -a words
  local i iface="" gateway=""
  read -r -a words < <(ip -4 route show default | head -n 1) || true
  for ((i = 0; i + 1 < ${#words[@]}; i++)); do
    case ${words[i]} in
      dev) iface=${words[i + 1]} ;;
      via) gateway=${words[i + 1]} ;;
    esac
  done
  [[ -n "$iface" && -n "$gateway" ]] || fail "no IPv4 default route with a gateway: cannot set up the BGP peer address"
  printf '%s %s\n' "$iface" "$gateway"
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
  if [[ -n "${gateway:-}" ]] && has_peer_address "$iface" "$address" "$gateway"; then
    ip addr del "$address" peer "$gateway" dev "$iface"
    say "removed peer address $address peer $gateway from $iface"
  else
    say "peer address ${address:-?} peer ${gateway:-?} is already gone"
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
  if [[ -n "${cidr:-}" ]] && has_unreachable "$cidr"; then
    ip route del unreachable "$cidr"
    say "removed route unreachable $cidr"
  else
    say "route unreachable ${cidr:-?} is already gone"
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
    printf '%s %s %s\n' "$iface" "$INTERNAL_ADDRESS" "$gateway" >"$PEER_STATE"
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
    printf '%s\n' "$ENDPOINT_POOL" >"$UNREACHABLE_STATE"
    say "added route unreachable $ENDPOINT_POOL"
  fi
}

# systemctl only for the real root of a systemd host.
use_systemctl() { [[ -z "$CALICO_ROOT" && -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; }

apply_boot_unit() {
  local unit="${CALICO_ROOT}/etc/systemd/system/$BOOT_UNIT" before=""
  if [[ ! -x "${CALICO_ROOT}$HOST_SCRIPT" ]]; then
    say "not installed as $HOST_SCRIPT: no boot unit (run apply again after a reboot)"
    return 0
  fi
  if [[ -f "$unit" ]]; then before=$(cat -- "$unit"); fi
  if ! write_file "$unit" "$BOOT_UNIT_TEXT"; then
    say "/etc/systemd/system is not writable: apply will not run again at boot"
    return 0
  fi
  if use_systemctl; then
    if [[ "$before" != "$BOOT_UNIT_TEXT" ]]; then systemctl daemon-reload; fi
    if systemctl is-enabled --quiet "$BOOT_UNIT" 2>/dev/null; then
      say "$BOOT_UNIT is enabled"
    else
      systemctl enable --quiet "$BOOT_UNIT"
      say "enabled $BOOT_UNIT: apply runs again at every boot"
    fi
  fi
}

remove_boot_unit() {
  local unit="${CALICO_ROOT}/etc/systemd/system/$BOOT_UNIT"
  if [[ ! -f "$unit" ]]; then
    say "no boot unit $BOOT_UNIT"
    return 0
  fi
  if use_systemctl; then systemctl disable --quiet "$BOOT_UNIT" 2>/dev/null || true; fi
  rm -f -- "$unit"
  if use_systemctl; then systemctl daemon-reload; fi
  say "removed boot unit $BOOT_UNIT"
}

# The host agent and its unit: written when changed; on a systemd host enabled, started,
# and restarted when the agent or its unit changed.
apply_agent() {
  local file="${CALICO_ROOT}$AGENT_SCRIPT" unit="${CALICO_ROOT}/etc/systemd/system/$AGENT_UNIT"
  local before_agent="" before_unit=""
  if [[ -f "$file" ]]; then before_agent=$(cat -- "$file"); fi
  if [[ -f "$unit" ]]; then before_unit=$(cat -- "$unit"); fi
  write_file "$file" "$AGENT_TEXT" || fail "cannot write $file"
  chmod 0755 -- "$file"
  if ! write_file "$unit" "$AGENT_UNIT_TEXT"; then
    say "/etc/systemd/system is not writable: run $AGENT_SCRIPT run yourself"
    return 0
  fi
  if use_systemctl; then
    if [[ "$before_unit" != "$AGENT_UNIT_TEXT" ]]; then systemctl daemon-reload; fi
    if ! systemctl is-enabled --quiet "$AGENT_UNIT" 2>/dev/null; then
      systemctl enable --quiet "$AGENT_UNIT"
      say "enabled $AGENT_UNIT"
    fi
    # --no-block: the agent's unit is ordered after the boot unit, which runs this at boot;
    # waiting for its start job here would wait for ourselves (a deadlock at every boot).
    if [[ "$before_agent" != "$AGENT_TEXT" || "$before_unit" != "$AGENT_UNIT_TEXT" ]]; then
      systemctl --no-block restart "$AGENT_UNIT"
      say "(re)start of $AGENT_UNIT queued"
    elif systemctl is-active --quiet "$AGENT_UNIT"; then
      say "$AGENT_UNIT is running"
    else
      systemctl --no-block start "$AGENT_UNIT"
      say "start of $AGENT_UNIT queued"
    fi
  fi
}

remove_agent() {
  local file="${CALICO_ROOT}$AGENT_SCRIPT" unit="${CALICO_ROOT}/etc/systemd/system/$AGENT_UNIT"
  if [[ -f "$unit" ]]; then
    if use_systemctl; then systemctl disable --now --quiet "$AGENT_UNIT" 2>/dev/null || true; fi
    rm -f -- "$unit"
    if use_systemctl; then systemctl daemon-reload; fi
    say "removed $AGENT_UNIT"
  else
    say "no unit $AGENT_UNIT"
  fi
  if [[ -f "$file" ]]; then
    rm -f -- "$file"
    say "removed $file"
  fi
}

apply() {
  say "preparing host $HOST_NAME ($INTERNAL_ADDRESS) for Calico"
  apply_modules
  apply_dirs
  apply_sysctls
  apply_snat
  if [[ "$GCE_BGP" == yes ]]; then
    apply_gce_bgp
  else
    # BGP on GCE was turned off since a previous apply: take back what it added.
    if [[ -f "$PEER_STATE" ]]; then remove_peer_address; fi
    if [[ -f "$UNREACHABLE_STATE" ]]; then remove_unreachable; fi
  fi
  apply_agent
  apply_boot_unit
  say "host $HOST_NAME is ready"
}

remove() {
  say "removing Calico's network changes from host $HOST_NAME"
  remove_agent
  remove_boot_unit
  remove_snat
  remove_peer_address
  remove_unreachable
  say "done"
}

case "${1:-}" in
  apply) apply ;;
  remove) remove ;;
  *)
    echo "usage: $0 apply|remove" >&2
    exit 2
    ;;
esac
