/**
 * How long the real program (index.ts) takes to build its resource graph under Pulumi mocks,
 * for 10, 100 and 1,000 endpoints on 10 GCE hosts, and how that grows.
 *
 *   npm run bench:program                 # source maps off (see below)
 *   npm run bench:program -- --source-maps
 *
 * Each size runs in its own child process (Pulumi mocks are per process). The Pulumi SDK
 * captures a stack trace for every output property of every resource; with tsx's source
 * maps on (as under `pulumi up`) formatting them dominates, so both modes can be measured.
 */
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const HOSTS = 10;
const SIZES = [10, 100, 1000];

interface Result {
  endpoints: number;
  resources: number;
  ms: number;
  heapMb: number;
}

async function child(endpoints: number, sourceMaps: boolean): Promise<void> {
  if (!sourceMaps) process.setSourceMapsEnabled(false);
  const { installMocks, syntheticStack, valueOf } = await import("../test/program-mocks.js");
  const world = await installMocks(syntheticStack(HOSTS, endpoints), {
    stack: `bench-${endpoints}`,
  });
  // Load the SDKs and components first (seconds of module loading), then time the program.
  await import("../components/cluster.js");
  const start = performance.now();
  const program = await import("../index.js");
  await valueOf(program.endpoints);
  await world.settle();
  const ms = performance.now() - start - 100; // settle() waits ~100 ms of quiet
  world.cleanup();
  const result: Result = {
    endpoints,
    resources: world.resources.length,
    ms,
    heapMb: process.memoryUsage().heapUsed / 2 ** 20,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function parent(sourceMaps: boolean): void {
  const self = fileURLToPath(import.meta.url);
  console.log(
    `Building the resource graph of index.ts under mocks, ${HOSTS} hosts (source maps ${sourceMaps ? "on" : "off"}):`,
  );
  console.log("endpoints  resources   time (s)  ms/resource  heap (MB)");
  const results: Result[] = [];
  for (const n of SIZES) {
    const args = [
      "--import",
      "tsx",
      self,
      "--child",
      String(n),
      ...(sourceMaps ? ["--source-maps"] : []),
    ];
    const run = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 26 });
    const line = run.stdout.trim().split("\n").pop() ?? "";
    if (run.status !== 0 || !line.startsWith("{")) {
      console.error(run.stderr);
      throw new Error(`child for ${n} endpoints failed (exit ${run.status})`);
    }
    const r = JSON.parse(line) as Result;
    results.push(r);
    console.log(
      `${String(r.endpoints).padStart(9)}  ${String(r.resources).padStart(9)}  ${(r.ms / 1000).toFixed(2).padStart(9)}  ${(r.ms / r.resources).toFixed(2).padStart(11)}  ${r.heapMb.toFixed(0).padStart(9)}`,
    );
  }
  console.log("\nGrowth from one size to the next (time ratio vs resource ratio; equal = linear):");
  for (let i = 1; i < results.length; i++) {
    const a = results[i - 1]!;
    const b = results[i]!;
    console.log(
      `  ${a.endpoints} -> ${b.endpoints} endpoints: time x${(b.ms / a.ms).toFixed(2)}, resources x${(b.resources / a.resources).toFixed(2)}`,
    );
  }
}

const argv = process.argv.slice(2);
const sourceMaps = argv.includes("--source-maps");
const at = argv.indexOf("--child");
if (at >= 0) await child(Number(argv[at + 1]), sourceMaps);
else parent(sourceMaps);
