// lab/exec.ts's `run`, which every lab command goes through: output, exit codes, input, the
// time limit and the output limit, and a stdin that is never a socket. The last one is what
// keeps the user's ~/.bashrc out of the lab's bash commands (a bounded one, `timeout N bash
// -c ...`, would run out of its time): bash reads ~/.bashrc when its stdin is a socket and
// SHLVL is unset, as under `sudo`. The control case shows that this bash does so.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CommandError, run } from "../lab/exec.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** A HOME whose .bashrc leaves a marker file; the environment of a bash started by sudo. */
function rcHome(): { env: NodeJS.ProcessEnv; marker: string; done: () => void } {
  const home = mkdtempSync(path.join(tmpdir(), "lab-exec-"));
  const marker = path.join(home, "bashrc-was-read");
  writeFileSync(path.join(home, ".bashrc"), `touch '${marker}'\n`);
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env.SHLVL;
  delete env.BASH_ENV;
  return { env, marker, done: () => rmSync(home, { recursive: true, force: true }) };
}

describe("lab commands (run)", () => {
  it("never lets bash read the user's ~/.bashrc, even with SHLVL unset", async () => {
    const h = rcHome();
    try {
      // Control: Node's default stdin (a socket) and no SHLVL make this bash read it.
      await new Promise<void>((resolve, reject) =>
        execFile("bash", ["-c", "true"], { env: h.env }, (e) => (e ? reject(e) : resolve())),
      );
      assert.ok(existsSync(h.marker), "control: bash read ~/.bashrc with a socket on stdin");
      rmSync(h.marker);
      const r = await run("bash", ["-c", 'exec 3<>/dev/null; echo "$0"', "probe"], {
        env: h.env,
      });
      assert.equal(r.stdout, "probe\n");
      assert.equal(existsSync(h.marker), false, "run's bash read ~/.bashrc");
    } finally {
      h.done();
    }
  });

  it("writes its input to the command's stdin", async () => {
    const r = await run("cat", [], { input: "route replace 192.168.1.1/32 dev tap0\n" });
    assert.equal(r.stdout, "route replace 192.168.1.1/32 dev tap0\n");
  });

  it("rejects a bad exit with the command and what it printed; okCodes accepts it", async () => {
    const argv = ["-c", "echo 'no such device' >&2; exit 3"];
    await assert.rejects(run("sh", argv), (e: unknown) => {
      assert.ok(e instanceof CommandError);
      assert.equal(e.code, 3);
      assert.match(e.message, /`sh -c .*` failed \(exit 3\):\n {4}no such device/);
      return true;
    });
    const r = await run("sh", argv, { okCodes: [3] });
    assert.deepEqual([r.code, r.stderr], [3, "no such device\n"]);
  });

  it("kills a command at its time limit", async () => {
    const t0 = performance.now();
    await assert.rejects(run("sleep", ["30"], { timeoutMs: 300 }), (e: unknown) => {
      assert.ok(e instanceof CommandError);
      assert.equal(e.code, -1);
      return true;
    });
    assert.ok(performance.now() - t0 < 10_000, "killed long before sleep 30 ended");
  });

  it("kills a command that prints more than 64 MiB, and says so", async () => {
    await assert.rejects(run("head", ["-c", "70000000", "/dev/zero"]), (e: unknown) => {
      assert.ok(e instanceof CommandError);
      assert.match(e.stderr, /killed: more than 67108864 bytes of output/);
      return true;
    });
  });

  it("names a command that is not installed, and keeps no timer alive for it", async () => {
    await assert.rejects(run("calico-lab-no-such-tool", []), {
      message: "`calico-lab-no-such-tool` is not installed (or not on PATH)",
    });
    // A process that only tried it exits at once, not when the 120 s time limit would end.
    const code =
      'import { run } from "./lab/exec.ts";\n' +
      'await run("calico-lab-no-such-tool", []).catch((e) => console.log(e.message));\n';
    const t0 = performance.now();
    const r = await new Promise<{ out: string; exit: number | null }>((resolve, reject) =>
      execFile(
        process.execPath,
        ["--import", "tsx", "--input-type=module", "-e", code],
        { cwd: root, timeout: 60_000 },
        (e, out) => (e && e.killed ? reject(e) : resolve({ out, exit: e ? 1 : 0 })),
      ),
    );
    assert.deepEqual(r, {
      out: "`calico-lab-no-such-tool` is not installed (or not on PATH)\n",
      exit: 0,
    });
    assert.ok(performance.now() - t0 < 20_000, "the process exited once its work was done");
  });
});
