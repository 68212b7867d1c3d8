// The lab cache's lock (lab/cache.ts): one maker per entry; a lab that finds another live
// process making it waits, says for whom, and goes on when that process lets go or dies.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { withCacheLock } from "../lab/cache.js";

function holder() {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  return { pid: child.pid!, stop: () => child.kill("SIGKILL") };
}

describe("withCacheLock", () => {
  it("waits for a live holder, says so once, and runs after the holder lets go", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "lab-cache-"));
    const file = path.join(dir, "felix-abc.tar");
    const h = holder();
    try {
      writeFileSync(`${file}.lock`, `${h.pid}\n`);
      const lines: string[] = [];
      let ran = 0;
      const t0 = Date.now();
      setTimeout(() => unlinkSync(`${file}.lock`), 1200);
      const v = await withCacheLock(
        file,
        async () => ++ran,
        (l) => lines.push(l),
      );
      assert.equal(v, 1);
      assert.ok(Date.now() - t0 >= 1200, "it waited for the holder");
      assert.equal(lines.length, 2, lines.join("\n"));
      assert.match(
        lines[0]!,
        new RegExp(`waiting for process ${h.pid}, which is making felix-abc\\.tar`),
      );
      assert.match(lines[1]!, /waited \d+\.\d s for it/);
      assert.equal(existsSync(`${file}.lock`), false, "the lock is let go after fn");
    } finally {
      h.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes over a lock whose holder died, and says nothing when it did not wait", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "lab-cache-"));
    const file = path.join(dir, "base.tar");
    const h = holder();
    try {
      writeFileSync(`${file}.lock`, `${h.pid}\n`);
      const lines: string[] = [];
      setTimeout(h.stop, 700);
      await withCacheLock(
        file,
        async () => {},
        (l) => lines.push(l),
      );
      assert.equal(lines.length, 2, lines.join("\n"));
      const quiet: string[] = [];
      await withCacheLock(
        file,
        async () => {},
        (l) => quiet.push(l),
      );
      assert.deepEqual(quiet, []);
    } finally {
      h.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
