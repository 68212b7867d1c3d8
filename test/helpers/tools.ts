/**
 * Real tools on rendered text: `bird -p -c` (BIRD 1.x parse check), `shellcheck`, and
 * network namespaces for tests that run scripts for real (root only).
 *
 *   birdParse(text)            -> { ok, output }   BIRD's verdict on a bird.conf
 *   shellcheck(texts)          -> { ok, output }   one shellcheck run over many scripts
 *   hasCommand(name)           -> boolean          is a tool on PATH
 *   canUseNetns()              -> string | undefined   why namespace tests must skip
 *   withNetns(names, fn)       creates the namespaces, runs fn, deletes them in `finally`
 *   run(cmd, args, opts)       spawnSync with text output; never throws
 *   expectOk(result, what)     throws with the output unless the command exited 0
 *
 * Name namespaces after your test file (e.g. `cdr-` for render tests) so parallel test
 * files never clash.
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const BIRD_BIN = process.env.BIRD_BIN ?? "/usr/sbin/bird";

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr together. */
  output: string;
}

/**
 * A guard against a hung tool, not a measure of speed: the quiet lane runs at nice 19 beside
 * two lab lanes and gets a few percent of a core, so one shellcheck run over three hosts'
 * scripts (about 1.5 CPU-s) has taken more than a minute there.
 */
const TOOL_TIMEOUT_MS = 10 * 60_000;

export function run(cmd: string, args: readonly string[], opts: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: TOOL_TIMEOUT_MS, ...opts });
  const stdout = String(r.stdout ?? "");
  const stderr = String(r.stderr ?? "") + (r.error ? String(r.error) : "");
  return { status: r.status, stdout, stderr, output: stdout + stderr };
}

export function hasCommand(name: string): boolean {
  return run("sh", ["-c", `command -v "$1"`, "sh", name]).status === 0;
}

function withTempFiles<T>(texts: readonly string[], suffix: string, fn: (paths: string[]) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "calico-render-"));
  try {
    const paths = texts.map((t, i) => {
      const p = join(dir, `file-${i}${suffix}`);
      writeFileSync(p, t);
      return p;
    });
    return fn(paths);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `bird -p -c FILE`: ok when BIRD accepts the configuration. */
export function birdParse(text: string): { ok: boolean; output: string } {
  return withTempFiles([text], ".conf", ([file]) => {
    const r = run(BIRD_BIN, ["-p", "-c", file!]);
    return { ok: r.status === 0, output: r.output.trim() };
  });
}

/** One `shellcheck` run over every text (bash dialect read from the shebang). */
export function shellcheck(texts: readonly string[]): { ok: boolean; output: string } {
  if (texts.length === 0) return { ok: true, output: "" };
  return withTempFiles(texts, ".sh", (files) => {
    const r = run("shellcheck", ["--external-sources", ...files]);
    return { ok: r.status === 0, output: r.output.trim() };
  });
}

/** Undefined when this process may create network namespaces; else the reason it may not. */
export function canUseNetns(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root";
  if (!hasCommand("ip")) return "iproute2 (ip) is not installed";
  const probe = `cdr-probe-${process.pid}`;
  const r = run("ip", ["netns", "add", probe]);
  if (r.status !== 0) return `cannot create a network namespace: ${r.output.trim()}`;
  run("ip", ["netns", "del", probe]);
  return undefined;
}

/** Run a command inside a named namespace. */
export function inNetns(
  ns: string,
  cmd: string,
  args: readonly string[],
  opts: SpawnSyncOptions = {},
): RunResult {
  return run("ip", ["netns", "exec", ns, cmd, ...args], opts);
}

/**
 * Create the named namespaces (deleting leftovers of a crashed run first), run `fn`,
 * and delete them afterwards whatever happens.
 */
export async function withNetns<T>(names: readonly string[], fn: () => T | Promise<T>): Promise<T> {
  for (const n of names) {
    if (!/^[a-z]{2,8}-[A-Za-z0-9_.-]+$/.test(n) || n.length > 40) {
      throw new Error(`namespace name ${n} must start with a test prefix like cdr-`);
    }
  }
  const created: string[] = [];
  try {
    for (const n of names) {
      run("ip", ["netns", "del", n]);
      const r = run("ip", ["netns", "add", n]);
      if (r.status !== 0) throw new Error(`ip netns add ${n}: ${r.output}`);
      created.push(n);
    }
    return await fn();
  } finally {
    for (const n of created.reverse()) run("ip", ["netns", "del", n]);
  }
}

/** Assert that a command exited 0, showing its output when it did not; returns the result. */
export function expectOk(r: RunResult, what: string): RunResult {
  if (r.status !== 0) {
    throw new Error(`${what} failed (exit ${String(r.status)}):\n${r.output}`);
  }
  return r;
}
