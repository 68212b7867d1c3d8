/**
 * Running the tools the lab drives (ip, nsenter, bash, birdc, ping), with errors that say
 * which command failed and what it printed, and a bounded-concurrency pool.
 */
import { spawn } from "node:child_process";
import { spawnCollect } from "../status/transport.js";

export class CommandError extends Error {
  constructor(
    public readonly argv: string[],
    public readonly code: number | null,
    public readonly stdout: string,
    public readonly stderr: string,
  ) {
    const detail = (stderr.trim() || stdout.trim()).split("\n").slice(-6).join("\n    ");
    super(
      `\`${argv.join(" ")}\` failed (exit ${code ?? "signal"})${detail ? `:\n    ${detail}` : ""}`,
    );
    this.name = "CommandError";
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Text written to the command's stdin. */
  input?: string;
  /** Exit codes that are not an error (default: only 0). */
  okCodes?: number[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Output kept, stdout and stderr together; a command printing more is killed and fails. */
const MAX_OUTPUT = 64 * 1024 * 1024;

/**
 * Run a command; resolves with its output, rejects with a CommandError on a bad exit code, a
 * time limit or too much output. It runs through status/'s spawnCollect, whose stdin is
 * /dev/null unless there is input: never a socket, on which bash reads the user's ~/.bashrc
 * when SHLVL is unset (as under `sudo`). A root .bashrc that initialises a toolchain can take
 * seconds, enough to run a bounded command (bash under `timeout`) out of its time.
 */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await spawnCollect(
    cmd,
    args,
    opts.timeoutMs ?? 120_000,
    opts.env ?? process.env,
    MAX_OUTPUT,
    opts.input,
  );
  // Killed (the time limit, too much output): -1, never an accepted code.
  const code = r.timedOut || r.truncated ? -1 : r.code;
  if (code === 0 || (opts.okCodes ?? []).includes(code)) {
    return { code, stdout: r.stdout, stderr: r.stderr };
  }
  const stderr = r.truncated
    ? `${r.stderr}\n(killed: more than ${MAX_OUTPUT} bytes of output)`
    : r.stderr;
  throw new CommandError([cmd, ...args], code, r.stdout, stderr);
}

/** The path of a named network namespace. */
export function netnsPath(ns: string): string {
  return `/var/run/netns/${ns}`;
}

/**
 * Run a command inside a named network namespace with `nsenter --net=...` (the mount
 * namespace stays the host's, so nothing holds copies of other namespaces' mounts).
 */
export function runIn(ns: string, cmd: string, args: string[], opts: RunOptions = {}) {
  return run("nsenter", [`--net=${netnsPath(ns)}`, "--", cmd, ...args], opts);
}

/** `ip -batch -` in a namespace: many iproute2 commands for the price of one process. */
export async function ipBatch(ns: string | undefined, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  const args = ns === undefined ? ["-batch", "-"] : ["-n", ns, "-batch", "-"];
  await run("ip", args, { input: lines.join("\n") + "\n" });
}

/** Map over items with at most `limit` in flight; results in input order. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Like pool, but every item runs even when some fail; the failures are returned. */
export async function poolSettled<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<{ item: T; error: Error }[]> {
  const failures: { item: T; error: Error }[] = [];
  await pool(items, limit, async (item) => {
    try {
      await fn(item);
    } catch (e) {
      failures.push({ item, error: e instanceof Error ? e : new Error(String(e)) });
    }
  });
  return failures;
}

/** Start a long-running process detached from us, output to an open file descriptor. */
export function spawnDetached(
  cmd: string,
  args: string[],
  logFd: number,
  opts: { cwd?: string } = {},
): number {
  const child = spawn(cmd, args, { detached: true, stdio: ["ignore", logFd, logFd], ...opts });
  if (child.pid === undefined) throw new Error(`could not start \`${cmd} ${args.join(" ")}\``);
  child.unref();
  return child.pid;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Which of the given tools are missing from PATH. */
export async function missingTools(tools: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const t of tools) {
    try {
      await run("sh", ["-c", 'command -v "$1"', "sh", t]);
    } catch {
      missing.push(t);
    }
  }
  return missing;
}
