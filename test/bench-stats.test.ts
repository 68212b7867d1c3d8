// The benches' percentiles (bench/stats.ts): nearest rank, as the docs' figures read them.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { percentile, stats, statsLine } from "../bench/stats.js";

describe("bench stats", () => {
  it("takes the nearest rank: of 20 samples, p50 is the 10th and p99 the largest", () => {
    const samples = Array.from({ length: 20 }, (_, i) => (20 - i) * 10); // 200 … 10, unsorted
    assert.deepEqual(stats(samples), { n: 20, p50: 100, p99: 200, max: 200 });
    assert.equal(percentile([5], 99), 5);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  it("writes one line, each value by the caller's format, or says there are none", () => {
    assert.equal(
      statsLine([3, 1, 2], (ms) => `${ms}ms`),
      "p50 2ms   p99 3ms   max 3ms",
    );
    assert.equal(
      statsLine([], () => "x"),
      "no samples",
    );
  });
});
