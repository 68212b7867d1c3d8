// How npm test runs a lab file (scripts/test-run.ts): isolated in a PID and mount namespace
// of its own, two at once each make a network namespace of the same name, neither sees the
// other's or this process, and what a file leaves running is killed with its namespace.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { run } from "../lab/exec.js";
import { canIsolate, keeper, runFiles, runnerArgv } from "../scripts/test-run.js";

const SKIP = canIsolate() ? false : "needs root and util-linux's unshare";

/** Processes of the whole machine whose command line holds `marker`. */
function withMarker(marker: string): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return readFileSync(`/proc/${e}/cmdline`, "utf8").includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/**
 * A test file in `dir` that makes netns `name`, writes what it saw beside itself, and leaves
 * a `sleep` holding `marker` running.
 */
function probeFile(dir: string, name: string, marker: string): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "probe.test.mjs");
  writeFileSync(
    file,
    `import { test } from "node:test";
import { execFileSync, spawn } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
test("isolated", () => {
  const before = readdirSync("/run/netns");
  execFileSync("ip", ["netns", "add", ${JSON.stringify(name)}]);
  const pids = readdirSync("/proc").filter((e) => /^\\d+$/.test(e)).map(Number);
  spawn("sleep", ["300", ${JSON.stringify(marker)}], { detached: true, stdio: "ignore" }).unref();
  writeFileSync(${JSON.stringify(`${file}.json`)}, JSON.stringify({ before, pids }));
});
`,
  );
  return file;
}

describe("npm test's isolated files", { skip: SKIP }, () => {
  it("have namespaces of their own: one netns name twice at once, no other process, nothing left", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "test-run-"));
    const outside = `npmtest-outside-${process.pid}`;
    const marker = `npmtest-left-${process.pid}`;
    await run("ip", ["netns", "add", outside]);
    try {
      const files = ["a", "b"].map((d) => probeFile(path.join(dir, d), "npmtest-same", marker));
      const outs = files.map(() => keeper());
      const runs = await Promise.all(
        files.map((f, i) => runFiles("probe", [f], { isolate: true, nice: 5 }, outs[i]!.sink)),
      );
      for (const [i, r] of runs.entries()) {
        assert.equal(r.code, 0, outs[i]!.text());
        assert.equal(r.summary.get("pass"), 1);
        const seen = JSON.parse(readFileSync(`${files[i]}.json`, "utf8")) as {
          before: string[];
          pids: number[];
        };
        assert.deepEqual(seen.before, [], "its /run/netns starts empty");
        assert.ok(seen.pids.includes(1), "a PID namespace of its own (a PID 1 of its own)");
        assert.ok(seen.pids.length < 10, `it sees only its own processes: ${seen.pids.join(" ")}`);
      }
      assert.deepEqual(withMarker(marker), [], "the sleeps they left were killed");
      const ours = (await run("ip", ["netns", "list"])).stdout;
      assert.match(ours, new RegExp(outside));
      assert.doesNotMatch(ours, /npmtest-same/, "their namespaces are not ours");
    } finally {
      await run("ip", ["netns", "del", outside]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs under nice and unshare only when asked", () => {
    const plain = runnerArgv(["a.test.ts"], {});
    assert.equal(plain[0], process.execPath);
    assert.ok(plain.includes("a.test.ts"));
    const both = runnerArgv(["a.test.ts"], { nice: 5, isolate: true });
    assert.deepEqual(both.slice(0, 4), ["nice", "-n", "5", "unshare"]);
    assert.ok(both.includes("--pid") && both.includes("--mount-proc"));
  });
});
