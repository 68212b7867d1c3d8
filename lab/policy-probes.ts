/**
 * The policy probes of `check`, run for real: a listener in each target endpoint for every
 * port a probe needs, then the probes from each source endpoint's namespace — ICMP echo, a
 * TCP connect, a UDP datagram answered by an echo listener — all at once from one process per
 * source (probe-batch.py), with a bounded timeout. An outcome is `connected` (the reply
 * came back), `refused` (a TCP reset or ICMP unreachable: the packet passed the policy but
 * nothing listened), or `dropped` (no answer before the timeout: what Felix's DROP looks
 * like).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { netnsPath, pool, runIn } from "./exec.js";
import type { EndpointPlan, LabPlan } from "./plan.js";

export type Outcome = "connected" | "refused" | "dropped" | "error";

export interface ProbeSpec {
  from: string;
  to: string;
  toIp: string;
  proto: "icmp" | "tcp" | "udp";
  port?: number;
}

export interface Observation {
  outcome: Outcome;
  ms: number;
  /** What the prober said, for `error`. */
  detail?: string;
}

/** How long one probe waits for its answer. */
export const PROBE_TIMEOUT_S = 0.5;

// Each listener answers every connection and goes on: busybox nc forking `true` per TCP
// connection; a UDP echo in Python (busybox's nc has no UDP).
const UDP_ECHO =
  "import socket,sys\n" +
  "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n" +
  "s.bind(('0.0.0.0',int(sys.argv[1])))\n" +
  "while True:\n" +
  "  d,a=s.recvfrom(2048)\n" +
  "  s.sendto(d,a)\n";

/** Start the listeners (one process each, in the endpoint's namespace); their pids. */
export function startListeners(
  plan: LabPlan,
  wanted: { endpoint: string; listen: { proto: "tcp" | "udp"; port: number }[] }[],
): number[] {
  const pids: number[] = [];
  for (const w of wanted) {
    const e = plan.endpoints.find((x) => x.name === w.endpoint);
    if (e === undefined || !existsSync(netnsPath(e.ns))) continue;
    for (const l of w.listen) {
      const argv =
        l.proto === "tcp"
          ? ["busybox", "nc", "-ll", "-p", String(l.port), "-e", "/bin/true"]
          : [PYTHON3, "-c", UDP_ECHO, String(l.port)];
      const child = spawn("nsenter", [`--net=${netnsPath(e.ns)}`, "--", ...argv], {
        stdio: "ignore",
        detached: true,
      });
      child.unref();
      if (child.pid !== undefined) pids.push(child.pid);
    }
  }
  return pids;
}

export function stopListeners(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** The batch prober: every probe of one source endpoint from one process (probe-batch.py). */
const PROBER = fileURLToPath(new URL("./probe-batch.py", import.meta.url));

/**
 * Debian's own python3 when there is one: a version manager's `python3` on PATH (a pyenv shim)
 * is a script that takes a third of a second or more to start, a fifth of the probe timeout.
 */
export const PYTHON3 = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

const OUTCOMES: readonly Outcome[] = ["connected", "refused", "dropped", "error"];

/** One observation from a line the prober printed, or an error saying what it printed. */
export function parseObservation(line: string | undefined): Observation {
  try {
    const o = JSON.parse(line ?? "") as { outcome?: unknown; ms?: unknown; detail?: unknown };
    if (OUTCOMES.includes(o.outcome as Outcome) && typeof o.ms === "number") {
      return {
        outcome: o.outcome as Outcome,
        ms: o.ms,
        ...(typeof o.detail === "string" ? { detail: o.detail } : {}),
      };
    }
  } catch {
    // said below
  }
  return { outcome: "error", ms: 0, detail: `the prober printed ${JSON.stringify(line ?? "")}` };
}

/** Every probe of one source endpoint, at once, from its namespace. */
export async function probeFrom(src: EndpointPlan, probes: ProbeSpec[]): Promise<Observation[]> {
  const input = JSON.stringify({
    timeout: PROBE_TIMEOUT_S,
    probes: probes.map((p) => ({ proto: p.proto, ip: p.toIp, port: p.port ?? 0 })),
  });
  try {
    const r = await runIn(src.ns, PYTHON3, [PROBER], {
      input,
      timeoutMs: PROBE_TIMEOUT_S * 1000 + 10_000,
    });
    const lines = r.stdout.trim().split("\n");
    return probes.map((_, i) => parseObservation(lines[i]));
  } catch (e) {
    const detail = (e as Error).message.slice(0, 200);
    return probes.map(() => ({ outcome: "error" as const, ms: 0, detail }));
  }
}

/**
 * Run probes, those of each source endpoint together (one prober process each, all probes
 * at once), sources in parallel (bounded); the observations in the same order.
 */
export async function probeAll(
  plan: LabPlan,
  probes: ProbeSpec[],
  concurrency = 32,
): Promise<Observation[]> {
  const byName = new Map(plan.endpoints.map((e) => [e.name, e]));
  const bySource = new Map<string, number[]>();
  probes.forEach((p, i) => bySource.set(p.from, [...(bySource.get(p.from) ?? []), i]));
  const seen = new Array<Observation>(probes.length);
  await pool([...bySource], concurrency, async ([from, which]) => {
    const got = await probeFrom(
      byName.get(from)!,
      which.map((i) => probes[i]!),
    );
    which.forEach((i, k) => (seen[i] = got[k]!));
  });
  return seen;
}
