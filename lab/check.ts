/**
 * `check`: is the lab routing? BGP session state per host (birdc), the routes each host
 * holds for remote endpoints, and a full endpoint-to-endpoint ping matrix, with timings.
 */
import ipaddr from "ipaddr.js";
import { missingTools, pool, run, runIn, sleep } from "./exec.js";
import {
  FELIX_STAND_IN,
  LabError,
  fmtSeconds,
  requireState,
  resolveContext,
  type LabOptions,
} from "./context.js";
import type { EndpointPlan, LabPlan } from "./plan.js";
import type { StateDir } from "./state.js";

export interface BgpSession {
  name: string;
  state: string;
  info: string;
}

export interface HostBgp {
  host: string;
  /** False when BIRD does not answer on its control socket. */
  running: boolean;
  sessions: BgpSession[];
  established: boolean;
}

export interface HostRoutes {
  host: string;
  /** Remote endpoints this host should reach. */
  expected: number;
  present: number;
  /** Remote endpoint IPs without a working route. */
  missing: string[];
  /** How the routes are held: learnt over BGP, or the fabric's static routes. */
  via: "bgp" | "fabric";
  /** The routes themselves, one line per remote endpoint (as `ip route` would say). */
  routes: string[];
}

export interface PairResult {
  from: string;
  to: string;
  ip: string;
  ok: boolean;
  attempts: number;
}

export interface MatrixResult {
  pinger: "fping" | "ping";
  /** Endpoint names, in plan order. */
  endpoints: string[];
  pairs: number;
  ok: number;
  failed: PairResult[];
  durationMs: number;
}

export interface Timing {
  /** Since BIRD started (BGP) or `up` finished; undefined when never reached. */
  sinceStartMs?: number;
  /** Since `check` started. */
  sinceCheckMs?: number;
  /** True when it already held at the first look (so sinceStartMs is an upper bound). */
  atFirstLook?: boolean;
}

export interface CheckReport {
  stack: string;
  ok: boolean;
  bgp: { enabled: boolean; hosts: HostBgp[] };
  routes: HostRoutes[];
  matrix: MatrixResult;
  timings: { bgpEstablished?: Timing; allRoutes?: Timing; fullMatrix?: Timing };
  felix: string;
  problems: string[];
}

export interface CheckOptions extends LabOptions {
  /** How long to wait for sessions, routes and the matrix to converge (default 30 s). */
  timeoutMs?: number;
  /** Force a pinger (default: fping when installed, else ping). */
  pinger?: "fping" | "ping";
}

// ---------------------------------------------------------------------------------------------
// BGP

/** Parse `birdc show protocols` into its BGP sessions. */
export function parseBirdProtocols(text: string): BgpSession[] {
  const sessions: BgpSession[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+BGP\s+\S+\s+(\S+)\s+\S+(?:\s+(.*))?$/.exec(line.trim());
    if (m) sessions.push({ name: m[1]!, state: m[2]!, info: (m[3] ?? "").trim() });
  }
  return sessions;
}

export async function bgpStatus(state: StateDir, plan: LabPlan): Promise<HostBgp[]> {
  return pool(plan.hosts, 8, async (h) => {
    try {
      const { stdout } = await run(
        "birdc",
        ["-s", state.birdSocket(h.index), "show", "protocols"],
        {
          timeoutMs: 5000,
        },
      );
      const sessions = parseBirdProtocols(stdout);
      return {
        host: h.name,
        running: true,
        sessions,
        established: sessions.every((s) => s.info.startsWith("Established")),
      };
    } catch {
      return { host: h.name, running: false, sessions: [], established: false };
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Routes

interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  type?: string;
}

export async function routeTable(ns: string): Promise<KernelRoute[]> {
  const { stdout } = await run("ip", ["-n", ns, "-j", "-4", "route", "show", "table", "main"]);
  return stdout.trim() === "" ? [] : (JSON.parse(stdout) as KernelRoute[]);
}

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

const usable = (r: KernelRoute | undefined) =>
  r !== undefined && (r.type === undefined || r.type === "unicast");

function describe(r: KernelRoute): string {
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

export async function routeStatus(plan: LabPlan): Promise<HostRoutes[]> {
  const hostAddr = new Map(plan.hosts.map((h) => [h.name, h.address]));
  const fabric = plan.bgp ? [] : await routeTable(plan.fabricNs);
  return pool(plan.hosts, 8, async (h) => {
    const table = await routeTable(h.ns);
    const remote = plan.endpoints.filter((e) => e.host !== h.name);
    const missing: string[] = [];
    const routes: string[] = [];
    for (const e of remote) {
      if (plan.bgp) {
        const r = table.find((x) => x.dst === e.ip || x.dst === `${e.ip}/32`);
        routes.push(`${e.ip}: ${r ? describe(r) : "none"}`);
        if (!(r !== undefined && r.protocol === "bird" && usable(r))) missing.push(e.ip);
        continue;
      }
      // No BGP: the host sends it to the fabric, which has a route to the right host.
      const local = longestMatch(table, e.ip);
      const far = longestMatch(fabric, e.ip);
      routes.push(
        `${e.ip}: ${local ? describe(local) : "none"}, fabric ${far ? describe(far) : "none"}`,
      );
      const ok =
        usable(local) && local!.gateway !== undefined && far?.gateway === hostAddr.get(e.host);
      if (!ok) missing.push(e.ip);
    }
    return {
      host: h.name,
      expected: remote.length,
      present: remote.length - missing.length,
      missing,
      via: plan.bgp ? "bgp" : "fabric",
      routes,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Ping matrix

export async function choosePinger(wanted?: "fping" | "ping"): Promise<"fping" | "ping"> {
  if (wanted !== undefined) {
    if ((await missingTools([wanted])).length > 0) throw new LabError(`${wanted} is not installed`);
    return wanted;
  }
  return (await missingTools(["fping"])).length === 0 ? "fping" : "ping";
}

/** Which of `targets` answer one ping from namespace `ns`. */
async function pingFrom(
  ns: string,
  targets: string[],
  pinger: "fping" | "ping",
): Promise<Set<string>> {
  if (pinger === "fping") {
    // One process per source: -a prints the targets that answered; exit 1 = some did not.
    const { stdout } = await runIn(
      ns,
      "fping",
      ["-a", "-q", "-r", "0", "-t", "1000", "-i", "1", ...targets],
      { okCodes: [1] },
    );
    // Its ARP entries for every target count against the kernel-wide table (neigh.ts).
    await run("ip", ["-n", ns, "neigh", "flush", "all"], { okCodes: [1, 2] });
    return new Set(
      stdout
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean),
    );
  }
  const ok = new Set<string>();
  for (const ip of targets) {
    const { code } = await runIn(ns, "ping", ["-c", "1", "-W", "1", "-q", ip], { okCodes: [1, 2] });
    if (code === 0) ok.add(ip);
  }
  return ok;
}

/**
 * Ping every endpoint from every other one, sources in parallel (bounded); pairs that fail
 * are tried again until `deadlineMs` (routes may still be converging).
 */
export async function pingMatrix(
  plan: LabPlan,
  opts: { deadlineMs: number; pinger: "fping" | "ping"; concurrency?: number },
): Promise<MatrixResult> {
  const t0 = performance.now();
  const attempts = new Map<string, number>();
  const okPairs = new Set<string>();
  const key = (from: EndpointPlan, to: EndpointPlan) => `${from.name}\0${to.name}`;
  let pending = plan.endpoints.map((from) => ({
    from,
    to: plan.endpoints.filter((to) => to !== from),
  }));
  // fping spends most of its time waiting; plain ping is a process per pair.
  const limit = opts.concurrency ?? (opts.pinger === "fping" ? 16 : 32);
  let rounds = 0;
  for (;;) {
    const jobs =
      opts.pinger === "fping"
        ? pending
        : pending.flatMap((p) => p.to.map((to) => ({ from: p.from, to: [to] })));
    await pool(jobs, limit, async ({ from, to }) => {
      const answered = await pingFrom(
        from.ns,
        to.map((t) => t.ip),
        opts.pinger,
      );
      for (const t of to) {
        attempts.set(key(from, t), (attempts.get(key(from, t)) ?? 0) + 1);
        if (answered.has(t.ip)) okPairs.add(key(from, t));
      }
    });
    pending = pending
      .map((p) => ({ from: p.from, to: p.to.filter((t) => !okPairs.has(key(p.from, t))) }))
      .filter((p) => p.to.length > 0);
    rounds++;
    // Pairs that fail are tried again until the deadline, and at least twice more (a big
    // matrix can outlast the deadline in its first round).
    if (pending.length === 0 || (performance.now() - t0 > opts.deadlineMs && rounds >= 3)) break;
    await sleep(250);
  }
  const failed: PairResult[] = pending.flatMap((p) =>
    p.to.map((t) => ({
      from: p.from.name,
      to: t.name,
      ip: t.ip,
      ok: false,
      attempts: attempts.get(key(p.from, t)) ?? 0,
    })),
  );
  const pairs = plan.endpoints.length * (plan.endpoints.length - 1);
  return {
    pinger: opts.pinger,
    endpoints: plan.endpoints.map((e) => e.name),
    pairs,
    ok: pairs - failed.length,
    failed,
    durationMs: performance.now() - t0,
  };
}

// ---------------------------------------------------------------------------------------------
// The check

export async function labCheck(opts: CheckOptions = {}): Promise<CheckReport> {
  const { stack, state, log } = resolveContext(opts);
  const st = requireState(state);
  const plan = st.plan;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const pinger = await choosePinger(opts.pinger);
  const checkStart = Date.now();
  const deadline = checkStart + timeoutMs;
  const origin = plan.bgp
    ? Math.min(...st.birds.map((b) => b.startedAt), st.upDoneAt!)
    : st.upDoneAt!;
  const timing = (first: boolean): Timing => {
    const now = Date.now();
    return { sinceStartMs: now - origin, sinceCheckMs: now - checkStart, atFirstLook: first };
  };
  const problems: string[] = [];
  const timings: CheckReport["timings"] = {};

  let bgp: HostBgp[] = [];
  if (plan.bgp) {
    bgp = await poll(log, "BGP sessions Established", deadline, async (first) => {
      const status = await bgpStatus(state, plan);
      const done = status.every((h) => h.running && h.established);
      if (done) timings.bgpEstablished = timing(first);
      return { done, value: status };
    });
    for (const h of bgp) {
      if (!h.running) problems.push(`${h.host}: BIRD is not running (no answer on its socket)`);
      for (const s of h.sessions.filter((x) => !x.info.startsWith("Established"))) {
        problems.push(`${h.host}: BGP session ${s.name} is ${s.state} ${s.info}`.trim());
      }
    }
  }

  const routes = await poll(log, "routes for every remote endpoint", deadline, async (first) => {
    const status = await routeStatus(plan);
    const done = status.every((h) => h.missing.length === 0);
    if (done) timings.allRoutes = timing(first);
    return { done, value: status };
  });
  for (const r of routes.filter((x) => x.missing.length > 0)) {
    problems.push(
      `${r.host}: no route to ${r.missing.length} remote endpoint(s): ${r.missing.slice(0, 8).join(", ")}` +
        (r.missing.length > 8 ? ", ..." : ""),
    );
  }

  log(`- ping matrix (${pinger}) ...`);
  const matrix = await pingMatrix(plan, {
    deadlineMs: Math.max(2000, deadline - Date.now()),
    pinger,
  });
  if (matrix.failed.length === 0) timings.fullMatrix = timing(false);
  log(`  ${matrix.ok}/${matrix.pairs} pairs answer (${fmtSeconds(matrix.durationMs)})`);
  for (const f of matrix.failed.slice(0, 20)) {
    problems.push(`ping ${f.from} -> ${f.to} (${f.ip}) fails`);
  }
  if (matrix.failed.length > 20)
    problems.push(`... and ${matrix.failed.length - 20} more pairs fail`);

  return {
    stack,
    ok: problems.length === 0,
    bgp: { enabled: plan.bgp, hosts: bgp },
    routes,
    matrix,
    timings,
    felix: FELIX_STAND_IN,
    problems,
  };
}

async function poll<T>(
  log: (l: string) => void,
  what: string,
  deadline: number,
  probe: (first: boolean) => Promise<{ done: boolean; value: T }>,
): Promise<T> {
  const t0 = performance.now();
  log(`- waiting for ${what} ...`);
  let first = true;
  for (;;) {
    const { done, value } = await probe(first);
    if (done || Date.now() >= deadline) {
      log(`  ${done ? "ok" : "NOT"} ${what} (${fmtSeconds(performance.now() - t0)})`);
      return value;
    }
    first = false;
    await sleep(200);
  }
}
