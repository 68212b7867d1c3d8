/**
 * The check report as a person reads it: BGP sessions per host, remote endpoint routes, the
 * ping matrix as a grid (small labs), the convergence timings and the problems found.
 */
import type { CheckReport, MatrixResult, Timing } from "./check.js";
import { fmtSeconds } from "./context.js";
import type { PolicyRun } from "./policy-check.js";
import { formatPolicyReport } from "./policy-judge.js";

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** from (rows) x to (columns): `ok`, `--` (itself) or `FAIL`. */
function matrixGrid(m: MatrixResult): string {
  const failed = new Set(m.failed.map((f) => `${f.from}\0${f.to}`));
  const names = m.endpoints;
  const rows = [["from \\ to", ...names.map((_, i) => `#${i + 1}`)]];
  names.forEach((from, i) => {
    rows.push([
      `#${i + 1} ${from}`,
      ...names.map((to) => (to === from ? "--" : failed.has(`${from}\0${to}`) ? "FAIL" : "ok")),
    ]);
  });
  return table(rows)
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}

function fmtTiming(t: Timing | undefined): string {
  if (t === undefined) return "not reached";
  const since = fmtSeconds(t.sinceStartMs!);
  return t.atFirstLook ? `≤ ${since} (already so at the first look)` : since;
}

export function formatReport(r: CheckReport): string {
  const out: string[] = [];
  out.push(`lab ${r.stack}: ${r.ok ? "OK" : "FAILED"}`);
  out.push("");
  if (r.bgp.enabled) {
    const rows = [["host", "BIRD", "BGP sessions"]];
    for (const h of r.bgp.hosts) {
      rows.push([
        h.host,
        h.running ? "running" : "DOWN",
        h.sessions.map((s) => `${s.name}=${s.info.split(/\s+/)[0] || s.state}`).join(" ") || "-",
      ]);
    }
    out.push(table(rows), "");
  } else {
    out.push("BGP is off: endpoint routes between hosts are the fabric's static routes.", "");
  }
  const rows = [["host", "remote endpoint routes", "via", "missing"]];
  for (const h of r.routes) {
    rows.push([
      h.host,
      `${h.present}/${h.expected}`,
      h.via === "bgp" ? "BGP (proto bird)" : "fabric",
      h.missing.slice(0, 6).join(" ") + (h.missing.length > 6 ? " ..." : "") || "-",
    ]);
  }
  out.push(table(rows), "");
  // The routes themselves, for a lab small enough to read them.
  if (r.routes.every((h) => h.routes.length <= 8)) {
    for (const h of r.routes) {
      out.push(`${h.host}:`, ...h.routes.map((l) => `  ${l}`));
    }
    out.push("");
  }
  if (r.matrix !== undefined) out.push(...matrixLines(r.matrix));
  if (r.policy !== undefined) out.push(...policyLines(r.policy));
  if (r.isolation !== undefined) {
    out.push(
      r.isolation.skipped !== undefined
        ? `host isolation: not checked (${r.isolation.skipped})`
        : `host isolation: ${r.isolation.probes - r.isolation.reached.length}/${r.isolation.probes} ` +
            "endpoint -> host SSH/BGP/ZeroMQ connects dropped",
      "",
    );
  }
  const base = r.bgp.enabled ? "since BIRD started" : "since up finished";
  if (r.bgp.enabled) out.push(`BGP Established ${base}: ${fmtTiming(r.timings.bgpEstablished)}`);
  out.push(`all routes ${base}:       ${fmtTiming(r.timings.allRoutes)}`);
  out.push(
    `${r.policy ? "the policy holds" : "full matrix"} ${base}: ${fmtTiming(r.timings.fullMatrix)}`,
  );
  out.push("", r.felix);
  if (r.problems.length > 0) {
    out.push("", "problems:", ...r.problems.map((p) => `  - ${p}`));
  }
  return out.join("\n");
}

function matrixLines(m: MatrixResult): string[] {
  const out = [
    `ping matrix (${m.pinger}): ${m.ok}/${m.pairs} pairs answer` +
      (m.failed.length > 0 ? `, ${m.failed.length} fail` : ""),
  ];
  if (m.endpoints.length <= 12) out.push(matrixGrid(m));
  for (const f of m.failed.slice(0, 20)) out.push(`  FAIL ${f.from} -> ${f.to} (${f.ip})`);
  out.push("");
  return out;
}

function policyLines(run: PolicyRun): string[] {
  return [formatPolicyReport(run.judgement), ""];
}
