/**
 * What the health probes speak of: the checks, a problem, a host's status, the report, and the
 * target the probes run against (the lab, or a live stack).
 */
import type { ClusterModel, EndpointModel, HostModel } from "../components/model.js";
import type { Transport } from "./transport.js";

/** What each line of the report is about, in the order they are shown. */
export const CHECKS = [
  "reach",
  "containers",
  "agent",
  "bgp",
  "routes",
  "endpoints",
  "felix",
  "snat",
  "plugin-data",
] as const;
export type CheckName = (typeof CHECKS)[number];

export interface Problem {
  host: string;
  check: CheckName;
  /** The thing: a container, a session, an endpoint, a file. */
  subject: string;
  expected: string;
  found: string;
  /** The key (`host/check/subject`) of the problem that explains this one. */
  causedBy?: string;
}

export const problemKey = (p: Pick<Problem, "host" | "check" | "subject">) =>
  `${p.host}/${p.check}/${p.subject}`;

export interface CheckResult {
  check: CheckName;
  /** `n/a`: the probe does not apply where this runs (said in `detail`). */
  status: "ok" | "problem" | "n/a" | "unknown";
  /** One line for people: counts, or why not applicable. */
  detail: string;
}

export interface ContainerInfo {
  name: string;
  role: string;
  status: string;
  restarts: number;
  endpoint?: string;
}

export interface BgpSession {
  name: string;
  state: string;
  info: string;
}

export interface HostStatus {
  host: string;
  controller: boolean;
  reachable: boolean;
  durationMs: number;
  checks: CheckResult[];
  /** Every problem on this host, consequences included. */
  problems: Problem[];
  /** Facts, for JSON readers and the lab's report. */
  containers: ContainerInfo[];
  bgp?: { running: boolean; sessions: BgpSession[] };
  /** One line per remote endpoint: `<ip>: <route>`. */
  routes: string[];
}

export interface StatusReport {
  stack: string;
  /** `lab` or `stack`. */
  target: string;
  transport: Transport["kind"];
  ok: boolean;
  hosts: HostStatus[];
  /** Problems nothing else explains: what to fix. */
  problems: Problem[];
  /** Problems explained by another one. */
  consequences: Problem[];
  durationMs: number;
}

/** Where the probes run: the production pieces a lab does not have are not applicable. */
export interface StatusTarget {
  stack: string;
  /** `lab` or `stack` (a live deployment). */
  kind: "lab" | "stack";
  model: ClusterModel;
  /** Endpoint name -> container id (taps and plugin data are derived from it). */
  endpointIds: Map<string, string>;
  /** argv that prints `birdc show protocols` on a host. */
  birdc: (host: HostModel) => string[];
  /** The named network namespace (`ip -n`) of an endpoint's container, on its host. */
  endpointNetns: (e: EndpointModel) => string;
  /** The plugin's data directory on the controller. */
  dataDir: string;
  /**
   * Docker on the hosts: the daemon (DOCKER_HOST, when not the default) and the `docker ps`
   * filters that select a host's containers (one daemon may serve several lab hosts).
   * `none`: no Docker here (said why).
   */
  docker: { host?: string; filters: (host: HostModel) => string[] } | { none: string };
  /** The system containers (felix, aclmgr, bird, plugins): production only. */
  systemContainers: boolean | string;
  /** How to tell the host agent runs (argv exits 0 when it does), or why not applicable. */
  agent: { name: string; argv: (host: HostModel) => string[] } | { none: string };
  /**
   * Felix's chains: `true` reads them inside the felix container (a host); `argv` reads them
   * with that command in the host's network namespace (the lab, whose Felix runs as a
   * container entering it); a string says why not applicable.
   */
  felix: true | { argv: (host: HostModel) => string[] } | string;
  /** The fabric's routes (the lab's stand-in for GCE's), when they can be read. */
  fabricRoutes?: () => Promise<KernelRoute[]>;
  /** Prefix for commands that need root (`sudo -n` for a non-root SSH user). */
  sudo: (host: HostModel) => string[];
}

/** One route of `ip -j -4 route` (the fields the probes read). */
export interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  type?: string;
}

/** One link of `ip -j link` (the fields the probes read). */
export interface LinkInfo {
  ifname: string;
  flags?: string[];
  operstate?: string;
  address?: string;
}
