/**
 * How widely SSH may be opened to the hosts (`gce.sshSourceRanges`): checked when the config
 * loads and again by the policy pack on the firewall rules themselves. Pure.
 *
 * Two limits, so that no list of ranges adds up to "the internet" (`0.0.0.0/1` and
 * `128.0.0.0/1` are the whole space in two halves, and so are 32,768 /16s):
 *   - no single range wider than /16 (65,536 addresses), private ranges included;
 *   - the ranges that pass the first limit together cover at most 0.01% of the public IPv4
 *     space (about 370,000 addresses: five /16s, or any number of office-sized ranges).
 *     Overlaps count once; private, shared, documentation and other special-purpose ranges
 *     are not public space. (A range refused by the first limit is reported once, alone.)
 */
import ipaddr from "ipaddr.js";
import { PUBLIC_IPV4_ADDRESSES, publicAddressesCovered } from "./ipv4.js";

/** The widest single SSH source range: /16. */
export const SSH_MIN_PREFIX_LENGTH = 16;
/** The largest share of the public IPv4 space all SSH source ranges may cover: 0.01%. */
export const SSH_MAX_PUBLIC_SHARE = 0.0001;
/** The same share in addresses (370,225). */
export const SSH_MAX_PUBLIC_ADDRESSES = Math.floor(PUBLIC_IPV4_ADDRESSES * SSH_MAX_PUBLIC_SHARE);

/** A problem with one range (`index` into the list) or with the list as a whole. */
export interface SshRangeProblem {
  index?: number;
  message: string;
}

const fmt = (n: number) => n.toLocaleString("en-US");

/**
 * What is wrong with a list of SSH source ranges (empty when nothing is). Strings that are not
 * IPv4 CIDRs are left to the caller (the config refuses them; GCE may hold IPv6 ones).
 */
export function sshRangeProblems(ranges: readonly string[]): SshRangeProblem[] {
  const problems: SshRangeProblem[] = [];
  const networks: string[] = [];
  ranges.forEach((range, index) => {
    let bits: number;
    try {
      bits = ipaddr.IPv4.parseCIDR(range.trim())[1];
    } catch {
      return;
    }
    if (bits >= SSH_MIN_PREFIX_LENGTH) {
      networks.push(`${ipaddr.IPv4.networkAddressFromCIDR(range.trim()).toString()}/${bits}`);
    } else if (bits === 0) {
      problems.push({ index, message: "must not open SSH to the whole internet" });
    } else if (bits < SSH_MIN_PREFIX_LENGTH) {
      problems.push({
        index,
        message:
          `is wider than /${SSH_MIN_PREFIX_LENGTH} (${fmt(2 ** (32 - bits))} addresses; ` +
          `SSH ranges may be /${SSH_MIN_PREFIX_LENGTH} or narrower)`,
      });
    }
  });
  const covered = publicAddressesCovered(networks);
  if (covered > SSH_MAX_PUBLIC_ADDRESSES) {
    const percent = Number(((100 * covered) / PUBLIC_IPV4_ADDRESSES).toPrecision(3));
    problems.push({
      message:
        `together cover ${fmt(covered)} public addresses, ${percent}% of the public IPv4 space; ` +
        `at most ${100 * SSH_MAX_PUBLIC_SHARE}% (${fmt(SSH_MAX_PUBLIC_ADDRESSES)} addresses) may reach SSH`,
    });
  }
  return problems;
}
