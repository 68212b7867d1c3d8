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
