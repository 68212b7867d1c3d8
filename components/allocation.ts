/**
 * Address allocation: GCE's regional host subnets carved from `gce.subnetCidr`, and each
 * host's internal address. Pure: no Pulumi, no I/O, no validation messages — `config.ts`
 * turns what this module cannot do into config errors.
 */
import { cidrRange, intToIp, ipToInt, isIPv4 } from "./ipv4.js";

/** A regional subnet of the dedicated GCE network. */
export interface GceSubnet {
  region: string;
  cidr: string;
}

/** The regional subnets and the shape they share. */
export interface SubnetPlan {
  subnets: GceSubnet[];
  /** Prefix length of every subnet (over 29 when the base is too small to split). */
  prefixLength: number;
  /** Addresses per subnet. */
  size: number;
}

/** GCE keeps the first two and the last two addresses of a subnet. */
const RESERVED_LOW = 2;
const RESERVED_HIGH = 2;

/** The region of a GCE zone: `us-central1-a` -> `us-central1`. */
export function regionOfZone(zone: string): string {
  return zone.replace(/-[a-z]$/, "");
}

/**
 * One subnet per region, carved from `subnetCidr` in equal power-of-two parts, in the
 * order the regions are given (the order of first appearance among the hosts).
 */
export function carveSubnets(subnetCidr: string, regions: readonly string[]): SubnetPlan {
  const base = cidrRange(subnetCidr);
  const prefixLength = base.prefixLength + Math.ceil(Math.log2(regions.length));
  const size = 2 ** (32 - prefixLength);
  return {
    subnets: regions.map((region, i) => ({
      region,
      cidr: `${intToIp(base.first + i * size)}/${prefixLength}`,
    })),
    prefixLength,
    size,
  };
}

/** Why `ip` cannot be a host's address in `subnet` (of `size` addresses), or undefined. */
export function gceAddressProblem(
  ip: string,
  subnet: string,
  size: number,
): "outside" | "reserved" | undefined {
  const n = ipToInt(ip) - ipToInt(subnet.split("/")[0]!);
  if (n < 0 || n >= size) return "outside";
  if (n < RESERVED_LOW || n >= size - RESERVED_HIGH) return "reserved";
  return undefined;
}

/** What allocation needs to know of a host. */
export interface AddressRequest {
  /** The host's region (GCE). */
  region: string;
  /** The SSH address, when given. */
  address?: string;
  /** The internal address, when given. */
  internalAddress?: string;
}

/**
 * Each host's internal address: given, else (existing) its SSH address when that is an IPv4
 * address, else (gce) the next free address of its region's subnet, in host order, skipping
 * the addresses other hosts are given. `undefined` where none can be had (no IPv4 SSH
 * address, or a full subnet).
 */
export function allocateInternalAddresses(
  platform: "gce" | "existing",
  hosts: readonly AddressRequest[],
  plan: SubnetPlan,
): (string | undefined)[] {
  const taken = new Set(
    hosts.map((h) => h.internalAddress).filter((a): a is string => a !== undefined),
  );
  const firstOf = new Map(plan.subnets.map((s) => [s.region, ipToInt(s.cidr.split("/")[0]!)]));
  const nextFree = new Map([...firstOf].map(([region, first]) => [region, first + RESERVED_LOW]));
  return hosts.map((h) => {
    if (h.internalAddress !== undefined) return h.internalAddress;
    if (platform === "existing") {
      return h.address !== undefined && isIPv4(h.address) ? h.address : undefined;
    }
    const first = firstOf.get(h.region)!;
    let next = nextFree.get(h.region)!;
    while (taken.has(intToIp(next))) next++;
    nextFree.set(h.region, next + 1);
    if (next - first >= plan.size - RESERVED_HIGH) return undefined;
    taken.add(intToIp(next));
    return intToIp(next);
  });
}
