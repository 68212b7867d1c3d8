/**
 * The host preparation script (bash, run as root): `apply` prepares a host for Calico and is
 * safe to re-run; `remove` undoes what `apply` changed in the network (SNAT chain, and on
 * GCE with BGP the peer address and the unreachable pool route), also safe to re-run.
 */
import type { ClusterModel, HostModel } from "../model.js";
import { PATHS } from "../model.js";
import { AGENT_SCRIPT, AGENT_UNIT, agentUnit, renderAgentScript } from "./agent-script.js";
import { gceBgp, gceBgpFunctions } from "./host-gce-bgp.js";
import { SNAT_CHAIN, snatExclusions, snatFunctions } from "./host-snat.js";
import { BOOT_UNIT, bootUnit, systemdFunctions } from "./host-units.js";
import { banner, shAssignments, shQuote } from "./text.js";

export { gceBgp } from "./host-gce-bgp.js";
export { SNAT_CHAIN, METADATA_SERVER, snatExclusions } from "./host-snat.js";
export { BOOT_UNIT, BOOT_UNIT_TIMEOUT, bootUnit } from "./host-units.js";

/**
 * Kernel modules Felix needs on the host (a container cannot load them): the legacy
 * x_tables tables it writes through libiptc (a host whose own iptables is nf_tables, like
 * Flatcar, loads none of them), ip6_tables and ipsets.
 */
export const KERNEL_MODULES = [
  "ip_tables",
  "iptable_filter",
  "iptable_nat",
  "ip6_tables",
  "xt_set",
] as const;
/** Directories the containers and the program need, created by `apply`. */
export const HOST_DIRS = [
  PATHS.logDir,
  PATHS.netnsDir,
  PATHS.dataDir,
  PATHS.configDir,
  PATHS.scriptDir,
  PATHS.stateDir,
] as const;
/** Kernel settings `apply` makes (Felix sets the per-tap ones itself). */
export const HOST_SYSCTLS = [["net.ipv4.ip_forward", "1"]] as const;

export function renderHostScript(model: ClusterModel, host: HostModel): string {
  const vars = shAssignments([
    ["HOST_NAME", host.name],
    ["INTERNAL_ADDRESS", host.internalAddress],
    ["ENDPOINT_POOL", model.config.endpointPool],
    ["GCE_BGP", gceBgp(model) ? "yes" : "no"],
    ["SNAT_CHAIN", SNAT_CHAIN],
    ["SNAT_COMMENT", "calico-docker: SNAT for endpoints leaving the pool"],
    ["SNAT_KEEP_COMMENT", "calico-docker: endpoints keep their address to the hosts"],
  ]);
  const exclude = snatExclusions(model).map(shQuote).join(" ");
  const modules = KERNEL_MODULES.map((m) => `'${m}'`).join(" ");
  const dirs = HOST_DIRS.map((d) => `'${d}'`).join(" ");
  const sysctls = HOST_SYSCTLS.map(([k, v]) => `'${k}=${v}'`).join(" ");
  return `#!/usr/bin/env bash
${banner(`Calico host preparation for ${host.name}.`)}#
# Usage: calico-host-prepare.sh apply|remove      (as root)
#
#   apply   load the kernel modules Felix needs (and persist them), create the directories,
#           enable IP forwarding, SNAT endpoint traffic that leaves the pool and, on GCE
#           with BGP, add the point-to-point peer address and the unreachable pool route.
#           It installs the host agent as ${AGENT_SCRIPT} and, on a systemd host,
#           enables and starts ${AGENT_UNIT} (restarted when the agent changes):
#           it wires endpoint containers each time they start and restarts unhealthy
#           Calico containers.
#           Idempotent: a second run changes nothing.
#           On a systemd host, when installed as ${PATHS.hostScript},
#           apply also enables ${BOOT_UNIT}, which runs apply again at
#           every boot (the SNAT rule and the routes do not survive a reboot otherwise).
#   remove  undo the network changes of apply: the agent and its unit, the boot unit,
#           the SNAT chain, and the peer address and unreachable route (only those apply
#           added, as recorded in the state directory). Directories, modules and IP
#           forwarding stay (Docker needs forwarding too).
#
# Environment: CALICO_ROOT  prefix for every file and directory the script writes
#              (default empty: the real /); tests and the lab point it at a scratch dir.
set -euo pipefail

${vars}
KERNEL_MODULES=(${modules})
HOST_DIRS=(${dirs})
SYSCTLS=(${sysctls})
# Destinations endpoint traffic keeps its own source to (the hosts' network, the metadata
# server): never masqueraded, so the firewall's host-source rules never admit a container.
SNAT_EXCLUDE=(${exclude})

HOST_SCRIPT=${shQuote(PATHS.hostScript)}
BOOT_UNIT=${shQuote(BOOT_UNIT)}
BOOT_UNIT_TEXT=$(
  cat <<'UNIT'
${bootUnit()}
UNIT
)
AGENT_SCRIPT=${shQuote(AGENT_SCRIPT)}
AGENT_UNIT=${shQuote(AGENT_UNIT)}
AGENT_UNIT_TEXT=$(
  cat <<'UNIT'
${agentUnit()}
UNIT
)
AGENT_TEXT=$(
  cat <<'CALICO_AGENT_SCRIPT'
${renderAgentScript(model, host).trimEnd()}
CALICO_AGENT_SCRIPT
)
CALICO_ROOT="\${CALICO_ROOT:-}"
if [[ -n "$CALICO_ROOT" && "$CALICO_ROOT" != /* ]]; then
  echo "[calico-host] CALICO_ROOT must be an absolute path, got '$CALICO_ROOT'" >&2
  exit 2
fi
STATE_DIR="\${CALICO_ROOT}${PATHS.stateDir}"
PEER_STATE="\${STATE_DIR}/gce-peer-address"
UNREACHABLE_STATE="\${STATE_DIR}/unreachable-route"

say() { printf '[calico-host] %s\\n' "$*"; }
fail() {
  printf '[calico-host] error: %s\\n' "$*" >&2
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
  if ! mkdir -p -- "$dir" 2>/dev/null || ! printf '%s\\n' "$content" >"$file.tmp.$$" 2>/dev/null; then
    rm -f -- "$file.tmp.$$" 2>/dev/null || true
    return 1
  fi
  mv -f -- "$file.tmp.$$" "$file"
  say "wrote $file"
}

apply_modules() {
  local m
  for m in "\${KERNEL_MODULES[@]}"; do
    if [[ -d "/sys/module/$m" ]]; then
      say "kernel module $m: already loaded or built in"
    elif modprobe -- "$m" 2>/dev/null; then
      say "kernel module $m: loaded"
    else
      say "kernel module $m: cannot be loaded here (no module support, e.g. in a container); continuing"
    fi
  done
  if ! write_file "\${CALICO_ROOT}/etc/modules-load.d/calico.conf" "$(printf '%s\\n' "\${KERNEL_MODULES[@]}")"; then
    say "/etc/modules-load.d is not writable: modules are not persisted across reboots"
  fi
}

apply_dirs() {
  local d
  for d in "\${HOST_DIRS[@]}"; do
    if [[ -d "\${CALICO_ROOT}$d" ]]; then
      say "directory \${CALICO_ROOT}$d exists"
    else
      mkdir -p -- "\${CALICO_ROOT}$d"
      say "created directory \${CALICO_ROOT}$d"
    fi
  done
}

apply_sysctls() {
  local kv key value current persist=""
  for kv in "\${SYSCTLS[@]}"; do
    key=\${kv%%=*}
    value=\${kv#*=}
    current=$(sysctl -n -- "$key")
    if [[ "$current" == "$value" ]]; then
      say "sysctl $key is $value"
    else
      sysctl -q -w -- "$key=$value" >/dev/null
      say "sysctl $key set to $value (was $current)"
    fi
    persist+="$key = $value"$'\\n'
  done
  if ! write_file "\${CALICO_ROOT}/etc/sysctl.d/calico.conf" "\${persist%$'\\n'}"; then
    say "/etc/sysctl.d is not writable: sysctls are not persisted across reboots"
  fi
}

${snatFunctions()}

${gceBgpFunctions()}

${systemdFunctions()}

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

case "\${1:-}" in
  apply) apply ;;
  remove) remove ;;
  *)
    echo "usage: $0 apply|remove" >&2
    exit 2
    ;;
esac
`;
}
