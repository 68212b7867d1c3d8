/**
 * One size of `bench:render`'s endpoint series, in a process of its own (started by
 * bench/render.ts with `--expose-gc`): nothing another size allocated or left to collect
 * weighs on it. Prints one JSON line: per-call times of `renderAll` and of validate+model.
 *
 * Usage: node --expose-gc --import tsx bench/render-worker.ts <hosts> <endpoints> <runs>
 */
import { performance } from "node:perf_hooks";
import { loadConfig } from "../components/config.js";
import { buildModel } from "../components/model.js";
import { renderAll } from "../components/render/index.js";
import { stack } from "./render-stack.js";

const gcFn = (globalThis as { gc?: () => void }).gc;
if (gcFn === undefined) throw new Error("run with node --expose-gc");
const gc: () => void = gcFn;

const [hosts, endpoints, runs] = process.argv.slice(2).map(Number) as [number, number, number];
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Wall and CPU time of single calls, each after a full collection, so that every size
 * measures the same thing: one render from a clean heap, its own garbage included.
 */
function time(fn: () => unknown): { wall: number[]; cpu: number[] } {
  const t0 = performance.now();
  fn();
  const first = Math.max(performance.now() - t0, 0.01);
  // Warm-up: optimised code (compiled on V8's background threads, whose CPU time would
  // count) and a heap sized for this work in place before anything is timed.
  for (let i = 0; i < Math.min(50, Math.ceil(300 / first)); i++) fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < runs; r++) {
    gc(); // no collection owed by the run before
    const w0 = performance.now();
    const c0 = cpuMs();
    fn();
    cpu.push(cpuMs() - c0);
    wall.push(performance.now() - w0);
  }
  return { wall, cpu };
}

const raw = stack(hosts, endpoints);
const model = buildModel(loadConfig(raw));
const modelT = time(() => buildModel(loadConfig(raw)));
const renderT = time(() => renderAll(model));
console.log(JSON.stringify({ endpoints, model: modelT, render: renderT }));
