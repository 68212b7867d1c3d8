/**
 * The Felix part of the floor of `up` -> policy matrix (bench/lab.ts): what Felix and the ACL
 * Manager take to program a lab's endpoints when the plugin hands them all at once and
 * everything else is in place (containers running and wired, routes, BIRD). No lab can do
 * that work for them, so a floor for the policy matrix that leaves it out compares `up` with
 * a network that enforces nothing.
 *
 * Measured on the benched lab itself, once its policy is proven: every endpoint file is taken
 * out of the controller's plugin data, and when each Felix has removed the endpoints' chains
 * all of them are written back at once, as `up` writes them. The time runs from that write
 * to `check` proving the policy again (the same check, with the same probe rounds, that ends
 * the up -> matrix time).
 */
import { rmSync } from "node:fs";
import path from "node:path";
import type { ClusterModel } from "../components/model.js";
import { labCheck, type CheckOptions } from "../lab/check.js";
import { resolveContext } from "../lab/context.js";
import { sleep } from "../lab/exec.js";
import { felixChains } from "../lab/felix-chains.js";
import type { LabPlan } from "../lab/plan.js";
import { writePluginData } from "../lab/stages/plugin.js";

/** Milliseconds from all endpoint files written back to the policy proven again. */
export async function felixFloorMs(
  opts: CheckOptions,
  model: ClusterModel,
  plan: LabPlan,
): Promise<number> {
  const { state } = resolveContext(opts);
  const dir = state.pluginDataDir(model.controller.index);
  for (const e of model.endpoints) rmSync(path.join(dir, e.dataFile), { force: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const left = await Promise.all(plan.hosts.map(async (h) => (await felixChains(h.ns)).size));
    if (left.every((n) => n === 0)) break;
    if (Date.now() > deadline) {
      throw new Error(`Felix kept ${left.join("+")} endpoint chains 120 s after their removal`);
    }
    await sleep(200);
  }
  const t0 = performance.now();
  await writePluginData(model, state, plan);
  const report = await labCheck({ ...opts, timeoutMs: 120_000 });
  if (!report.ok) {
    throw new Error(`the policy was not proven again: ${report.problems.slice(0, 3).join("; ")}`);
  }
  return performance.now() - t0;
}
