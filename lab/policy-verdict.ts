/**
 * The verdict on a policy run: allowed and denied probes counted, and every mismatch named
 * with the rule that decides it. (The matrix rendering is lab/policy-judge.ts.)
 */
import { kindLabel } from "../components/reachability.js";
import type { PolicyRun } from "./policy-check.js";

export interface PolicyVerdict {
  allowed: { ok: number; total: number };
  denied: { ok: number; total: number };
  mismatches: string[];
  run: PolicyRun;
}

export function judgePolicy(run: PolicyRun): PolicyVerdict {
  const v: PolicyVerdict = {
    allowed: { ok: 0, total: 0 },
    denied: { ok: 0, total: 0 },
    mismatches: [],
    run,
  };
  run.probes.forEach((p, i) => {
    const o = run.observed[i]!;
    const want = p.expected === "allow" ? "connected" : "dropped";
    const side = p.expected === "allow" ? v.allowed : v.denied;
    side.total++;
    if (o.outcome === want) {
      side.ok++;
      return;
    }
    v.mismatches.push(
      `${p.from} -> ${p.to} ${kindLabel(p)}: expected ${want} (${p.because}), but it ` +
        `${o.outcome === "error" ? `could not be probed: ${o.detail ?? ""}` : o.outcome} ` +
        `(${Math.round(o.ms)} ms)`,
    );
  });
  return v;
}
