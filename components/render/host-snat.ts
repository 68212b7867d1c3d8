/**
 * The SNAT part of the host preparation script: the nat chain `CALICO-SNAT`, jumped to from
 * POSTROUTING, masquerades endpoint traffic that leaves the pool, except traffic to the
 * hosts' own network and to the metadata server. Masqueraded traffic carries the host's
 * address, and the firewall admits the hosts' ZeroMQ ports by that source: leaving those
 * destinations unmasqueraded keeps containers out of other hosts' Felix, ACL Manager,
 * plugin and SSH ports. Pure: no I/O.
 */
import type { ClusterModel } from "../model.js";

/** The nat chain holding the SNAT rules, jumped to from POSTROUTING. */
export const SNAT_CHAIN = "CALICO-SNAT";
/** GCE's metadata server: never masqueraded (it would answer as if the host asked). */
export const METADATA_SERVER = "169.254.169.254/32";

/**
 * Where endpoint traffic keeps its own source: the hosts' network (GCE: the subnet range the
 * hosts' subnets are carved from; elsewhere each host's internal address) and the metadata
 * server. In the chain's order, before the MASQUERADE rule.
 */
export function snatExclusions(model: ClusterModel): string[] {
  const hosts =
    model.config.platform === "gce"
      ? [model.config.gce.subnetCidr]
      : model.hosts.map((h) => `${h.internalAddress}/32`);
  return [...new Set([...hosts, METADATA_SERVER])];
}

/** The bash functions `apply_snat` and `remove_snat` (uses SNAT_CHAIN, ENDPOINT_POOL...). */
export function snatFunctions(): string {
  return `# Felix writes the legacy x_tables through libiptc (python-iptables), whatever the host's own
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
  local IFS=$'\\t'
  printf '%s\\n' "$*"
}
snat_rules() {
  local d
  local -a keep=() masq=()
  # -m comment may be missing on old kernels; the dedicated chain names the rules anyway.
  if "$IPT" -m comment --help >/dev/null 2>&1; then
    keep=(-m comment --comment "$SNAT_KEEP_COMMENT")
    masq=(-m comment --comment "$SNAT_COMMENT")
  fi
  for d in "\${SNAT_EXCLUDE[@]}"; do
    rule_line -s "$ENDPOINT_POOL" -d "$d" "\${keep[@]}" -j RETURN
  done
  rule_line -s "$ENDPOINT_POOL" '!' -d "$ENDPOINT_POOL" "\${masq[@]}" -j MASQUERADE
}

# True when the chain holds exactly the wanted rules, the MASQUERADE one last.
snat_in_place() {
  local -a lines rule
  local line
  mapfile -t lines < <(snat_rules)
  [[ "$(ipt -S "$SNAT_CHAIN" | grep -c '^-A ')" == "\${#lines[@]}" ]] || return 1
  [[ "$(ipt -S "$SNAT_CHAIN" | grep '^-A ' | tail -n 1)" == *" -j MASQUERADE"* ]] || return 1
  for line in "\${lines[@]}"; do
    IFS=$'\\t' read -r -a rule <<<"$line"
    ipt -C "$SNAT_CHAIN" "\${rule[@]}" 2>/dev/null || return 1
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
      IFS=$'\\t' read -r -a rule <<<"$line"
      ipt -A "$SNAT_CHAIN" "\${rule[@]}"
    done < <(snat_rules)
    say "SNAT: $ENDPOINT_POOL to outside the pool is masqueraded, except to \${SNAT_EXCLUDE[*]} (chain $SNAT_CHAIN)"
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
}`;
}
