/**
 * The systemd side of host preparation: the boot unit that runs `apply` again at every boot,
 * and the bash functions that install, enable and start it and the host agent's unit.
 *
 * Ordering: the agent's unit is ordered after the boot unit (the agent wires endpoints once
 * the host is prepared), so `apply`, which runs inside the boot unit at boot, must never
 * wait for the agent's start job: it queues the job (`systemctl --no-block`) and returns,
 * and systemd starts the agent once the boot unit is done. A synchronous `systemctl start`
 * there waits for a job that waits for the caller: a deadlock at every boot. Pure: no I/O.
 */
import { PATHS } from "../model.js";

/** The systemd unit that runs `apply` again at every boot (iptables and routes do not persist). */
export const BOOT_UNIT = "calico-host-prepare.service";

/** How long the boot unit's `apply` may take before systemd gives up on it (and boot goes on). */
export const BOOT_UNIT_TIMEOUT = "5min";

/** The unit's text; its ExecStart is the installed script. */
export function bootUnit(): string {
  return `[Unit]
Description=Calico host preparation: SNAT for the endpoint pool (and BGP routes on GCE)
Wants=network-online.target
After=network-online.target docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=${BOOT_UNIT_TIMEOUT}
ExecStart=${PATHS.hostScript} apply

[Install]
WantedBy=multi-user.target`;
}

/** The bash functions that install and remove the boot unit and the host agent. */
export function systemdFunctions(): string {
  return `# systemctl only for the real root of a systemd host.
use_systemctl() { [[ -z "$CALICO_ROOT" && -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; }

apply_boot_unit() {
  local unit="\${CALICO_ROOT}/etc/systemd/system/$BOOT_UNIT" before=""
  if [[ ! -x "\${CALICO_ROOT}$HOST_SCRIPT" ]]; then
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
  local unit="\${CALICO_ROOT}/etc/systemd/system/$BOOT_UNIT"
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
  local file="\${CALICO_ROOT}$AGENT_SCRIPT" unit="\${CALICO_ROOT}/etc/systemd/system/$AGENT_UNIT"
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
  local file="\${CALICO_ROOT}$AGENT_SCRIPT" unit="\${CALICO_ROOT}/etc/systemd/system/$AGENT_UNIT"
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
}`;
}
