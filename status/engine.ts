/**
 * The health-check engine: one set of probes for a deployed stack, run on each host through a
 * transport (the lab's namespaces, or SSH). Per host, one shell command gathers the facts
 * (routes, links, proxy ARP, BIRD's sessions, containers, the agent, Felix's chains, the
 * SNAT rule, the plugin's data: `gather.ts`), and one judge per check judges them against the
 * cluster model (`judge.ts`, `judges/`).
 *
 * A problem names the host, the thing and what was expected. A problem that another one
 * explains (a peer's session down because that peer's BIRD is down; a route missing to an
 * endpoint whose tap is gone) is kept as a consequence of it (`correlate.ts`), so the report
 * names the broken thing, not everything it broke. A host whose reply cannot be used (too
 * large, or not of the shape its parser expects) is that host's problem; the others are judged.
 */
import type { HostModel } from "../components/model.js";
import { PATHS } from "../components/model.js";
import { correlate } from "./correlate.js";
import { gatherScript, parseSections } from "./gather.js";
import { judgeHost } from "./judge.js";
import { parseRoutes } from "./parse.js";
import { StatusError } from "./errors.js";
import { DEFAULT_MAX_BYTES, Unreachable, type Transport } from "./transport.js";
import {
  CHECKS,
  type HostStatus,
  type KernelRoute,
  type StatusReport,
  type StatusTarget,
} from "./types.js";

export * from "./types.js";
export { correlate } from "./correlate.js";
export { gatherScript, parseSections, HOST_IPTABLES } from "./gather.js";
export { judgeHost, JUDGES } from "./judge.js";
export { parseBirdProtocols } from "./parse.js";
export { describeRoute, longestMatch } from "./routes.js";
export { systemContainersOf } from "./judges/containers.js";
export { FELIX_CHAIN_PREFIXES } from "./judges/felix.js";

export interface RunOptions {
  /** Hosts to report on (default all); the others are still read when they explain a problem. */
  only?: string[];
  /** How long one host may take, ms (default 30 s). */
  hostTimeoutMs?: number;
  /** Bytes read of one host's reply at most (default 16 MiB); past that, the host's problem. */
  maxReplyBytes?: number;
  /** Hosts probed at once (default 16). */
  concurrency?: number;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
}

async function pool<T, R>(items: readonly T[], limit: number, fn: (x: T) => Promise<R>) {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

const mib = (bytes: number) => `${+(bytes / 1024 / 1024).toFixed(2)} MiB`;

/** A host status when its reply could not be judged at all: the reason as its one problem. */
function unjudged(
  h: HostModel,
  reachable: boolean,
  durationMs: number,
  expected: string,
  found: string,
): HostStatus {
  return {
    host: h.name,
    controller: h.isController,
    reachable,
    durationMs,
    checks: [
      { check: "reach", status: "problem", detail: found },
      ...CHECKS.slice(1).map((check) => ({
        check,
        status: "unknown" as const,
        detail: reachable ? "reply not usable" : "host unreachable",
      })),
    ],
    problems: [{ host: h.name, check: "reach", subject: h.name, expected, found }],
    containers: [],
    routes: [],
  };
}

/** One host: gather over the transport, then judge (what a host replies never throws). */
async function probeHost(
  t: StatusTarget,
  transport: Transport,
  h: HostModel,
  fabric: KernelRoute[] | undefined,
  o: { timeoutMs: number; maxBytes: number },
): Promise<HostStatus> {
  const h0 = performance.now();
  const argv = [...t.sudo(h), "sh", "-c", gatherScript(t, h)];
  let r;
  try {
    r = await transport.exec(h.name, argv, { timeoutMs: o.timeoutMs, maxBytes: o.maxBytes });
  } catch (e) {
    if (!(e instanceof Unreachable)) throw e;
    return unjudged(
      h,
      false,
      performance.now() - h0,
      `reachable over ${transport.kind}`,
      e.message,
    );
  }
  // A transport of our own cuts at maxBytes; one that does not is held to it here.
  const size = r.stdout.length + r.stderr.length;
  if (r.truncated === true || size > o.maxBytes) {
    const found = `more than ${mib(o.maxBytes)} (cut there, the command stopped)`;
    return unjudged(
      h,
      true,
      performance.now() - h0,
      `a reply of at most ${mib(o.maxBytes)}`,
      found,
    );
  }
  const judged = judgeHost(t, h, parseSections(r.stdout), fabric);
  return {
    host: h.name,
    controller: h.isController,
    reachable: true,
    durationMs: performance.now() - h0,
    ...judged,
  };
}

function progressLine(s: HostStatus, done: number, of: number): string {
  const what = !s.reachable
    ? `UNREACHABLE: ${s.problems[0]!.found}`
    : s.problems.length === 0
      ? "ok"
      : `${s.problems.length} problem(s)`;
  const time = s.reachable
    ? ` (${(s.durationMs / 1000).toFixed(2)} s, ${done}/${of})`
    : ` (${done}/${of})`;
  return `  ${s.host}: ${what}${time}`;
}

/** The fabric's routes, held to the same shape as a host's. */
async function readFabric(t: StatusTarget): Promise<KernelRoute[] | undefined> {
  if (!t.fabricRoutes) return undefined;
  const routes = await t.fabricRoutes();
  const checked = parseRoutes(JSON.stringify(routes));
  if (!checked.ok) throw new StatusError(`the fabric's routes: ${checked.why}`);
  return checked.value;
}

/** Run every probe on every host through the transport; hosts in parallel. */
export async function runStatus(
  t: StatusTarget,
  transport: Transport,
  opts: RunOptions = {},
): Promise<StatusReport> {
  const t0 = performance.now();
  const progress = opts.progress ?? (() => {});
  const o = {
    timeoutMs: opts.hostTimeoutMs ?? 30_000,
    maxBytes: opts.maxReplyBytes ?? DEFAULT_MAX_BYTES,
  };
  const fabric = await readFabric(t);
  let done = 0;
  const hosts = await pool(t.model.hosts, opts.concurrency ?? 16, async (h) => {
    const s = await probeHost(t, transport, h, fabric, o);
    progress(progressLine(s, ++done, t.model.hosts.length));
    return s;
  });
  correlate(t.model, hosts);
  const shown = opts.only === undefined ? hosts : hosts.filter((h) => opts.only!.includes(h.host));
  const every = shown.flatMap((h) => h.problems);
  // A problem on a shown host whose cause is on a host not shown is still its consequence.
  return {
    stack: t.stack,
    target: t.kind,
    transport: transport.kind,
    ok: every.length === 0,
    hosts: shown,
    problems: every.filter((p) => p.causedBy === undefined),
    consequences: every.filter((p) => p.causedBy !== undefined),
    durationMs: performance.now() - t0,
  };
}

/** The controller's plugin data dir as production has it. */
export const PRODUCTION_DATA_DIR = PATHS.dataDir;
