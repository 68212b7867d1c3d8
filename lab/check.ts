/**
 * `check`: does the lab route, and does it enforce the stack's policy? The health probes
 * `npm run status` runs (BGP sessions, a route for every remote endpoint, every endpoint
 * wired, SNAT, plugin data), here through the lab's namespaces; then, with the real Felix,
 * the policy matrix both ways (policy-check.ts: every allowed probe connects, every denied
 * one is dropped), or, with the stand-in, the all-pairs ping matrix and a plain word that no
 * policy was tested; with timings.
 */
import {
  runStatus,
  type BgpSession,
  type KernelRoute,
  type StatusReport,
} from "../status/engine.js";
import { formatProblem } from "../status/report.js";
import { buildModel } from "../components/model.js";
import { fmtSeconds, requireState, resolveContext, type LabOptions } from "./context.js";
import { run, sleep } from "./exec.js";
import { choosePinger, pingMatrix, type MatrixResult } from "./ping-matrix.js";
import type { LabPlan } from "./plan.js";
import { checkHostIsolation, type IsolationResult } from "./host-isolation.js";
import { runPolicyProbes, type PolicyRun } from "./policy-check.js";
import { labNamespaceTransport, labTarget } from "./probes.js";
import { FELIX_STAND_IN } from "./stages/felix.js";

export type { MatrixResult, PairResult } from "./ping-matrix.js";

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
  /** Real Felix: the policy proven both ways (expected and observed matrices, mismatches). */
  policy?: PolicyRun;
  /** Containers do not reach the hosts' SSH, BGP or ZeroMQ ports (real Felix, GCE fabric). */
  isolation?: IsolationResult;
  /** Stand-in (no policy): the all-pairs ping matrix. */
  matrix?: MatrixResult;
  timings: {
    bgpEstablished?: Timing;
    allRoutes?: Timing;
    /** Every allowed probe connected (real Felix) or every pair answered (stand-in). */
    fullMatrix?: Timing;
  };
  /** How Felix ran: `real (image …)`, or the stand-in's plain words that no policy was tested. */
  felix: string;
  /** The health probes' report (what `npm run status -- --lab` shows, here through namespaces). */
  probes: StatusReport;
  problems: string[];
}

export interface CheckOptions extends LabOptions {
  /** How long to wait for sessions, routes and the policy to converge (default 60 s). */
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
// The check

/** What the sections of one check share. */
interface CheckRun {
  opts: CheckOptions;
  st: ReturnType<typeof requireState>;
  plan: LabPlan;
  log: (l: string) => void;
  deadline: number;
  timing: (first: boolean, at?: number) => Timing;
  timings: CheckReport["timings"];
  problems: string[];
}

export async function labCheck(opts: CheckOptions = {}): Promise<CheckReport> {
  const { stack, state, log } = resolveContext(opts);
  const st = requireState(state);
  const plan = st.plan;
  const checkStart = Date.now();
  const origin = plan.bgp
    ? Math.min(...st.birds.map((b) => b.startedAt), st.upDoneAt!)
    : st.upDoneAt!;
  const c: CheckRun = {
    opts,
    st,
    plan,
    log,
    deadline: checkStart + (opts.timeoutMs ?? 60_000),
    timing: (first, at = Date.now()) => ({
      sinceStartMs: at - origin,
      sinceCheckMs: at - checkStart,
      atFirstLook: first,
    }),
    timings: {},
    problems: [],
  };
  const probes = await healthSection(c);
  const base = {
    stack,
    bgp: { enabled: plan.bgp, hosts: plan.bgp ? bgpOf(probes) : [] },
    routes: routesOf(probes, plan),
    probes,
    timings: c.timings,
    problems: c.problems,
  };
  if (st.felix?.mode !== "real") {
    const matrix = await standInSection(c);
    return { ...base, ok: c.problems.length === 0, matrix, felix: FELIX_STAND_IN };
  }
  const { policy, isolation } = await policySection(c);
  return {
    ...base,
    ok: c.problems.length === 0,
    policy,
    isolation,
    felix:
      `real Felix and ACL Manager 0.10.2 (${st.felix.image}): ` +
      "the stack's policy is enforced and tested",
  };
}

/** The health probes of status/engine.ts, through the lab's namespaces, until they pass. */
async function healthSection(c: CheckRun): Promise<StatusReport> {
  const { target } = labTarget(c.opts);
  const transport = labNamespaceTransport(c.plan);
  const hostsOk = (r: StatusReport, check: string) =>
    r.hosts.every((h) => h.checks.every((x) => x.check !== check || x.status !== "problem"));
  const probes = await poll(
    c.log,
    "the health probes (BGP, routes, wiring, SNAT, plugin data)",
    c.deadline,
    async (first) => {
      const r = await runStatus(target, transport);
      if (c.plan.bgp && c.timings.bgpEstablished === undefined && hostsOk(r, "bgp")) {
        c.timings.bgpEstablished = c.timing(first);
      }
      if (c.timings.allRoutes === undefined && hostsOk(r, "routes"))
        c.timings.allRoutes = c.timing(first);
      return { done: r.ok, value: r };
    },
  );
  for (const p of probes.problems) c.problems.push(formatProblem(p));
  if (probes.consequences.length > 0) {
    c.problems.push(`... and ${probes.consequences.length} consequence(s) of the above`);
  }
  return probes;
}

const timeLeft = (c: CheckRun) => Math.max(2000, c.deadline - Date.now());

/** The stand-in's all-pairs ping matrix: routing only, no policy. */
async function standInSection(c: CheckRun): Promise<MatrixResult> {
  const pinger = await choosePinger(c.opts.pinger);
  c.log(`- ping matrix (${pinger}); Felix is the stand-in: NO POLICY IS TESTED ...`);
  const matrix = await pingMatrix(c.plan, { deadlineMs: timeLeft(c), pinger });
  if (matrix.failed.length === 0) c.timings.fullMatrix = c.timing(false);
  c.log(`  ${matrix.ok}/${matrix.pairs} pairs answer (${fmtSeconds(matrix.durationMs)})`);
  for (const f of matrix.failed.slice(0, 20)) {
    c.problems.push(`ping ${f.from} -> ${f.to} (${f.ip}) fails`);
  }
  if (matrix.failed.length > 20)
    c.problems.push(`... and ${matrix.failed.length - 20} more pairs fail`);
  return matrix;
}

/** The policy matrix, both ways, judged; host isolation beside its full rounds. */
async function policySection(
  c: CheckRun,
): Promise<{ policy: PolicyRun; isolation: IsolationResult }> {
  c.log("- the policy matrix, both ways (allowed pairs connect, denied pairs are dropped) ...");
  const t0 = Date.now();
  const model = buildModel(c.st.config!);
  let isolation: IsolationResult | undefined;
  const policy = await runPolicyProbes(c.plan, model, {
    deadlineMs: timeLeft(c),
    ...(c.st.formerKinds !== undefined ? { also: c.st.formerKinds } : {}),
    besideFullRound: async () => {
      isolation = await checkHostIsolation(c.plan, model);
    },
  });
  const j = policy.judgement;
  if (policy.convergedAfterMs !== undefined) {
    c.timings.fullMatrix = c.timing(false, t0 + policy.convergedAfterMs);
  }
  c.log(
    `  ${j.counts.passed}/${j.counts.probes} probes as the policy says ` +
      `(${j.counts.allowed} allowed, ${j.counts.denied} denied; ${policy.rounds} round(s), ` +
      `${fmtSeconds(policy.durationMs)})`,
  );
  c.problems.push(...j.mismatches.slice(0, 30).map((m) => m.message));
  if (j.mismatches.length > 30)
    c.problems.push(`... and ${j.mismatches.length - 30} more mismatches`);
  // The first round is always a full one, so the isolation probes ran at least once.
  return { policy, isolation: isolationReport(c, isolation!) };
}

/** Containers do not reach the hosts' SSH, BGP or ZeroMQ: said, and each breach a problem. */
function isolationReport(c: CheckRun, isolation: IsolationResult): IsolationResult {
  c.log(
    isolation.skipped !== undefined
      ? `- host isolation: skipped (${isolation.skipped})`
      : `- host isolation: ${isolation.probes - isolation.reached.length}/${isolation.probes} ` +
          "endpoint -> host SSH/BGP/ZeroMQ connects are dropped " +
          `(${fmtSeconds(isolation.durationMs)})`,
  );
  for (const x of isolation.reached) {
    c.problems.push(
      `${x.probe.from} reaches ${x.probe.to}'s tcp/${x.probe.port} (${x.probe.toIp}): ` +
        `${x.observed.outcome}; containers must not reach the hosts' SSH, BGP or ZeroMQ`,
    );
  }
  return isolation;
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
