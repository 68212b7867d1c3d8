/**
 * IPv4 helpers: parsing, CIDR checks and integer arithmetic on addresses. Pure; used by the
 * config's validation, address allocation, the lab and the tests.
 */
import ipaddr from "ipaddr.js";

/** Dotted-quad IPv4 in its canonical four-part decimal form (no `010.1.1.1`, no `10.1`). */
export function isIPv4(value: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(value);
}

/** A CIDR whose host bits are zero. Returns the reason it is not, or undefined. */
export function cidrProblem(value: string): string | undefined {
  const [addr, len] = value.split("/");
  if (addr === undefined || len === undefined || !/^\d{1,2}$/.test(len) || !isIPv4(addr)) {
    return "is not an IPv4 CIDR like 192.168.0.0/16";
  }
  const bits = Number(len);
  if (bits > 32) return "has a prefix length over 32";
  const network = ipaddr.IPv4.networkAddressFromCIDR(value).toString();
  if (network !== addr) return `has host bits set (did you mean ${network}/${bits}?)`;
  return undefined;
}

/** True when two CIDRs share at least one address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const [na, la] = ipaddr.IPv4.parseCIDR(a);
  const [nb, lb] = ipaddr.IPv4.parseCIDR(b);
  return la <= lb ? nb.match(na, la) : na.match(nb, lb);
}

/** True when CIDR `inner` lies wholly inside CIDR `outer`. */
export function cidrContains(outer: string, inner: string): boolean {
  const [net, bits] = ipaddr.IPv4.parseCIDR(inner);
  return bits >= ipaddr.IPv4.parseCIDR(outer)[1] && net.match(ipaddr.IPv4.parseCIDR(outer));
}

export function inCidr(ip: string, range: string): boolean {
  return ipaddr.IPv4.parse(ip).match(ipaddr.IPv4.parseCIDR(range));
}

/** An IPv4 address as an unsigned 32-bit number, and back. */
export function ipToInt(ip: string): number {
  return ipaddr.IPv4.parse(ip).octets.reduce((n, o) => n * 256 + o, 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/** A CIDR's first address as a number and its size: `10.0.0.0/30` -> { first, size: 4 }. */
export function cidrRange(cidr: string): { first: number; size: number; prefixLength: number } {
  const [base, prefixLength] = ipaddr.IPv4.parseCIDR(cidr);
  return { first: ipToInt(base.toString()), size: 2 ** (32 - prefixLength), prefixLength };
}

/** Merge CIDRs into sorted, disjoint [first, last] intervals of address numbers. */
export function cidrIntervals(cidrs: readonly string[]): [number, number][] {
  const spans = cidrs
    .map((c) => cidrRange(c))
    .map(({ first, size }): [number, number] => [first, first + size - 1])
    .sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [lo, hi] of spans) {
    const last = merged[merged.length - 1];
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else merged.push([lo, hi]);
  }
  return merged;
}

type SpecialRange = [ipaddr.IPv4, number];

/**
 * Every range ipaddr.js names as special-purpose (private, loopback, link-local, shared
 * CGNAT, multicast, documentation, benchmarking, reserved...): the IPv4 space that is not
 * public unicast. They are the table behind its `range()`, which its typings do not declare.
 */
function nonPublicIntervals(): [number, number][] {
  const table = (ipaddr.IPv4.prototype as unknown as { SpecialRanges?: unknown }).SpecialRanges;
  if (table === null || typeof table !== "object") {
    throw new Error("ipaddr.js no longer exposes IPv4 SpecialRanges");
  }
  const cidrs = Object.values(table as Record<string, SpecialRange | SpecialRange[]>).flatMap(
    (r) => (Array.isArray(r[0]) ? (r as SpecialRange[]) : [r as SpecialRange]),
  );
  return cidrIntervals(cidrs.map(([ip, bits]) => `${ip.toString()}/${bits}`));
}
const NON_PUBLIC = nonPublicIntervals();

const count = (intervals: readonly [number, number][]) =>
  intervals.reduce((n, [lo, hi]) => n + hi - lo + 1, 0);

/** How many public unicast IPv4 addresses there are (2^32 less every special range). */
export const PUBLIC_IPV4_ADDRESSES = 2 ** 32 - count(NON_PUBLIC);

/** How many public unicast addresses the CIDRs cover together (overlaps counted once). */
export function publicAddressesCovered(cidrs: readonly string[]): number {
  const covered = cidrIntervals(cidrs);
  let overlap = 0;
  for (const [lo, hi] of covered) {
    for (const [plo, phi] of NON_PUBLIC) {
      const a = Math.max(lo, plo);
      const b = Math.min(hi, phi);
      if (a <= b) overlap += b - a + 1;
    }
  }
  return count(covered) - overlap;
}
