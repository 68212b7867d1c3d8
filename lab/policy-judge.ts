/**
 * The policy half of `lab check`, as data: given the expected probes of
 * `components/reachability.ts` and what the probes observed, the expected and observed
 * matrices (endpoint × endpoint, one per probe kind), every mismatch named with the rule that
 * decides it, and ok / not ok. Pure: no I/O; the lab runs the probes and prints the text.
 *
 * A probe passes when an allowed one connected, or a denied one was dropped (no answer within
 * the probe's timeout). An error (refused, unreachable, the probe tool failing) never passes:
 * a denied probe must be dropped by Felix, not refused by the endpoint, and an allowed one
 * must connect. A probe that was expected but not observed, or observed but not expected,
 * fails the check too.
 */
import {
  kindLabel,
  type ExpectedProbe,
  type ProbeKind,
  type ReachEndpoint,
  type Reachability,
} from "../components/reachability.js";

export type Outcome = "connected" | "dropped" | "error";

/** What one probe saw. */
export interface Observation extends ProbeKind {
  from: string;
  to: string;
  outcome: Outcome;
  /** Time to the answer, or until the probe gave up. */
  ms: number;
  /** For an error: what the probe said (e.g. `connection refused`). */
  detail?: string;
}

/** A cell of the observed matrix: the outcome, `missing` when not probed, null on the diagonal. */
export type ObservedCell = Outcome | "missing" | null;

export interface KindMatrix {
  /** `icmp`, `tcp/5432`. */
  kind: string;
  /** [from][to] in `endpoints` order; null on the diagonal. */
  expected: ("allow" | "deny" | null)[][];
  observed: ObservedCell[][];
  mismatch: boolean[][];
}

export interface Mismatch {
  probe: ExpectedProbe;
  observed?: Observation;
  /** `web-1 → db-1 tcp/5433: expected dropped (…), but it connected in 12 ms`. */
  message: string;
}

export interface PolicyJudgement {
  ok: boolean;
  /** The matrices' rows and columns, in stack order. */
  endpoints: ReachEndpoint[];
  matrices: KindMatrix[];
  mismatches: Mismatch[];
  /** Observations of probes that were not expected (or a probe observed twice). */
  unexpected: Observation[];
  counts: { probes: number; allowed: number; denied: number; passed: number };
}

function keyOf(p: { from: string; to: string } & ProbeKind): string {
  return `${p.from}\0${p.to}\0${kindLabel(p)}`;
}

/** True when the observation is what the policy expects. */
export function passes(
  probe: Pick<ExpectedProbe, "expected">,
  seen: { outcome: string } | undefined,
): boolean {
  if (seen === undefined) return false;
  return probe.expected === "allow" ? seen.outcome === "connected" : seen.outcome === "dropped";
}

function whatHappened(seen: Observation | undefined): string {
  if (seen === undefined) return "it was not probed";
  const ms = `${Math.round(seen.ms)} ms`;
  if (seen.outcome === "connected") return `it connected in ${ms}`;
  if (seen.outcome === "dropped") return `it was dropped (no answer in ${ms})`;
  return `it failed after ${ms}${seen.detail ? `: ${seen.detail}` : ""}`;
}

/** One line naming the probe, what the policy expects and why, and what happened. */
export function formatMismatch(probe: ExpectedProbe, seen: Observation | undefined): string {
  const want = probe.expected === "allow" ? "expected to connect" : "expected dropped";
  return (
    `${probe.from} → ${probe.to} ${kindLabel(probe)}: ${want} (${probe.because}), ` +
    `but ${whatHappened(seen)}`
  );
}

/** Index the observations by probe; the second of a pair, and strays, are unexpected. */
function indexObservations(
  expectedKeys: ReadonlySet<string>,
  observed: readonly Observation[],
): { byKey: Map<string, Observation>; unexpected: Observation[] } {
  const byKey = new Map<string, Observation>();
  const unexpected: Observation[] = [];
  for (const o of observed) {
    const key = keyOf(o);
    if (!expectedKeys.has(key) || byKey.has(key)) unexpected.push(o);
    else byKey.set(key, o);
  }
  return { byKey, unexpected };
}

function matrixOf(
  kind: ProbeKind,
  endpoints: readonly string[],
  probes: ReadonlyMap<string, ExpectedProbe>,
  seen: ReadonlyMap<string, Observation>,
): KindMatrix {
  const cell = <T>(f: (p: ExpectedProbe, key: string) => T) =>
    endpoints.map((from) =>
      endpoints.map((to) => {
        const key = keyOf({ from, to, ...kind });
        const p = probes.get(key);
        return p === undefined ? null : f(p, key);
      }),
    );
  return {
    kind: kindLabel(kind),
    expected: cell((p) => p.expected),
    observed: cell((_, key): ObservedCell => seen.get(key)?.outcome ?? "missing"),
    mismatch: cell((p, key) => !passes(p, seen.get(key))).map((r) => r.map((c) => c === true)),
  };
}

/** Judge the observations against the expectation. */
export function judgePolicy(
  reach: Reachability,
  observed: readonly Observation[],
): PolicyJudgement {
  const probes = new Map(reach.probes.map((p) => [keyOf(p), p]));
  const { byKey, unexpected } = indexObservations(new Set(probes.keys()), observed);
  const mismatches = reach.probes.flatMap((probe): Mismatch[] => {
    const seen = byKey.get(keyOf(probe));
    if (passes(probe, seen)) return [];
    const message = formatMismatch(probe, seen);
    return [seen === undefined ? { probe, message } : { probe, observed: seen, message }];
  });
  const endpoints = reach.endpoints.map((e) => e.name);
  const allowed = reach.probes.filter((p) => p.expected === "allow").length;
  return {
    ok: mismatches.length === 0 && unexpected.length === 0,
    endpoints: reach.endpoints,
    matrices: reach.kinds.map((k) => matrixOf(k, endpoints, probes, byKey)),
    mismatches,
    unexpected,
    counts: {
      probes: reach.probes.length,
      allowed,
      denied: reach.probes.length - allowed,
      passed: reach.probes.length - mismatches.length,
    },
  };
}

const EXPECTED_MARK = { allow: "+", deny: "." } as const;
const OBSERVED_MARK = { connected: "+", dropped: ".", error: "!", missing: "?" } as const;

/** The legend of the text matrices. */
export const MATRIX_LEGEND =
  "+ allowed / connected   . denied / dropped   ! error   ? not probed   * mismatch   - itself";

/** One kind's expected and observed grids side by side; rows from, columns to. */
export function renderKindMatrix(m: KindMatrix): string {
  const n = m.expected.length;
  const w = Math.max(2, String(n).length + 1);
  const label = Math.max(m.kind.length, `#${n}`.length);
  const grid = Math.max(n * w, "expected".length);
  const row = (cells: string[]) =>
    cells
      .map((c) => c.padEnd(w))
      .join("")
      .padEnd(grid);
  const numbers = row(m.expected.map((_, i) => String(i + 1)));
  const lines = [
    `${m.kind.padEnd(label)}  ${"expected".padEnd(grid)}  observed`,
    `${"".padEnd(label)}  ${numbers}  ${numbers}`,
  ];
  m.expected.forEach((cells, i) => {
    const expected = cells.map((c) => (c === null ? "-" : EXPECTED_MARK[c]));
    const observed = m.observed[i]!.map((c, j) =>
      c === null ? "-" : OBSERVED_MARK[c] + (m.mismatch[i]![j] ? "*" : ""),
    );
    lines.push(`${`#${i + 1}`.padEnd(label)}  ${row(expected)}  ${row(observed)}`);
  });
  return lines.map((l) => l.trimEnd()).join("\n");
}

/** The whole policy report as a person reads it. */
export function formatPolicyReport(j: PolicyJudgement): string {
  const c = j.counts;
  const bad = c.probes - c.passed;
  const out = [
    `policy: ${c.probes} probes (${c.allowed} allowed, ${c.denied} denied): ` +
      (j.ok ? "all as expected" : `${bad} mismatch${bad === 1 ? "" : "es"}`) +
      (j.unexpected.length > 0 ? `, ${j.unexpected.length} unexpected observations` : ""),
    ...j.endpoints.map((e, i) => `  #${i + 1} ${e.name} (group ${e.group}, ${e.host}, ${e.ip})`),
    `  ${MATRIX_LEGEND}`,
  ];
  for (const m of j.matrices)
    out.push(
      "",
      ...renderKindMatrix(m)
        .split("\n")
        .map((l) => `  ${l}`),
    );
  if (j.mismatches.length > 0) out.push("", ...j.mismatches.map((m) => `  MISMATCH ${m.message}`));
  for (const o of j.unexpected) {
    out.push(
      `  UNEXPECTED ${o.from} → ${o.to} ${kindLabel(o)}: ${o.outcome} (not an expected probe, or seen twice)`,
    );
  }
  return out.join("\n");
}
