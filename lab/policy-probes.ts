/**
 * The policy probes of `check`, run for real: a listener in each target endpoint for every
 * port a probe needs, then each probe from the source endpoint's namespace — ICMP echo
 * (`ping`), a TCP connect (bash's /dev/tcp under `timeout`), a UDP datagram answered by an
 * echo listener — with a bounded timeout, in parallel. An outcome is `connected` (the reply
 * came back), `refused` (a TCP reset or ICMP unreachable: the packet passed the policy but
 * nothing listened), or `dropped` (no answer before the timeout: what Felix's DROP looks
 * like).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
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
export const PROBE_TIMEOUT_S = 1.5;

// Each listener answers every connection and goes on: busybox nc forking `true` per TCP
// connection; a UDP echo in Python (busybox's nc has no UDP).
const UDP_ECHO =
  "import socket,sys\n" +
  "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n" +
  "s.bind(('0.0.0.0',int(sys.argv[1])))\n" +
  "while True:\n" +
  "  d,a=s.recvfrom(2048)\n" +
  "  s.sendto(d,a)\n";

const UDP_PROBE =
  "import socket,sys\n" +
  "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n" +
  "s.settimeout(float(sys.argv[3]))\n" +
  "s.connect((sys.argv[1],int(sys.argv[2])))\n" +
  "try:\n" +
  "  s.send(b'calico-lab'); s.recv(64); print('connected')\n" +
  "except ConnectionRefusedError: print('refused')\n" +
  "except socket.timeout: print('dropped')\n";

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
          : ["python3", "-c", UDP_ECHO, String(l.port)];
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

function proberArgs(p: ProbeSpec): string[] {
  const t = String(PROBE_TIMEOUT_S);
  if (p.proto === "icmp") return ["ping", "-c", "1", "-W", t, "-q", p.toIp];
  if (p.proto === "tcp") {
    return ["timeout", t, "bash", "-c", 'exec 3<>"/dev/tcp/$0/$1"', p.toIp, String(p.port)];
  }
  return ["python3", "-c", UDP_PROBE, p.toIp, String(p.port), t];
}

/** The outcome of one probe from its exit code and output. */
export function judgeProbe(p: ProbeSpec, code: number, out: string): Outcome {
  if (p.proto === "icmp") {
    if (code === 0) return "connected";
    return /unreachable|prohibited/i.test(out) ? "refused" : "dropped";
  }
  if (p.proto === "tcp") {
    if (code === 0) return "connected";
    if (code === 124) return "dropped";
    return /refused/i.test(out)
      ? "refused"
      : /unreachable|no route/i.test(out)
        ? "refused"
        : "error";
  }
  const word = out.trim().split("\n").pop();
  return word === "connected" || word === "refused" || word === "dropped" ? word : "error";
}

/** Run one probe from its source endpoint's namespace. */
export async function probeOnce(src: EndpointPlan, p: ProbeSpec): Promise<Observation> {
  const t0 = performance.now();
  try {
    const r = await runIn(src.ns, proberArgs(p)[0]!, proberArgs(p).slice(1), {
      okCodes: [1, 2, 124],
      timeoutMs: PROBE_TIMEOUT_S * 1000 + 5000,
    });
    const out = r.stdout + r.stderr;
    const outcome = judgeProbe(p, r.code, out);
    const ms = performance.now() - t0;
    return outcome === "error"
      ? { outcome, ms, detail: out.trim().slice(0, 200) }
      : { outcome, ms };
  } catch (e) {
    return {
      outcome: "error",
      ms: performance.now() - t0,
      detail: (e as Error).message.slice(0, 200),
    };
  }
}

/** Run probes in parallel (bounded); the observations in the same order. */
export async function probeAll(
  plan: LabPlan,
  probes: ProbeSpec[],
  concurrency = 24,
): Promise<Observation[]> {
  const byName = new Map(plan.endpoints.map((e) => [e.name, e]));
  return pool(probes, concurrency, (p) => probeOnce(byName.get(p.from)!, p));
}
