// The lab's process helpers (lab/processes.ts) against real processes, a zombie among them.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { alive, cmdline, killAll } from "../lab/processes.js";
import { sleep } from "../lab/exec.js";

const skip = process.platform !== "linux" ? "reads /proc" : false;
/** The process state letter as `ps` reports it (read apart from the code under test). */
const state = (pid: number) =>
  execFileSync("ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8" })
    .trim()
    .charAt(0);

/** Forks a child that exits at once, prints its pid, and sleeps 5 s without reaping it. */
const NEVER_REAPS =
  "import os, time\n" +
  "pid = os.fork()\n" +
  "if pid == 0:\n" +
  "    os._exit(0)\n" +
  "print(pid, flush=True)\n" +
  "time.sleep(5)\n";

describe("lab process helpers", { skip }, () => {
  it("counts a zombie as gone: it has exited, only its parent has not reaped it", async () => {
    // The forked child exits at once; its parent never waits for it. (A shell parent is not
    // enough: before it execs, a shell may reap a child that exited meanwhile.)
    const parent = spawn("python3", ["-c", NEVER_REAPS], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const [out] = (await once(parent.stdout!, "data")) as [Buffer];
      const zombie = Number(out.toString().trim());
      const deadline = Date.now() + 3000;
      while (state(zombie) !== "Z" && Date.now() < deadline) await sleep(20);
      assert.equal(state(zombie), "Z", "the child is a zombie, still in /proc");
      assert.equal(alive(zombie), false);
      assert.deepEqual(cmdline(zombie), [], "no command line left");
      assert.equal(alive(parent.pid!), true);
      assert.deepEqual(cmdline(parent.pid!).slice(1), ["-c", NEVER_REAPS]);
      const t0 = performance.now();
      await killAll([zombie, parent.pid!], 3000);
      assert.ok(performance.now() - t0 < 2000, "no grace period spent on a zombie");
      assert.equal(alive(parent.pid!), false);
    } finally {
      parent.kill("SIGKILL");
    }
  });

  it("SIGKILLs what ignores SIGTERM once the grace period is over", async () => {
    const stubborn = spawn("sh", ["-c", "trap '' TERM; while :; do sleep 0.05; done"], {
      stdio: "ignore",
    });
    try {
      await sleep(100);
      const t0 = performance.now();
      await killAll([stubborn.pid!], 500);
      const ms = performance.now() - t0;
      assert.ok(ms >= 500, `waited the grace period (${Math.round(ms)} ms)`);
      assert.equal(alive(stubborn.pid!), false);
    } finally {
      stubborn.kill("SIGKILL");
    }
  });
});
