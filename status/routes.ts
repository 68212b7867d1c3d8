/** Route arithmetic on `ip -j -4 route` tables: the kernel's choice, and a route for people. */
import ipaddr from "ipaddr.js";
import type { KernelRoute } from "./types.js";

function cidrOf(dst: string): [ipaddr.IPv4, number] {
  if (dst === "default") return [ipaddr.IPv4.parse("0.0.0.0"), 0];
  if (dst.includes("/")) return ipaddr.IPv4.parseCIDR(dst);
  return [ipaddr.IPv4.parse(dst), 32];
}

/** The kernel's choice for `ip` in a table (longest prefix wins; metrics ignored). */
export function longestMatch(routes: KernelRoute[], ip: string): KernelRoute | undefined {
  const addr = ipaddr.IPv4.parse(ip);
  let best: KernelRoute | undefined;
  let bestBits = -1;
  for (const r of routes) {
    const [net, bits] = cidrOf(r.dst);
    if (bits > bestBits && addr.match(net, bits)) {
      best = r;
      bestBits = bits;
    }
  }
  return best;
}

/** A route that carries traffic (not a blackhole, prohibit, ...). */
export const usable = (r: KernelRoute | undefined): r is KernelRoute =>
  r !== undefined && (r.type === undefined || r.type === "unicast");

/** A host route to `ip`: `dst` written either way. */
export const isHostRoute = (r: KernelRoute, ip: string) => r.dst === ip || r.dst === `${ip}/32`;

export function describeRoute(r: KernelRoute): string {
  const dst = r.dst.includes("/") || r.dst === "default" ? r.dst : `${r.dst}/32`;
  if (r.type !== undefined && r.type !== "unicast") return `${r.type} ${dst}`;
  return [
    dst,
    r.gateway ? `via ${r.gateway}` : "",
    r.dev ? `dev ${r.dev}` : "",
    r.protocol && r.protocol !== "boot" ? `proto ${r.protocol}` : "",
  ]
    .filter(Boolean)
    .join(" ");
}
