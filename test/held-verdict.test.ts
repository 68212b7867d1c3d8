// The restart bench's verdict over overlapping probe rounds (bench/lab-policy.ts).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { heldVerdict } from "../bench/lab-policy.js";

const round = (start: number, end?: number, ok?: boolean) => ({ start, end, ok });

describe("heldVerdict", () => {
  it("is the first round after the last failure, proven when all rounds started before it ended passed", () => {
    const done = [round(0, 1500, false), round(300, 1800, true)];
    assert.equal(heldVerdict([...done, round(600)]), undefined, "round 3 began before 2 ended");
    assert.deepEqual(heldVerdict([...done, round(600, 2100, true), round(1900)]), {
      from: 300,
      proven: 2100,
    });
  });

  it("a later failure moves the start past it", () => {
    const rounds = [round(0, 10, true), round(300, 1800, false), round(600, 610, true)];
    assert.deepEqual(heldVerdict(rounds), { from: 600, proven: 610 });
  });

  it("nothing while the first candidate is pending, failed, or an earlier round is unknown", () => {
    assert.equal(heldVerdict([round(0)]), undefined);
    assert.equal(heldVerdict([round(0, 1500, false)]), undefined);
    assert.equal(heldVerdict([round(0), round(300, 310, true)]), undefined);
  });
});
