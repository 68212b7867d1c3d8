/**
 * `check`'s policy matrix: who may reach whom, computed from the stack's groups and rules
 * (components/reachability.ts), proven both ways in the running lab (policy-probes.ts) and
 * judged (policy-judge.ts): every allowed probe must connect, every denied one be dropped.
 *
 * Felix 0.10 lets traffic through to an endpoint it has not programmed yet, then drops all
 * of it until the endpoint's ACLs arrive; so a verdict is only taken from a consistent
 * snapshot. Probes that do not yet match are tried again (every 200 ms) until they all do;
 * then one full round of every probe must match as a whole. Until the deadline: after it,
 * the last observations are judged as they are. Work given as `besideFullRound` (check's host
 * isolation probes) runs beside every full round, so it costs no time of its own, and its
 * last result comes from the round that is judged: when that one converged, Felix had every
 * endpoint's ACLs, so what stopped those probes was not Felix dropping all traffic to an
 * endpoint it had not programmed yet.
 */
import type { ClusterModel } from "../components/model.js";
import {
  listeners,
  reachability,
  type ProbeKind,
  type Reachability,
} from "../components/reachability.js";
import { sleep } from "./exec.js";
import type { LabPlan } from "./plan.js";
import { judgePolicy, passes, type Observation, type PolicyJudgement } from "./policy-judge.js";
import { probeAll, startListeners, stopListeners } from "./policy-probes.js";

export interface PolicyRun {
  judgement: PolicyJudgement;
  /** Probe rounds until the verdict. */
  rounds: number;
  durationMs: number;
  /** Ms from the start until a full round matched (undefined: never). */
  convergedAfterMs?: number;
}

/** One round: probe these (indexes into reach.probes), store what was seen. */
async function round(
  plan: LabPlan,
  reach: Reachability,
  which: number[],
  seen: Observation[],
  concurrency?: number,
): Promise<void> {
  const probes = which.map((i) => reach.probes[i]!);
  const got = await probeAll(plan, probes, concurrency);
  which.forEach((i, k) => {
    const p = reach.probes[i]!;
    const o = got[k]!;
    seen[i] = {
      from: p.from,
      to: p.to,
      proto: p.proto,
      ...(p.port !== undefined ? { port: p.port } : {}),
      // A refusal passed the policy: for a probe that must be dropped it is a failure, and for
      // one that must connect it means nothing listened: neither is what the check expects.
      outcome: o.outcome === "refused" ? "error" : o.outcome,
      ms: o.ms,
      ...(o.outcome === "refused"
        ? { detail: "refused: it passed the policy, but nothing answered" }
        : o.detail !== undefined
          ? { detail: o.detail }
          : {}),
    };
  });
}

/** Probe the policy of a lab that is up until it converges or `deadlineMs` passes. */
export async function runPolicyProbes(
  plan: LabPlan,
  model: ClusterModel,
  opts: {
    deadlineMs: number;
    concurrency?: number;
    also?: readonly ProbeKind[];
    besideFullRound?: () => Promise<void>;
  },
): Promise<PolicyRun> {
  const t0 = performance.now();
  const reach = reachability(model, opts.also);
  const all = reach.probes.map((_, i) => i);
  const seen: Observation[] = [];
  const pids = startListeners(plan, listeners(reach));
  let rounds = 0;
  let convergedAfterMs: number | undefined;
  const failing = () => all.filter((i) => !passes(reach.probes[i]!, seen[i]));
  const late = () => performance.now() - t0 > opts.deadlineMs;
  try {
    await sleep(200); // the listeners bind
    let pending = all;
    for (;;) {
      const full = pending.length === all.length;
      await Promise.all([
        round(plan, reach, pending, seen, opts.concurrency),
        full && opts.besideFullRound !== undefined ? opts.besideFullRound() : undefined,
      ]);
      rounds++;
      pending = failing();
      if (pending.length === 0 && full) {
        convergedAfterMs = performance.now() - t0;
        break;
      }
      if (late() && rounds >= 2) break;
      if (pending.length === 0)
        pending = all; // all match one by one: confirm as a whole
      else await sleep(200);
    }
  } finally {
    stopListeners(pids);
  }
  return {
    judgement: judgePolicy(
      reach,
      seen.filter((o) => o !== undefined),
    ),
    rounds,
    durationMs: performance.now() - t0,
    ...(convergedAfterMs !== undefined ? { convergedAfterMs } : {}),
  };
}
