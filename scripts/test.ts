/**
 * `npm test`: every test file, in lanes that run side by side.
 *
 *   timed  files that time something or bring a lab, a daemon or a namespace up. As root,
 *          the felix image is made from the start at nice 10 (or found in the lab's cache,
 *          or waited for while another process makes it). The timed files that need neither
 *          the image nor the boot test's systemd root run one at a time in lane 1, with
 *          their output live, beside that build. The files that need them (the labs) are
 *          taken by lane 2 as soon as the image is ready, longest first, and by lane 1 too
 *          once its own files are done: at nice 5, each in a PID and mount namespace of its
 *          own (scripts/test-run.ts) so that two labs never see each other; a file's output
 *          is shown whole when it ends. They take the CPU time that the files of lane 1 and
 *          the quiet lane leave idle.
 *   quiet  every other file (pure logic, rendering, mocks), one at a time at the lowest CPU
 *          priority (`nice -n 19`): they take the cores only when the timed lanes leave
 *          them idle, so they add no load to what is timed. Their output is shown at the end.
 *
 * A file belongs to the timed lanes when its text mentions time (Date.now, performance.now,
 * timers, sleep, a timeout) or the lab (netns, labUp, dockerd, LAB_SKIP): when in doubt,
 * timed. Not root, or without unshare: the timed files run in one lane, one at a time.
 * `npm test -- FILE...` runs only those files, in one lane, at normal priority.
 * Exit status: 0 only when every lane passes.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { withCacheLock } from "../lab/cache.js";
import { laneOf, longestFirst, needsPrepared, ROOT, testFiles } from "./test-files.js";
import {
  canIsolate,
  children,
  joinRuns,
  keeper,
  runFiles,
  type LaneRun,
  type Sink,
} from "./test-run.js";

/**
 * The labs' CPU priority: under the timed files that run beside them at first (which time
 * shorter things), over the quiet lane.
 */
const LAB_NICE = 5;

const asRoot = process.platform === "linux" && process.getuid?.() === 0;

/** stdout shared by lanes: one streams whole lines, the others write whole blocks between. */
function printer(): { live: Sink; block: (text: string) => void; flush: () => void } {
  let partial = "";
  const write = (s: string) => process.stdout.write(s);
  return {
    live: (c) => {
      const s = partial + c.toString();
      const cut = s.lastIndexOf("\n") + 1;
      if (cut > 0) write(s.slice(0, cut));
      partial = s.slice(cut);
    },
    block: (text) => write(text.endsWith("\n") ? text : `${text}\n`),
    flush: () => {
      if (partial !== "") write(`${partial}\n`);
      partial = "";
    },
  };
}

/**
 * As root, from the start and in the background at nice 10: the felix image in the lab's
 * cache (`lab image`: found there, waited for while another process makes it, or built),
 * its output kept for when it is awaited. Resolves with whether it is ready.
 */
function startFelixImage(say: (text: string) => void): () => Promise<boolean> {
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
    const { ok, s } = await ready;
    const text = log.text().trim();
    say(
      (!ok || !/\(cached/.test(text) ? `${text}\n` : "") +
        (ok
          ? `# felix image ready (${s} s after the start)`
          : "# the felix image could not be made (above); the lab tests will fail"),
    );
    return ok;
  };
}

/**
 * `.ci/run` makes the boot test's systemd root (CALICO_SYSTEMD_ROOTFS) in the background,
 * holding `<root>.lock` (its pid) meanwhile: wait until it is done.
 */
async function systemdRootMade(say: (text: string) => void): Promise<void> {
  const root = process.env.CALICO_SYSTEMD_ROOTFS?.trim();
  if (!asRoot || !root) return;
  await withCacheLock(
    root,
    async () => {},
    (l) => say(`#${l}`),
  );
}

function describeRun(label: string, r: LaneRun, note: string): string {
  const n = (k: string) => r.summary.get(k) ?? 0;
  return (
    `# ${label}: ${r.files} file(s), ${n("tests")} tests, ${n("pass")} pass, ` +
    `${n("fail")} fail, ${n("cancelled")} cancelled, ${n("skipped")} skipped (${note})`
  );
}

const EMPTY = (lane: string): LaneRun => ({
  lane,
  files: 0,
  code: 0,
  seconds: 0,
  summary: new Map(),
});

/**
 * One lane's share of the prepared files: it takes the next from the queue until none is
 * left, each isolated, and shows each file's output whole when it ends.
 */
async function drain(lane: string, queue: string[], block: (t: string) => void) {
  let total = EMPTY(lane);
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    block(`# ${lane}: ${file} ...`);
    const out = keeper();
    const r = await runFiles(lane, [file], { nice: LAB_NICE, isolate: true }, out.sink);
    block(
      `# ---- ${lane}: ${file} (${r.seconds.toFixed(0)} s, ` +
        `${r.code === 0 ? "pass" : "FAIL"}) ----\n${out.text()}`,
    );
    total = joinRuns(total, r);
  }
  return total;
}

/** The timed files: lane 1's own first, then the prepared ones shared by two lanes. */
async function timedLanes(first: string[], rest: string[]): Promise<LaneRun> {
  const out = printer();
  const felixImage = startFelixImage(out.block);
  const prepared = (async () => {
    const ok = await felixImage();
    await systemdRootMade(out.block);
    return ok;
  })();
  if (!canIsolate()) {
    out.block(`# timed: first ${first.length} file(s) that need no felix image`);
    const firstRun = await runFiles("timed", first, {}, out.live);
    await prepared;
    out.block(`# timed: ${rest.length} file(s) with the felix image or the boot root`);
    return joinRuns(firstRun, await runFiles("timed", rest, {}, out.live));
  }
  const queue = longestFirst(rest);
  out.block(
    `# timed lane 1: ${first.length} file(s) that need no felix image; lane 2 takes the ` +
      `${queue.length} that do once it is ready, and lane 1 joins it when its own are done`,
  );
  const lane1 = (async () => {
    const own = await runFiles("lane 1", first, {}, out.live);
    out.flush();
    await prepared;
    return joinRuns(own, await drain("lane 1", queue, out.block));
  })();
  const lane2 = prepared.then(() => drain("lane 2", queue, out.block));
  const [a, b] = await Promise.all([lane1, lane2]);
  return { ...joinRuns(a, b), lane: "timed" };
}

async function main(argv: string[]): Promise<number> {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      for (const c of children) c.kill(sig);
      process.exit(130);
    });
  }
  if (argv.length > 0)
    return (await runFiles("timed", argv, {}, (c) => process.stdout.write(c))).code;
  const t0 = performance.now();
  const files = testFiles();
  const text = (f: string) => readFileSync(path.join(ROOT, f), "utf8");
  const timed = files.filter((f) => laneOf(text(f)) === "timed");
  const quiet = files.filter((f) => !timed.includes(f));
  const quietOut = keeper();
  process.stdout.write(
    `# ${timed.length} timed file(s); ${quiet.length} quiet file(s) beside them at nice 19 ` +
      "(shown at the end)\n",
  );
  const quietRun = runFiles("quiet", quiet, { nice: 19 }, quietOut.sink);
  const first = timed.filter((f) => !needsPrepared(text(f)));
  const rest = timed.filter((f) => !first.includes(f));
  const timedRun = await timedLanes(first, rest);
  const timedWall = (performance.now() - t0) / 1000;
  const quietDone = await quietRun;
  process.stdout.write(`\n# ---- quiet lane (nice 19) ----\n${quietOut.text()}`);
  process.stdout.write(
    `\n${describeRun("timed lanes", timedRun, `done ${timedWall.toFixed(0)} s after the start`)}\n` +
      `${describeRun("quiet lane", quietDone, `${quietDone.seconds.toFixed(0)} s, nice 19`)}\n`,
  );
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
