/**
 * The policy rules as pure functions over resource properties, so they can be unit-tested
 * without a Pulumi engine. Each returns the list of violations (empty when the resource is
 * fine). `index.ts` wires them into the policy pack.
 */
import { sshRangeProblems } from "../components/ssh-ranges.js";

/** A GCE firewall `allow` block: a protocol and optional ports ("22", "9901-9906"). */
export interface FirewallAllow {
  protocol?: string;
  ports?: string[];
}

/** The firewall properties the rules look at. */
export interface FirewallProps {
  direction?: string;
  sourceRanges?: string[];
  sourceTags?: string[];
  /** Ingress with destination ranges applies only to traffic to those addresses. */
  destinationRanges?: string[];
  allows?: FirewallAllow[];
}

/** True for a range that means "any address" (0.0.0.0/0, ::/0). */
export function isAnywhere(range: string): boolean {
  return /\/0$/.test(range.trim());
}

function isIngress(fw: FirewallProps): boolean {
  return (fw.direction ?? "INGRESS").toUpperCase() === "INGRESS";
}

/** Does this allow block let TCP port `port` through? (No ports = every port.) */
export function allowsTcpPort(allow: FirewallAllow, port: number): boolean {
  const protocol = (allow.protocol ?? "").toLowerCase();
  if (protocol !== "tcp" && protocol !== "all" && protocol !== "6") return false;
  if (allow.ports === undefined || allow.ports.length === 0) return true;
  return allow.ports.some((p) => {
    const [lo, hi] = p.split("-").map((x) => Number(x.trim()));
    if (lo === undefined || Number.isNaN(lo)) return false;
    return port >= lo && port <= (hi === undefined || Number.isNaN(hi) ? lo : hi);
  });
}

/** Rule 1: nothing but ICMP may be open to 0.0.0.0/0. */
export function openToWorldViolations(fw: FirewallProps): string[] {
  if (!isIngress(fw)) return [];
  const open = (fw.sourceRanges ?? []).filter(isAnywhere);
  if (open.length === 0) return [];
  return (fw.allows ?? [])
    .filter((a) => (a.protocol ?? "").toLowerCase() !== "icmp")
    .map(
      (a) =>
        `ingress from ${open.join(", ")} allows ${a.protocol ?? "?"}${a.ports?.length ? ` ports ${a.ports.join(",")}` : " (all ports)"}; only ICMP may be open to the whole internet`,
    );
}

/**
 * Rule 2: SSH (tcp/22) to the hosts only from listed ranges, never from 0.0.0.0/0, none wider
 * than /16 and all together no more than 0.01% of the public IPv4 space. A rule
 * limited to destination ranges (none of them "anywhere") does not reach the hosts' own
 * address, so it is not SSH to the hosts.
 */
export function sshViolations(fw: FirewallProps, allowedRanges?: readonly string[]): string[] {
  if (!isIngress(fw)) return [];
  if (!(fw.allows ?? []).some((a) => allowsTcpPort(a, 22))) return [];
  // Traffic to listed destinations only (e.g. container addresses) is not SSH to the hosts.
  const dest = fw.destinationRanges ?? [];
  if (dest.length > 0 && !dest.some(isAnywhere)) return [];
  const ranges = fw.sourceRanges ?? [];
  const problems: string[] = [];
  for (const r of ranges) {
    if (isAnywhere(r)) problems.push(`SSH (tcp/22) is open to ${r}`);
    else if (
      allowedRanges !== undefined &&
      allowedRanges.length > 0 &&
      !allowedRanges.includes(r)
    ) {
      problems.push(
        `SSH (tcp/22) from ${r}, which is not one of the allowed ranges ${allowedRanges.join(", ")}`,
      );
    }
  }
  // The same limits as the config: no range wider than /16, no more than a small share of
  // the public IPv4 space in all (components/ssh-ranges.ts).
  // (0.0.0.0/0 is reported above.)
  const listed = ranges.filter((r) => !isAnywhere(r));
  for (const p of sshRangeProblems(listed)) {
    const what = p.index === undefined ? listed.join(", ") : listed[p.index];
    problems.push(`SSH (tcp/22) from ${what} ${p.message}`);
  }
  if (ranges.length === 0 && (fw.sourceTags ?? []).length === 0) {
    problems.push(
      "SSH (tcp/22) is allowed without source ranges or tags (that means from anywhere)",
    );
  }
  return problems;
}

/** Rule 3: every instance forwards IP (Calico routes container addresses through it). */
export function ipForwardViolations(instance: { canIpForward?: boolean }): string[] {
  return instance.canIpForward === true
    ? []
    : ["canIpForward must be true: Calico hosts route their containers' addresses"];
}

/** Rule 4: docker providers reach their daemon over SSH only (never tcp:// or a local socket). */
export function dockerProviderViolations(provider: { host?: string }): string[] {
  const host = provider.host;
  if (host === undefined || host === "") {
    return [
      "the docker provider must set host to ssh://user@address (the default is the local socket)",
    ];
  }
  return host.startsWith("ssh://")
    ? []
    : [
        `the docker provider host ${JSON.stringify(host)} is not ssh://; never expose the Docker API over TCP`,
      ];
}

/** The docker container properties the workload rule looks at. */
export interface ContainerProps {
  labels?: { label?: string; value?: string }[];
  privileged?: boolean;
  networkMode?: string;
  pidMode?: string;
  ipcMode?: string;
  usernsMode?: string;
  capabilities?: { adds?: string[] };
  volumes?: { hostPath?: string; containerPath?: string }[];
  mounts?: { type?: string; source?: string; target?: string }[];
}

/** True when `path` is `dir` or below it, compared as normalised absolute paths. */
function under(dir: string, path: string): boolean {
  const norm = (p: string) => p.replace(/\/+$/, "") || "/";
  const d = norm(dir);
  const p = norm(path);
  if (p.split("/").includes("..")) return false;
  return d === "/" || p === d || p.startsWith(`${d}/`);
}

/**
 * Rule 5: a workload endpoint container (label `calico-docker.role=endpoint`) is never
 * privileged, never given extra capabilities, never joins the host's network, PID, IPC or
 * user namespace (its network mode is `none`: Calico wires it), and binds host paths only
 * from `allowedHostPaths` (none when unset). The Calico system containers (felix, bird, the
 * plugin), which need the host's network, carry other roles.
 */
export function workloadEndpointViolations(
  container: ContainerProps,
  allowedHostPaths: readonly string[] = [],
): string[] {
  const role = (container.labels ?? []).find((l) => l.label === "calico-docker.role")?.value;
  if (role !== "endpoint") return [];
  const problems: string[] = [];
  if (container.privileged === true) problems.push("a workload endpoint must not be privileged");
  if ((container.networkMode ?? "") !== "none") {
    problems.push(
      `a workload endpoint must have network mode none (Calico wires it), not ${JSON.stringify(container.networkMode ?? "default")}`,
    );
  }
  for (const key of ["pidMode", "ipcMode", "usernsMode"] as const) {
    if (container[key] === "host") {
      problems.push(`a workload endpoint must not join the host's namespace (${key}: host)`);
    }
  }
  const adds = container.capabilities?.adds ?? [];
  if (adds.length > 0) {
    problems.push(`a workload endpoint must not add capabilities (${adds.join(", ")})`);
  }
  const hostPaths = [
    ...(container.volumes ?? []).map((v) => v.hostPath),
    ...(container.mounts ?? []).filter((m) => m.type === "bind").map((m) => m.source),
  ].filter((p): p is string => p !== undefined && p !== "");
  for (const p of hostPaths) {
    if (!allowedHostPaths.some((dir) => under(dir, p))) {
      problems.push(
        allowedHostPaths.length === 0
          ? `a workload endpoint binds host path ${p}; no host path is allowed (set allowedHostPaths)`
          : `a workload endpoint binds host path ${p}, outside ${allowedHostPaths.join(", ")}`,
      );
    }
  }
  return problems;
}
