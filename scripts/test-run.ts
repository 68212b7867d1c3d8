/**
 * How `npm test` (scripts/test.ts) runs test files: Node's test runner on a list of files,
 * at a CPU priority, optionally in a PID and mount namespace of its own, its output sent on
 * or kept, its summary counts read back.
 *
 * Isolated (root, with util-linux's unshare): the runner is PID 1's child in a new PID
 * namespace (/proc shows its own processes only) with a private mount namespace whose
 * /run/netns is an empty tmpfs (`ip netns` names are its own). Two labs of the same stack can
 * then run at once without seeing each other's namespaces, daemons or processes, and every
 * process the file leaves is killed when its namespace ends. bash stays PID 1, not exec'd
 * away, so that it reaps the orphans a lab's detached processes become.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { ROOT } from "./test-files.js";

export interface LaneRun {
  lane: string;
  files: number;
  code: number;
  seconds: number;
  /** The runner's own summary lines (`# tests 12`, `# pass 12`, ...). */
  summary: Map<string, number>;
}

/** Where output goes: straight to stdout, or kept to be shown later. */
export type Sink = (chunk: Buffer | string) => void;

export interface RunOptions {
  /** `nice -n` for the runner and everything it starts (0: as this process). */
  nice?: number;
  /** In a PID and mount namespace of its own (see above). */
  isolate?: boolean;
}

const SUMMARY = /^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$/;

/** Every process a lane started, to be stopped with it. */
export const children = new Set<ChildProcess>();

const ISOLATE = [
  "unshare",
  "--pid",
  "--fork",
  "--kill-child",
  "--mount-proc",
  "--propagation",
  "private",
  "--",
  "bash",
  "-c",
  'mkdir -p /run/netns && mount -t tmpfs -o mode=0755 npm-test-netns /run/netns || exit 1; "$@"; rc=$?; exit "$rc"',
  "isolated",
];

/** True when files can be isolated here: root on Linux, with unshare. */
export function canIsolate(): boolean {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return false;
  return spawnSync("unshare", ["--help"], { stdio: "ignore" }).status === 0;
}

export function readSummary(text: string, into: Map<string, number>): void {
  for (const line of text.split("\n")) {
    const m = SUMMARY.exec(line.trim());
    if (m) into.set(m[1]!, Number(m[2]));
  }
}

/** Two runs as one: files, times and summary counts added. */
export function joinRuns(a: LaneRun, b: LaneRun): LaneRun {
  const summary = new Map(a.summary);
  for (const [k, v] of b.summary) summary.set(k, (summary.get(k) ?? 0) + v);
  return {
    lane: a.lane,
    files: a.files + b.files,
    code: a.code !== 0 ? a.code : b.code,
    seconds: a.seconds + b.seconds,
    summary,
  };
}

/** Output kept in memory, and the whole of it. */
export function keeper(): { sink: Sink; text: () => string } {
  const kept: Buffer[] = [];
  return {
    sink: (c) => kept.push(Buffer.from(c)),
    text: () => Buffer.concat(kept).toString("utf8"),
  };
}

/** The command line that runs Node's test runner on the files with these options. */
export function runnerArgv(files: readonly string[], opts: RunOptions): string[] {
  const node = [process.execPath, "--import", "tsx", "--test", "--test-concurrency=1", ...files];
  const isolated = opts.isolate ? [...ISOLATE, ...node] : node;
  return opts.nice ? ["nice", "-n", String(opts.nice), ...isolated] : isolated;
}

/** Run Node's test runner on the files; output to `out` (and scanned for its summary). */
export function runFiles(
  lane: string,
  files: readonly string[],
  opts: RunOptions,
  out: Sink,
): Promise<LaneRun> {
  const t0 = performance.now();
  const [cmd, ...args] = runnerArgv(files, opts);
  // A runner started from inside a test reports to its parent in Node's own format, not TAP.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(cmd!, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const summary = new Map<string, number>();
  let tail = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    out(chunk);
    tail = (tail + chunk.toString("utf8")).slice(-4096);
  });
  child.stderr!.on("data", out);
  return new Promise((resolve) => {
    const done = (code: number) => {
      children.delete(child);
      readSummary(tail, summary);
      const seconds = (performance.now() - t0) / 1000;
      resolve({ lane, files: files.length, code, seconds, summary });
    };
    child.on("error", (e) => {
      out(`cannot run the ${lane} lane: ${e.message}\n`);
      done(1);
    });
    child.on("close", (code, signal) => done(code ?? (signal ? 1 : 0)));
  });
}
