/**
 * The all-pairs ping matrix of a lab without policy (`--felix stand-in`): every endpoint
 * pings every other one, sources in parallel, failures retried until a deadline.
 */
import { existsSync } from "node:fs";
import { LabError } from "./context.js";
import { CommandError, missingTools, netnsPath, pool, run, runIn, sleep } from "./exec.js";
import type { EndpointPlan, LabPlan } from "./plan.js";

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
