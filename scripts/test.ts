/**
 * `npm test`: every test file, in two lanes that run side by side.
 *
 *   timed  files that time something or bring a lab, a daemon or a namespace up, one at a
 *          time at normal priority, their output live. As root, the felix image is made from
 *          the start at nice 10 (or found in the lab's cache, or waited for while another
 *          process makes it): the timed files that need neither it nor the boot test's
 *          systemd root run first, beside it, and the others once it is ready.
 *   quiet  every other file (pure logic, rendering, mocks), one at a time at the lowest CPU
 *          priority (`nice -n 19`): they take the cores only when the timed lane leaves them
 *          idle, which it mostly does while it waits for Felix, probes and daemons, so they
 *          add no load to what is timed. Their output is shown when the timed lane is done.
 *
 * A file belongs to the timed lane when its text mentions time (Date.now, performance.now,
 * timers, sleep, a timeout) or the lab (netns, labUp, dockerd, LAB_SKIP): when in doubt, timed.
 * `npm test -- FILE...` runs only those files, in one lane, at normal priority.
 * Exit status: 0 only when both lanes pass.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { withCacheLock } from "../lab/cache.js";

export type Lane = "timed" | "quiet";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const TIMED_WORDS =
  /Date\.now|performance\.now|setTimeout|setInterval|sleep\(|timeout|netns|labUp|dockerd|LAB_SKIP/i;

/**
 * A timed file that needs what is made before it runs: the felix image (a lab with the real
 * Felix, the image itself, the conformance suite) or the boot test's systemd root.
 */
const PREPARED_WORDS = /labUp|FelixImage|felixImage|DaemonRoot|\.conformance|CALICO_SYSTEMD_ROOTFS/;

export function needsPrepared(source: string): boolean {
  return PREPARED_WORDS.test(source);
}

/** The lane of a test file, from its text. */
export function laneOf(source: string): Lane {
  return TIMED_WORDS.test(source) ? "timed" : "quiet";
}

/** Every test file of the project, in the order Node's runner would sort them. */
export function testFiles(root = ROOT): string[] {
  const found: string[] = [];
  const walk = (dir: string, keep: (name: string) => boolean) => {
    for (const d of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, d.name);
      if (d.isDirectory()) walk(rel, keep);
      else if (keep(d.name)) found.push(rel);
    }
  };
  walk("test", (n) => n.endsWith(".test.ts") || n.endsWith(".conformance.ts"));
  walk("plugin/test", (n) => n.endsWith(".test.ts"));
  return found.sort();
}

interface LaneRun {
  lane: Lane;
  files: number;
  code: number;
  seconds: number;
  /** The runner's own summary lines (`# tests 12`, `# pass 12`, ...). */
  summary: Map<string, number>;
}

const SUMMARY = /^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$/;

function readSummary(text: string, into: Map<string, number>): void {
  for (const line of text.split("\n")) {
    const m = SUMMARY.exec(line.trim());
    if (m) into.set(m[1]!, Number(m[2]));
  }
}

const children = new Set<ChildProcess>();

/** Two runs of one lane as one: files, times and summary counts added. */
function joinRuns(a: LaneRun, b: LaneRun): LaneRun {
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

/** Where a lane's output goes: straight to stdout, or kept to be shown later. */
type Sink = (chunk: Buffer | string) => void;
const toStdout: Sink = (c) => process.stdout.write(c);

/** Output kept in memory, and the whole of it. */
function keeper(): { sink: Sink; text: () => string } {
  const kept: Buffer[] = [];
  return {
    sink: (c) => kept.push(Buffer.from(c)),
    text: () => Buffer.concat(kept).toString("utf8"),
  };
}

/** Run Node's test runner on the files; output to `out` (and scanned for its summary). */
function runLane(lane: Lane, files: string[], nice: boolean, out: Sink): Promise<LaneRun> {
  const t0 = performance.now();
  const node = [process.execPath, "--import", "tsx", "--test", "--test-concurrency=1", ...files];
  const [cmd, ...args] = nice ? ["nice", "-n", "19", ...node] : node;
  const child = spawn(cmd!, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const summary = new Map<string, number>();
  let tail = "";
  const scan = (chunk: Buffer) => {
    out(chunk);
    tail = (tail + chunk.toString("utf8")).slice(-4096);
  };
  child.stdout!.on("data", scan);
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

const asRoot = process.platform === "linux" && process.getuid?.() === 0;

/**
 * As root, from the start and in the background at nice 10: the felix image in the lab's
 * cache (`lab image`: found there, waited for while another process makes it, or built),
 * its output kept for when it is awaited. Resolves with whether it is ready.
 */
function startFelixImage(): () => Promise<boolean> {
  if (!asRoot) return () => Promise.resolve(true);
  const t0 = performance.now();
  const log = keeper();
  const child = spawn(
    "nice",
    ["-n", "10", process.execPath, "--import", "tsx", "lab/cli.ts", "image"],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.add(child);
  child.stdout!.on("data", log.sink);
  child.stderr!.on("data", log.sink);
  const ready = new Promise<boolean>((resolve) => {
    child.on("error", () => resolve(false));
    child.on("close", (code) => resolve(code === 0));
  }).then((ok) => {
    children.delete(child);
    return { ok, s: ((performance.now() - t0) / 1000).toFixed(1) };
  });
  return async () => {
    process.stdout.write("# waiting for the felix image (npm run lab -- image, at nice 10) ...\n");
    const { ok, s } = await ready;
    const text = log.text().trim();
    if (!ok || !/\(cached/.test(text)) process.stdout.write(`${text}\n`);
    process.stdout.write(
      ok
        ? `# felix image ready (${s} s after the start)\n`
        : "# the felix image could not be made (above); the lab tests will fail\n",
    );
    return ok;
  };
}

/**
 * `.ci/run` makes the boot test's systemd root (CALICO_SYSTEMD_ROOTFS) in the background,
 * holding `<root>.lock` (its pid) meanwhile: wait until it is done.
 */
async function systemdRootMade(): Promise<void> {
  const root = process.env.CALICO_SYSTEMD_ROOTFS?.trim();
  if (!asRoot || !root) return;
  await withCacheLock(
    root,
    async () => {},
    (l) => process.stdout.write(`#${l}\n`),
  );
}

function describeLane(r: LaneRun): string {
  const n = (k: string) => r.summary.get(k) ?? 0;
  return (
    `# ${r.lane} lane: ${r.files} file(s), ${n("tests")} tests, ${n("pass")} pass, ` +
    `${n("fail")} fail, ${n("cancelled")} cancelled, ${n("skipped")} skipped ` +
    `(${r.seconds.toFixed(0)} s${r.lane === "quiet" ? ", nice 19" : ""})`
  );
}

async function main(argv: string[]): Promise<number> {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      for (const c of children) c.kill(sig);
      process.exit(130);
    });
  }
  if (argv.length > 0) return (await runLane("timed", argv, false, toStdout)).code;
  const files = testFiles();
  const timed = files.filter((f) => laneOf(readFileSync(path.join(ROOT, f), "utf8")) === "timed");
  const quiet = files.filter((f) => !timed.includes(f));
  const quietOut = keeper();
  process.stdout.write(
    `# ${timed.length} timed file(s) one at a time; ${quiet.length} quiet file(s) beside ` +
      "them at nice 19 (shown at the end)\n",
  );
  const quietRun = runLane("quiet", quiet, true, quietOut.sink);
  // Timed files that need neither the felix image nor the boot test's root run first, while
  // those are made beside them; then the rest.
  const felixImage = startFelixImage();
  const first = timed.filter((f) => !needsPrepared(readFileSync(path.join(ROOT, f), "utf8")));
  const rest = timed.filter((f) => !first.includes(f));
  process.stdout.write(`# timed: first ${first.length} file(s) that need no felix image\n`);
  const firstRun = await runLane("timed", first, false, toStdout);
  await felixImage();
  await systemdRootMade();
  process.stdout.write(`# timed: ${rest.length} file(s) with the felix image or the boot root\n`);
  const restRun = await runLane("timed", rest, false, toStdout);
  const timedRun = joinRuns(firstRun, restRun);
  const quietDone = await quietRun;
  process.stdout.write(`\n# ---- quiet lane (nice 19) ----\n${quietOut.text()}`);
  process.stdout.write(`\n${describeLane(timedRun)}\n${describeLane(quietDone)}\n`);
  const failed = [timedRun, quietDone].filter((r) => r.code !== 0);
  process.stdout.write(
    failed.length === 0
      ? "# all tests pass\n"
      : `# FAILED: the ${failed.map((r) => r.lane).join(" and ")} lane\n`,
  );
  return failed.length === 0 ? 0 : 1;
}

if (
  process.argv[1] !== undefined &&
  path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)
) {
  process.exitCode = await main(process.argv.slice(2));
}
