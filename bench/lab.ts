/**
 * `npm run bench:lab` (root): time from `up` to a full ping matrix for 2 hosts x 3 endpoints
 * and 10 hosts x 50 endpoints (BGP full mesh), beside raw BIRD convergence measured in the
 * same run (from BIRD's start to all sessions Established and all routes present: the floor).
 *
 *   npm run bench:lab [-- --sizes 2x3,10x50] [--pinger fping|ping] [--verbose]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { labCheck } from "../lab/check.js";
import { labDown, labUp } from "../lab/lab.js";
import { benchConfig, parseSizes, type Size } from "./sizes.js";

const s = (ms: number | undefined) => (ms === undefined ? "  n/a" : `${(ms / 1000).toFixed(2)} s`);

async function bench(size: Size, pinger: "fping" | "ping" | undefined) {
  const stack = `bench-${size.hosts}x${size.endpoints}`;
  const stateRoot = mkdtempSync(path.join(tmpdir(), "lab-bench-"));
  const log = verbose ? (l: string) => process.stderr.write(`    ${l}\n`) : undefined;
  const opts = { stack, stateRoot, config: benchConfig(size), ...(log ? { log } : {}) };
  try {
    const t0 = performance.now();
    const up = await labUp(opts);
    const report = await labCheck({ ...opts, timeoutMs: 120_000, ...(pinger ? { pinger } : {}) });
    const total = performance.now() - t0;
    const tDown = performance.now();
    await labDown(opts);
    const down = performance.now() - tDown;
    const bgp = report.timings.bgpEstablished?.sinceStartMs;
    const routes = report.timings.allRoutes?.sinceStartMs;
    const n = size.hosts * size.endpoints;
    console.log(
      [
        `${size.hosts} hosts x ${size.endpoints} endpoints (${n} endpoints, ${size.hosts + n + 1} namespaces, ` +
          `${report.matrix.pairs} pairs, ${report.matrix.pinger}): ${report.ok ? "OK" : "FAILED"}`,
        `  up (namespaces, scripts, BIRD start)      ${s(up.durationMs)}`,
        `  BIRD start -> all sessions Established    ${s(bgp)}`,
        `  BIRD start -> all routes present          ${s(routes)}   <- the floor`,
        `  ping matrix                               ${s(report.matrix.durationMs)}`,
        `  up start -> full matrix                   ${s(total)}`,
        `  down                                      ${s(down)}`,
        `  up-to-matrix / BIRD convergence           ${
          routes ? (total / routes).toFixed(2) : "n/a"
        }x`,
        `  matrix pairs per second                   ${Math.round(
          report.matrix.pairs / (report.matrix.durationMs / 1000),
        )}`,
      ].join("\n"),
    );
    if (!report.ok)
      console.log(
        report.problems
          .slice(0, 10)
          .map((p) => `  ! ${p}`)
          .join("\n"),
      );
    return report.ok;
  } finally {
    await labDown(opts).catch(() => {});
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes = parseSizes(arg("--sizes") ?? "2x3,10x50");
const pingerArg = arg("--pinger");
const verbose = args.includes("--verbose");
if (pingerArg !== undefined && pingerArg !== "fping" && pingerArg !== "ping") {
  throw new Error(`--pinger must be fping or ping, got ${JSON.stringify(pingerArg)}`);
}
if (process.getuid?.() !== 0) {
  console.error("bench:lab needs root (network namespaces, BIRD): sudo npm run bench:lab");
  process.exit(1);
}
let ok = true;
for (const size of sizes) ok = (await bench(size, pingerArg)) && ok;
process.exitCode = ok ? 0 : 1;
