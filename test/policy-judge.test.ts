import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  kindLabel,
  reachability,
  type ExpectedProbe,
  type Reachability,
} from "../components/reachability.js";
import {
  formatPolicyReport,
  judgePolicy,
  renderKindMatrix,
  type Observation,
  type Outcome,
} from "../lab/policy-judge.js";
import { modelArb } from "./helpers/arbitraries.js";
import { devModel } from "./helpers/stacks.js";

const WEB1 = "192_168_1_1";
const DB = "192_168_1_2";
const WEB2 = "192_168_1_3";

/** What a correct Felix shows: allowed probes connect in 3 ms, denied ones time out at 500. */
function asExpected(reach: Reachability): Observation[] {
  return reach.probes.map((p) => ({
    from: p.from,
    to: p.to,
    proto: p.proto,
    ...(p.port !== undefined ? { port: p.port } : {}),
    outcome: p.expected === "allow" ? "connected" : "dropped",
    ms: p.expected === "allow" ? 3 : 500,
  }));
}

function isProbe(o: Observation, from: string, to: string, kind: string): boolean {
  return o.from === from && o.to === to && kindLabel(o) === kind;
}

/** The observations with one probe's outcome replaced. */
function withOutcome(
  obs: Observation[],
  at: [string, string, string],
  outcome: Outcome,
  ms: number,
  detail?: string,
): Observation[] {
  return obs.map((o) =>
    isProbe(o, ...at) ? { ...o, outcome, ms, ...(detail ? { detail } : {}) } : o,
  );
}

describe("policy judge on dev", () => {
  const dev = reachability(devModel());
  const good = asExpected(dev);

  it("observations that follow the policy pass, with nothing mismatched", () => {
    const j = judgePolicy(dev, good);
    assert.equal(j.ok, true);
    assert.deepEqual(j.mismatches, []);
    assert.deepEqual(j.counts, { probes: 18, allowed: 8, denied: 10, passed: 18 });
    assert.deepEqual(
      j.matrices.map((m) => m.kind),
      ["icmp", "tcp/5432", "tcp/5433"],
    );
  });

  it("renders the expected and observed matrices side by side", () => {
    const j = judgePolicy(dev, withOutcome(good, [WEB1, DB, "tcp/5433"], "connected", 12));
    assert.equal(
      renderKindMatrix(j.matrices[2]!),
      [
        "tcp/5433  expected  observed",
        "          1 2 3     1 2 3",
        "#1        - . +     - +*+",
        "#2        . - .     . - .",
        "#3        + . -     + . -",
      ].join("\n"),
    );
    assert.deepEqual(j.matrices[0]!.expected, [
      [null, "deny", "allow"],
      ["deny", null, "deny"],
      ["allow", "deny", null],
    ]);
  });

  it("a denied probe that connects is a mismatch naming the rule that denies it", () => {
    const j = judgePolicy(dev, withOutcome(good, [WEB1, DB, "tcp/5433"], "connected", 12.4));
    assert.equal(j.ok, false);
    assert.equal(j.mismatches.length, 1);
    assert.equal(
      j.mismatches[0]!.message,
      `${WEB1} → ${DB} tcp/5433: expected dropped (no inbound rule of db admits tcp/5433 ` +
        `from ${WEB1} (group web): default deny), but it connected in 12 ms`,
    );
    assert.equal(j.mismatches[0]!.observed?.ms, 12.4);
    assert.equal(j.matrices[2]!.mismatch[0]![1], true);
    assert.equal(j.counts.passed, 17);
  });

  it("an allowed probe that is dropped names both rules that allow it", () => {
    const j = judgePolicy(dev, withOutcome(good, [WEB2, DB, "tcp/5432"], "dropped", 1000));
    assert.equal(
      j.mismatches[0]!.message,
      `${WEB2} → ${DB} tcp/5432: expected to connect (web's default outbound[1] ` +
        `(cidr 0.0.0.0/0) lets it out; groups.db.inbound[1] (group web, tcp 5432) lets it in), ` +
        `but it was dropped (no answer in 1000 ms)`,
    );
  });

  it("an error never passes: a denied probe must be dropped, not refused", () => {
    const refused = withOutcome(good, [DB, WEB1, "tcp/5432"], "error", 1, "connection refused");
    const j = judgePolicy(dev, refused);
    assert.equal(j.ok, false);
    assert.match(j.mismatches[0]!.message, /but it failed after 1 ms: connection refused$/);
    assert.equal(j.matrices[1]!.observed[1]![0], "error");
    const broken = withOutcome(good, [WEB1, WEB2, "icmp"], "error", 7);
    assert.match(judgePolicy(dev, broken).mismatches[0]!.message, /failed after 7 ms$/);
  });

  it("a probe not observed fails and shows as ? ; a stray or repeated observation fails too", () => {
    const missing = judgePolicy(
      dev,
      good.filter((o) => !isProbe(o, WEB2, WEB1, "icmp")),
    );
    assert.equal(missing.ok, false);
    assert.match(missing.mismatches[0]!.message, /but it was not probed$/);
    assert.equal(missing.matrices[0]!.observed[2]![0], "missing");
    assert.match(renderKindMatrix(missing.matrices[0]!), /#3 +\+ \. - +\?\*\. -/);

    const stray: Observation = {
      from: WEB1,
      to: DB,
      proto: "udp",
      port: 53,
      outcome: "dropped",
      ms: 1,
    };
    const extra = judgePolicy(dev, [...good, stray, good[0]!]);
    assert.equal(extra.ok, false);
    assert.deepEqual(extra.mismatches, []);
    assert.deepEqual(extra.unexpected, [stray, good[0]]);
    assert.match(formatPolicyReport(extra), /2 unexpected observations/);
  });

  it("the report lists the endpoints, every kind's matrices and each mismatch", () => {
    const text = formatPolicyReport(
      judgePolicy(dev, withOutcome(good, [DB, WEB2, "icmp"], "connected", 2)),
    );
    const lines = text.split("\n");
    assert.equal(lines[0], "policy: 18 probes (8 allowed, 10 denied): 1 mismatch");
    assert.equal(lines[1], `  #1 ${WEB1} (group web, host-1, 192.168.1.1)`);
    assert.equal(
      lines.filter((l) => /^ {2}(icmp|tcp\/5432|tcp\/5433) +expected/.test(l)).length,
      3,
    );
    assert.equal(
      lines.at(-1),
      `  MISMATCH ${DB} → ${WEB2} icmp: expected dropped (no inbound rule of web admits icmp ` +
        `from ${DB} (group db): default deny), but it connected in 2 ms`,
    );
    assert.match(formatPolicyReport(judgePolicy(dev, good)), /^policy: .*: all as expected$/m);
  });
});

describe("policy judge properties (fast-check)", () => {
  const reaches = modelArb({ maxHosts: 3, maxEndpointsPerHost: 3 }).map(({ model }) =>
    reachability(model),
  );

  it("observations that follow the policy always pass; changing any one fails exactly it", () => {
    fc.assert(
      fc.property(
        reaches,
        fc.nat(),
        fc.constantFrom<Outcome>("connected", "dropped", "error"),
        (reach, pick, outcome) => {
          const good = asExpected(reach);
          assert.equal(judgePolicy(reach, good).ok, true);
          if (reach.probes.length === 0) return;
          const probe: ExpectedProbe = reach.probes[pick % reach.probes.length]!;
          const right = probe.expected === "allow" ? "connected" : "dropped";
          const at: [string, string, string] = [probe.from, probe.to, kindLabel(probe)];
          const j = judgePolicy(reach, withOutcome(good, at, outcome, 5));
          assert.equal(j.ok, outcome === right);
          assert.equal(j.mismatches.length, outcome === right ? 0 : 1);
          if (outcome !== right) assert.ok(j.mismatches[0]!.message.includes(probe.because));
        },
      ),
      { numRuns: 80 },
    );
  });
});
