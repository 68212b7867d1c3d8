/**
 * `check`: is the lab routing? The health probes `npm run status` runs (BGP sessions, a
 * route for every remote endpoint, every endpoint wired, SNAT, plugin data), here through
 * the lab's namespaces, then a full endpoint-to-endpoint ping matrix, with timings.
 */
import {
  runStatus,
  type BgpSession,
  type KernelRoute,
  type StatusReport,
} from "../status/engine.js";
import { formatProblem } from "../status/report.js";
import { existsSync } from "node:fs";
import { CommandError, missingTools, netnsPath, pool, run, runIn, sleep } from "./exec.js";
import {
  FELIX_STAND_IN,
  LabError,
  fmtSeconds,
  requireState,
  resolveContext,
  type LabOptions,
} from "./context.js";
import type { EndpointPlan, LabPlan } from "./plan.js";
import { labNamespaceTransport, labTarget } from "./probes.js";

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
  /** The health probes' report (what `npm run status -- --lab` shows, here through namespaces). */
  probes: StatusReport;
  problems: string[];
}

export interface CheckOptions extends LabOptions {
  /** How long to wait for sessions, routes and the matrix to converge (default 30 s). */
  timeoutMs?: number;
  /** Force a pinger (default: fping when installed, else ping). */
  pinger?: "fping" | "ping";
}

// ---------------------------------------------------------------------------------------------
// Routes and BGP: the health probes of status/engine.ts, through the lab's namespaces.

/** A namespace's main IPv4 table (tests read it to watch routes come and go). */
export async function routeTable(ns: string): Promise<KernelRoute[]> {
  const { stdout } = await run("ip", ["-n", ns, "-j", "-4", "route", "show", "table", "main"]);
  return stdout.trim() === "" ? [] : (JSON.parse(stdout) as KernelRoute[]);
}

/** The probes' per-host BGP and route facts, as the check report shows them. */
function bgpOf(r: StatusReport): HostBgp[] {
  return r.hosts.map((h) => ({
    host: h.host,
    running: h.bgp?.running ?? false,
    sessions: h.bgp?.sessions ?? [],
    established: (h.bgp?.running ?? false) && h.problems.every((p) => p.check !== "bgp"),
  }));
}

function routesOf(r: StatusReport, plan: LabPlan): HostRoutes[] {
  return r.hosts.map((h) => {
    const missing = h.problems
      .filter((p) => p.check === "routes")
      .map((p) => /\(([\d.]+)\)$/.exec(p.subject)?.[1] ?? p.subject);
    return {
      host: h.host,
      expected: h.routes.length,
      present: h.routes.length - missing.length,
      missing,
      via: plan.bgp ? "bgp" : "fabric",
      routes: h.routes,
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

/**
 * Which of `targets` answer one ping from namespace `ns`; none when the namespace cannot be
 * entered (a restarted container whose namespace link is being made again: it may be back
 * by the time the error is seen, so the error's text says it, not the link).
 */
async function pingFrom(
  ns: string,
  targets: string[],
  pinger: "fping" | "ping",
): Promise<Set<string>> {
  try {
    return await pingFromOnce(ns, targets, pinger);
  } catch (e) {
    const gone = !existsSync(netnsPath(ns));
    if (gone || (e instanceof CommandError && /network namespace|ns\/net/.test(e.stderr))) {
      return new Set();
    }
    throw e;
  }
}

async function pingFromOnce(
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

  const { target } = labTarget(opts);
  const transport = labNamespaceTransport(plan);
  const hostsOk = (r: StatusReport, check: string) =>
    r.hosts.every((h) => h.checks.every((c) => c.check !== check || c.status !== "problem"));
  const probes = await poll(
    log,
    "the health probes (BGP, routes, wiring, SNAT, plugin data)",
    deadline,
    async (first) => {
      const r = await runStatus(target, transport);
      if (plan.bgp && timings.bgpEstablished === undefined && hostsOk(r, "bgp")) {
        timings.bgpEstablished = timing(first);
      }
      if (timings.allRoutes === undefined && hostsOk(r, "routes"))
        timings.allRoutes = timing(first);
      return { done: r.ok, value: r };
    },
  );
  for (const p of probes.problems) problems.push(formatProblem(p));
  if (probes.consequences.length > 0) {
    problems.push(`... and ${probes.consequences.length} consequence(s) of the above`);
  }
  const bgp = plan.bgp ? bgpOf(probes) : [];
  const routes = routesOf(probes, plan);

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
    probes,
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
