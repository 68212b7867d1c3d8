/** The status report for people: per host, one line per check; then what to fix. */
import type { Problem, StatusReport } from "./engine.js";

const MARK: Record<string, string> = {
  ok: "ok",
  problem: "PROBLEM",
  "n/a": "n/a",
  unknown: "?",
};

export function formatProblem(p: Problem): string {
  return `${p.host}: ${p.check}: ${p.subject}: expected ${p.expected}, found ${p.found}`;
}

export function formatStatus(r: StatusReport): string {
  const out: string[] = [];
  const roots = r.problems.length;
  out.push(
    `${r.target} ${r.stack} (${r.transport}): ${
      r.ok
        ? "healthy"
        : `${roots} problem(s)${r.consequences.length ? `, ${r.consequences.length} consequence(s)` : ""}`
    } (${(r.durationMs / 1000).toFixed(2)} s)`,
  );
  for (const h of r.hosts) {
    out.push("", `${h.host}${h.controller ? " (controller)" : ""}`);
    const width = Math.max(...h.checks.map((c) => c.check.length));
    for (const c of h.checks) {
      out.push(`  ${c.check.padEnd(width)}  ${MARK[c.status]!.padEnd(7)}  ${c.detail}`);
    }
  }
  if (r.problems.length > 0) {
    out.push("", "problems (fix these):");
    for (const p of r.problems) out.push(`  - ${formatProblem(p)}`);
  }
  if (r.consequences.length > 0) {
    out.push("", "consequences (they follow from a problem above):");
    for (const p of r.consequences) out.push(`  - ${formatProblem(p)}  [from ${p.causedBy}]`);
  }
  return out.join("\n");
}
