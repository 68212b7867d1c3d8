/**
 * `check`'s policy matrix: who may reach whom, computed from the stack's groups and rules
 * (components/reachability.ts), proven both ways in the running lab. Every allowed probe
 * must connect, every denied one must be dropped. Allowed probes are retried until they
 * connect or the deadline passes (Felix may still be programming); denied probes are judged
 * once every allowed one has connected (or the deadline has passed), and one that connects
 * is tried again until the deadline (its ACLs may still be on their way), so a verdict is
 * never taken from a lab that has not converged.
 */
import type { ClusterModel } from "../components/model.js";
import { listeners, reachability, type ExpectedProbe } from "../components/reachability.js";
import { sleep } from "./exec.js";
import type { LabPlan } from "./plan.js";
import { probeAll, startListeners, stopListeners, type Observation } from "./policy-probes.js";

export interface PolicyRun {
  probes: ExpectedProbe[];
  observed: Observation[];
  /** Probe rounds until the verdict. */
  rounds: number;
  durationMs: number;
  /** Ms from the start until every allowed probe connected (undefined: never). */
  allowedAfterMs?: number;
}

const settledAllowed = (o: Observation | undefined) => o?.outcome === "connected";
const settledDenied = (o: Observation | undefined) => o?.outcome === "dropped";

/** Probe the policy of a lab that is up until it converges or `deadlineMs` passes. */
export async function runPolicyProbes(
  plan: LabPlan,
  model: ClusterModel,
  opts: { deadlineMs: number; concurrency?: number },
): Promise<PolicyRun> {
  const t0 = performance.now();
  const reach = reachability(model);
  const probes = reach.probes;
  const observed: (Observation | undefined)[] = probes.map(() => undefined);
  const pids = startListeners(plan, listeners(reach));
  let rounds = 0;
  let allowedAfterMs: number | undefined;
  try {
    await sleep(200); // the listeners bind
    const timeLeft = () => opts.deadlineMs - (performance.now() - t0);
    for (;;) {
      const allowedDone = probes.every(
        (p, i) => p.expected !== "allow" || settledAllowed(observed[i]),
      );
      if (allowedDone && allowedAfterMs === undefined) allowedAfterMs = performance.now() - t0;
      const pending = probes
        .map((p, i) => ({ p, i }))
        .filter(({ p, i }) =>
          p.expected === "allow"
            ? !settledAllowed(observed[i])
            : (allowedDone || timeLeft() <= 0) && !settledDenied(observed[i]),
        );
      if (pending.length === 0) break;
      rounds++;
      const got = await probeAll(
        plan,
        pending.map(({ p }) => p),
        opts.concurrency,
      );
      pending.forEach(({ i }, k) => (observed[i] = got[k]));
      if (timeLeft() <= 0 && rounds >= 2) break;
      if (!pending.every(({ i }) => observed[i]?.outcome === "dropped")) await sleep(200);
    }
  } finally {
    stopListeners(pids);
  }
  return {
    probes,
    observed: observed.map((o) => o ?? { outcome: "error", ms: 0, detail: "not probed" }),
    rounds,
    durationMs: performance.now() - t0,
    ...(allowedAfterMs !== undefined ? { allowedAfterMs } : {}),
  };
}
