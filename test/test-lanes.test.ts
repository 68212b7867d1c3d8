// `npm test`'s lanes (scripts/test-files.ts): which file runs where, and that every test file
// of the project is run by one of them, the same set `find` sees.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import {
  laneOf,
  LONGEST_FIRST,
  longestFirst,
  needsPrepared,
  testFiles,
} from "../scripts/test-files.js";

describe("npm test's lanes", () => {
  it("runs every test file once, the set find sees, in sorted order", () => {
    const found = execFileSync(
      "sh",
      ["-c", "find test plugin/test -name '*.test.ts' -o -name '*.conformance.ts' | sort"],
      { encoding: "utf8" },
    )
      .trim()
      .split("\n");
    const files = testFiles();
    assert.deepEqual(files, found);
    assert.ok(files.includes("test/conformance/felix.conformance.ts"));
    assert.ok(files.includes("plugin/test/removal.test.ts"));
  });

  it("puts a file that times something or brings a lab up in the timed lane", () => {
    for (const word of [
      "const t0 = Date.now();",
      "const t = performance.now();",
      "await new Promise((r) => setTimeout(r, 10));",
      "const i = setInterval(f, 5);",
      "await sleep(200);",
      "run(cmd, { timeoutMs: 5000 });",
      'run("ip", ["netns", "add", ns]);',
      "await labUp(opts);",
      "startDockerd(state);",
      'describe("x", { skip: LAB_SKIP }, () => {});',
    ]) {
      assert.equal(laneOf(`import x from "y";\n${word}\n`), "timed", word);
    }
    assert.equal(laneOf('it("renders", () => assert.equal(render(c), "x"));\n'), "quiet");
  });

  it("classifies the project's own files as they are: lane, and the timed ones' order", () => {
    // [file, lane, needs the felix image or the boot root, so runs after the other timed files]
    const expected: [string, "timed" | "quiet", boolean][] = [
      ["test/lab-policy.test.ts", "timed", true],
      ["test/lab-stacks.test.ts", "timed", true],
      ["test/conformance/felix.conformance.ts", "timed", true],
      ["test/felix-image.test.ts", "timed", true],
      ["test/daemon-root.test.ts", "timed", true],
      ["test/host-boot.test.ts", "timed", true],
      ["plugin/test/removal.test.ts", "timed", false],
      ["test/endpoint-race.test.ts", "timed", false],
      ["test/agent.test.ts", "timed", false],
      ["test/render-bird.test.ts", "timed", false],
      ["test/config.test.ts", "quiet", false],
      ["test/model.test.ts", "quiet", false],
      ["test/docs.test.ts", "quiet", false],
    ];
    const seen = expected.map(([f]) => {
      const text = readFileSync(f, "utf8");
      const lane = laneOf(text);
      return [f, lane, lane === "timed" && needsPrepared(text)];
    });
    assert.deepEqual(seen, expected);
  });

  it("starts the longest lab files first, the others after them in path order", () => {
    const order = longestFirst([
      "test/b.test.ts",
      "test/lab-stacks.test.ts",
      "test/a.test.ts",
      "test/conformance/felix.conformance.ts",
      "test/lab-policy.test.ts",
    ]);
    assert.deepEqual(order, [
      "test/conformance/felix.conformance.ts",
      "test/lab-policy.test.ts",
      "test/lab-stacks.test.ts",
      "test/a.test.ts",
      "test/b.test.ts",
    ]);
    // Every name on the list is a lab file of the project, so none is silently left to the end.
    const files = testFiles();
    for (const f of LONGEST_FIRST) {
      assert.ok(files.includes(f), `${f} is a test file`);
      assert.ok(needsPrepared(readFileSync(f, "utf8")), `${f} waits for the felix image`);
    }
    assert.deepEqual(longestFirst(files).slice(0, LONGEST_FIRST.length), LONGEST_FIRST);
  });
});
