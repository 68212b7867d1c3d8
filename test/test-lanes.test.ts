// `npm test`'s two lanes (scripts/test.ts): which file runs where, and that every test file
// of the project is run by one of them, the same set `find` sees.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { laneOf, needsPrepared, testFiles } from "../scripts/test.js";

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

  it("runs the timed files that need the felix image or the boot root after the others", () => {
    const prepared = (f: string) => needsPrepared(readFileSync(f, "utf8"));
    for (const f of [
      "test/lab-policy.test.ts",
      "test/lab-stacks.test.ts",
      "test/conformance/felix.conformance.ts",
      "test/felix-image.test.ts",
      "test/daemon-root.test.ts",
      "test/host-boot.test.ts",
    ]) {
      assert.equal(prepared(f), true, f);
    }
    for (const f of [
      "plugin/test/removal.test.ts",
      "test/agent.test.ts",
      "test/render-bird.test.ts",
    ]) {
      assert.equal(prepared(f), false, f);
    }
  });

  it("classifies the project's own files as they are", () => {
    const lane = (f: string) => laneOf(readFileSync(f, "utf8"));
    for (const f of [
      "test/lab-policy.test.ts",
      "test/conformance/felix.conformance.ts",
      "plugin/test/removal.test.ts",
      "test/endpoint-race.test.ts",
    ]) {
      assert.equal(lane(f), "timed", f);
    }
    for (const f of ["test/config.test.ts", "test/model.test.ts", "test/docs.test.ts"]) {
      assert.equal(lane(f), "quiet", f);
    }
  });
});
