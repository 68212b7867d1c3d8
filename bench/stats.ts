/** Percentiles of the benches' samples (milliseconds), computed and printed one way. */

/** The p-th percentile of ascending `sorted` (nearest rank); NaN when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? NaN;
}

export interface Stats {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function stats(samples: readonly number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? NaN };
}

/** "p50 …   p99 …   max …", each value written by `fmt`; "no samples" when there are none. */
export function statsLine(samples: readonly number[], fmt: (ms: number) => string): string {
  if (samples.length === 0) return "no samples";
  const st = stats(samples);
  return `p50 ${fmt(st.p50)}   p99 ${fmt(st.p99)}   max ${fmt(st.max)}`;
}
