/**
 * `npm run bench:lab -- --policy` (root): how fast a policy change reaches the packets. The
 * dev stack is brought up with the real Felix and ACL Manager; then, --changes times, db's
 * inbound rules gain (or lose again) `{group: web, protocol: icmp}`, re-rendered into the
 * plugin data as `pulumi up` writes it (lab/apply.ts), and the time is taken from the write
 * to the first ping web → db that shows it enforced (answered after an allow, unanswered
 * after a removal): when that ping was sent (judged against the goal, p99 < 1 s; the
 * prototype took one to two minutes) and when it ended (an unanswered one waits 0.2 s).
 * Changes are `gapMs` apart (default 3 s): every change makes the ACL Manager 0.10.2 resend
 * every endpoint's ACLs and Felix reprogram each (about a second an endpoint), so changes
 * closer together than that measure Felix's backlog rather than one change's latency.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { applyPolicy } from "../lab/apply.js";
import { labCheck } from "../lab/check.js";
import { passes } from "../lab/policy-judge.js";
import { listeners, reachability, type ExpectedProbe } from "../components/reachability.js";
import type { ClusterModel } from "../components/model.js";
import { docker } from "../lab/docker.js";
import { netnsPath, run, sleep } from "../lab/exec.js";
import type { LabPlan } from "../lab/plan.js";
import { probeAll, startListeners, stopListeners } from "../lab/policy-probes.js";
import { labDown, labUp } from "../lab/lab.js";
import type { CalicoConfig } from "../components/config.js";
import { stackWith } from "../test/helpers/lab.js";
import { stats, statsLine } from "./stats.js";

const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`;

/**
 * dev, with db letting web ping it or not. Its endpoints are named apart from dev's (an
 * endpoint's namespace link is a machine-wide name), so the bench runs beside a dev lab.
 */
function devWithIcmp(allow: boolean): CalicoConfig {
  return stackWith("dev", (raw) => {
    (raw.endpoints as { name?: string }[]).forEach((e, i) => (e.name = `bench-${i + 1}`));
    if (!allow) return;
    const groups = raw.groups as Record<string, { inbound: unknown[] }>;
    groups.db!.inbound.push({ group: "web", protocol: "icmp" });
  });
}

async function pings(ns: string, ip: string): Promise<boolean> {
  const r = await run("ip", ["netns", "exec", ns, "ping", "-c", "1", "-W", "0.2", "-q", ip], {
    okCodes: [1, 2],
  });
  return r.code === 0;
}

/**
 * Pings from ns to ip, one after another, until one shows the change enforced (answered when
 * `want`, unanswered otherwise). `sent`: when that ping was started, ms after t0 (its packet
 * met the new policy; after an allow, the policy may have changed up to one unanswered
 * ping's 0.2 s before); `seen`: when it ended (an unanswered ping ends 0.2 s after it was
 * sent). Each ping is a process of its own: a long-running ping keeps one ICMP flow, which
 * Felix's rule for established traffic lets through after the rule that allowed it is gone.
 */
async function untilPing(ns: string, ip: string, want: boolean, t0: number, limitMs: number) {
  while (performance.now() - t0 < limitMs) {
    const sent = performance.now();
    if ((await pings(ns, ip)) === want) return { sent: sent - t0, seen: performance.now() - t0 };
    if (want) await sleep(10);
  }
  return undefined;
}

export async function policyBench(changes: number, gapMs = 3000): Promise<boolean> {
  const stateRoot = mkdtempSync(path.join(tmpdir(), "lab-policy-bench-"));
  const opts = {
    stack: "bench-policy",
    stateRoot,
    config: devWithIcmp(false),
    felix: "real" as const,
  };
  try {
    const up = await labUp(opts);
    const report = await labCheck({ ...opts, timeoutMs: 180_000 });
    if (!report.ok) throw new Error(`the lab did not converge: ${report.problems.join("; ")}`);
    const web = up.plan.endpoints.find((e) => e.group === "web" && e.host === "host-1")!;
    const db = up.plan.endpoints.find((e) => e.group === "db")!;
    const from: number[] = [];
    const known: number[] = [];
    let missed = 0;
    for (let k = 0; k < changes; k++) {
      const allow = k % 2 === 0;
      const t0 = performance.now();
      applyPolicy(opts, devWithIcmp(allow));
      const seen = await untilPing(web.ns, db.ip, allow, t0, 30_000);
      if (seen === undefined) missed++;
      else {
        from.push(seen.sent);
        known.push(seen.seen);
      }
      await sleep(gapMs);
    }
    const p99 = stats(from).p99;
    const ok = missed === 0 && p99 < 1000;
    console.log(
      [
        `policy change -> enforced (dev, web -> db icmp, ${changes} changes ${gapMs} ms apart, ${
          changes - missed
        } seen within 30 s):`,
        `  the first ping under the new policy sent  ${statsLine(from, s)}   (goal p99 < 1 s)  ${
          ok ? "PASS" : "FAIL"
        }`,
        `  that ping ended (+0.2 s when unanswered)  ${statsLine(known, s)}`,
        `  samples (s, in order): ${from.map((ms) => (ms / 1000).toFixed(2)).join(" ")}`,
      ].join("\n"),
    );
    return ok;
  } finally {
    await labDown(opts).catch(() => {});
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

/**
 * `docker restart` of one endpoint -> reachable and isolated again: every probe to or from
 * it (components/reachability.ts) as the policy says, n times; from the restart issued, and
 * from the container running again.
 */
export async function restartsWithPolicy(
  plan: LabPlan,
  model: ClusterModel,
  host: string,
  n: number,
): Promise<RestartTimes> {
  const reach = reachability(model);
  let missed = 0;
  const pids = startListeners(plan, listeners(reach));
  const total: number[] = [];
  const afterStart: number[] = [];
  const heldFrom: number[] = [];
  try {
    await sleep(200);
    for (let k = 0; k < n; k++) {
      const target = plan.endpoints[k % plan.endpoints.length]!;
      const mine = reach.probes.filter((p) => p.from === target.name || p.to === target.name);
      const t0 = performance.now();
      await docker(host, ["restart", target.container]);
      const t1 = performance.now();
      // Its listeners went with its old namespace: start them in the new one, once the
      // agent has wired it (the link still names the old namespace until then).
      const wired = await untilWired(host, target.container, target.ns, RESTART_LIMIT_MS);
      const again = startListeners(
        plan,
        listeners(reach).filter((l) => l.endpoint === target.name),
      );
      pids.push(...again);
      const held = wired ? await untilHeld(plan, mine, t0 + RESTART_LIMIT_MS) : undefined;
      if (!held) {
        missed++;
        continue;
      }
      total.push(held.proven - t0);
      afterStart.push(held.proven - t1);
      heldFrom.push(held.from - t0);
    }
  } finally {
    stopListeners(pids);
  }
  return { total, afterStart, heldFrom, missed };
}

/** A new probe round starts this often while earlier ones still wait on their timeouts. */
export const ROUND_EVERY_MS = 300;

/**
 * Restart samples (ms), for both restart benches: the state proven, from the restart issued
 * (`total`) and from the container running again; when it held from (policy bench only).
 */
export interface RestartTimes {
  total: number[];
  afterStart: number[];
  heldFrom?: number[];
  missed: number;
}

interface Round {
  readonly start: number;
  end?: number;
  ok?: boolean;
}

/**
 * When the probes held, to the resolution of ROUND_EVERY_MS rather than of a denied probe's
 * timeout (PROBE_TIMEOUT_S): rounds overlap, and the answer is the first round after the last
 * failed one, once every round started before it ended has passed too. `from` is that round's
 * start (the state held from then on), `proven` the last of those rounds' end.
 */
async function untilHeld(
  plan: LabPlan,
  probes: ExpectedProbe[],
  limitAt: number,
): Promise<{ from: number; proven: number } | undefined> {
  const rounds: Round[] = [];
  const inFlight: Promise<void>[] = [];
  while (performance.now() < limitAt) {
    const r: Round = { start: performance.now() };
    rounds.push(r);
    inFlight.push(
      probeAll(plan, probes).then((seen) => {
        r.ok = probes.every((p, i) => passes(p, seen[i]));
        r.end = performance.now();
      }),
    );
    const v = heldVerdict(rounds);
    if (v) {
      await Promise.all(inFlight);
      if (rounds.every((x) => x.start <= v.from || x.ok)) return v;
    }
    await sleep(ROUND_EVERY_MS);
  }
  await Promise.all(inFlight);
  return undefined;
}

/** The verdict over rounds so far (ordered by start), or undefined while it is not known. */
export function heldVerdict(
  rounds: readonly Round[],
): { from: number; proven: number } | undefined {
  const lastFailed = rounds.findLastIndex((r) => r.ok === false);
  const first = rounds[lastFailed + 1];
  if (first?.end === undefined || !first.ok) return undefined;
  const before = rounds.slice(lastFailed + 1).filter((r) => r.start <= first.end!);
  if (before.some((r) => r.end === undefined)) return undefined;
  return { from: first.start, proven: Math.max(...before.map((r) => r.end!)) };
}

/** A restart that has not healed within this counts as missed (both restart benches). */
export const RESTART_LIMIT_MS = 30_000;

/** Waits until the endpoint's namespace link is the running container's namespace. */
async function untilWired(host: string, container: string, ns: string, limitMs: number) {
  const t0 = performance.now();
  while (performance.now() - t0 < limitMs) {
    const r = await docker(host, ["inspect", "-f", "{{.State.Pid}}", container], {
      okCodes: [1],
    });
    const pid = Number(r.stdout.trim());
    try {
      if (pid > 0 && statSync(netnsPath(ns)).ino === statSync(`/proc/${pid}/ns/net`).ino)
        return true;
    } catch {
      // not there yet
    }
    await sleep(20);
  }
  return false;
}
