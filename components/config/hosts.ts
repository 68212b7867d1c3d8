/**
 * The cross-field checks of the hosts: unique names and a controller among them, what each
 * platform requires, the internal addresses (given or allocated, unique, outside the pool)
 * and the host blocks (inside the pool, not overlapping). Pure.
 */
import {
  allocateInternalAddresses,
  carveSubnets,
  gceAddressProblem,
  regionOfZone,
  type SubnetPlan,
} from "../allocation.js";
import { cidrContains, cidrsOverlap, inCidr, isIPv4 } from "../ipv4.js";
import { sshRangeProblems } from "../ssh-ranges.js";
import type { Report } from "./issues.js";
import type { Parsed } from "./schema.js";

/** What the host checks resolve, for the rest of `loadConfig`. */
export interface HostLayout {
  controller: string;
  hostNames: ReadonlySet<string>;
  /** Each host's GCE region (from its zone, or gce.zone). */
  hostRegions: string[];
  /** One subnet per region the hosts use, carved from gce.subnetCidr. */
  plan: SubnetPlan;
  /** Each host's internal address ("" when none could be allocated). */
  internal: string[];
}

export function checkHosts(c: Parsed, bad: Report): HostLayout {
  const hostNames = new Set<string>();
  c.hosts.forEach((h, i) => {
    if (hostNames.has(h.name)) bad(["hosts", i, "name"], "duplicates another host's name");
    hostNames.add(h.name);
  });
  const controller = c.controller ?? c.hosts[0]!.name;
  if (!hostNames.has(controller)) bad(["controller"], "is not the name of a host");

  // GCE subnets are regional: one per region the hosts use, carved from subnetCidr.
  const hostRegions = c.hosts.map((h) => regionOfZone(h.zone ?? c.gce.zone));
  const plan = carveSubnets(c.gce.subnetCidr, [...new Set(hostRegions)]);
  if (c.platform === "existing") checkExisting(c, bad);
  else checkGce(c, bad, hostRegions, plan);

  const internal = internalAddresses(c, bad, hostRegions, plan);
  checkEndpointBlocks(c, bad);
  return { controller, hostNames, hostRegions, plan, internal };
}

/** Own hosts: an SSH address and user each, no GCE zone, and the stack's private key. */
function checkExisting(c: Parsed, bad: Report): void {
  c.hosts.forEach((h, i) => {
    if (h.address === undefined) bad(["hosts", i, "address"], "is required on platform existing");
    else if (h.internalAddress === undefined && !isIPv4(h.address)) {
      bad(["hosts", i, "internalAddress"], "is required when `address` is a DNS name");
    }
    if (h.sshUser === undefined && c.ssh.user === undefined) {
      bad(["hosts", i, "sshUser"], "is required on platform existing (or set ssh.user)");
    }
    if (h.zone !== undefined) bad(["hosts", i, "zone"], "only applies to platform gce");
  });
  if (c.sshPrivateKey === undefined) {
    bad(["sshPrivateKey"], "is required on platform existing (pulumi config set --secret)");
  }
}

/** GCE: the network and its subnets, SSH ranges, static IPs and addresses in the subnets. */
function checkGce(c: Parsed, bad: Report, hostRegions: string[], plan: SubnetPlan): void {
  const regions = [...new Set(hostRegions)];
  const subnetOf = new Map(plan.subnets.map((s) => [s.region, s.cidr]));
  if (c.gce.network !== undefined && c.gce.subnetwork === undefined) {
    bad(["gce", "subnetwork"], "is required with gce.network (name its subnet and subnetCidr)");
  }
  if (c.gce.network !== undefined && regions.length > 1) {
    bad(
      ["hosts"],
      `must all be in one region with an existing gce.network (got ${regions.join(", ")})`,
    );
  }
  if (plan.prefixLength > 29) {
    bad(["gce", "subnetCidr"], `is too small to split into ${regions.length} regional subnets`);
  }
  if (c.gce.sshSourceRanges.length === 0) {
    bad(["gce", "sshSourceRanges"], "must list the ranges allowed to SSH to the hosts");
  }
  for (const p of sshRangeProblems(c.gce.sshSourceRanges)) {
    const key = ["gce", "sshSourceRanges", ...(p.index === undefined ? [] : [p.index])];
    bad(key, p.message);
  }
  c.hosts.forEach((h, i) => {
    if (h.address !== undefined && !isIPv4(h.address)) {
      bad(["hosts", i, "address"], "must be a reserved static IPv4 address on gce");
    }
    if (h.internalAddress !== undefined) {
      const subnet = subnetOf.get(hostRegions[i]!)!;
      const problem = gceAddressProblem(h.internalAddress, subnet, plan.size);
      if (problem === "outside") {
        bad(["hosts", i, "internalAddress"], `is outside its region's subnet ${subnet}`);
      } else if (problem === "reserved") {
        bad(["hosts", i, "internalAddress"], `is reserved by GCE in ${subnet}`);
      }
    }
  });
  if (cidrsOverlap(c.endpointPool, c.gce.subnetCidr)) {
    bad(["endpointPool"], `overlaps the host subnet gce.subnetCidr ${c.gce.subnetCidr}`);
  }
  if (c.bgp.enabled && c.bgp.session === "direct") {
    bad(["bgp", "session"], "cannot be direct on gce (hosts share no link); use multihop");
  }
}

/**
 * Internal addresses: given, else (existing) the SSH address, else (gce) the next free
 * address of the host's regional subnet; unique, and outside the endpoint pool.
 */
function internalAddresses(
  c: Parsed,
  bad: Report,
  hostRegions: string[],
  plan: SubnetPlan,
): string[] {
  const allocated = allocateInternalAddresses(
    c.platform,
    c.hosts.map((h, i) => ({
      region: hostRegions[i]!,
      ...(h.address !== undefined ? { address: h.address } : {}),
      ...(h.internalAddress !== undefined ? { internalAddress: h.internalAddress } : {}),
    })),
    plan,
  );
  const internal = allocated.map((ip, i) => {
    if (ip === undefined && c.platform === "gce") {
      bad(["hosts", i, "internalAddress"], "cannot be allocated: the regional subnet is full");
    }
    return ip ?? "";
  });
  const seenInternal = new Map<string, number>();
  internal.forEach((ip, i) => {
    if (ip === "") return;
    const other = seenInternal.get(ip);
    if (other !== undefined) {
      bad(["hosts", i, "internalAddress"], `duplicates hosts[${other}]'s address`, ip);
    }
    seenInternal.set(ip, i);
    if (inCidr(ip, c.endpointPool)) {
      bad(["hosts", i, "internalAddress"], `lies in endpointPool ${c.endpointPool}`, ip);
    }
  });
  return internal;
}

/** Host blocks: inside the pool, not overlapping; required for host-block routes. */
function checkEndpointBlocks(c: Parsed, bad: Report): void {
  c.hosts.forEach((h, i) => {
    if (h.endpointBlock === undefined) {
      if (c.platform === "gce" && c.gce.routeGranularity === "host-block") {
        bad(["hosts", i, "endpointBlock"], "is required with gce.routeGranularity host-block");
      }
      return;
    }
    if (!cidrContains(c.endpointPool, h.endpointBlock)) {
      bad(["hosts", i, "endpointBlock"], `is not inside endpointPool ${c.endpointPool}`);
    }
    c.hosts.slice(0, i).forEach((o, j) => {
      if (o.endpointBlock !== undefined && cidrsOverlap(o.endpointBlock, h.endpointBlock!)) {
        bad(["hosts", i, "endpointBlock"], `overlaps hosts[${j}].endpointBlock ${o.endpointBlock}`);
      }
    });
  });
}
