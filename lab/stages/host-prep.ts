/**
 * Stage `host preparation`: the rendered host preparation script (`apply`), in each host's
 * namespace, with its files under the host's CALICO_ROOT in the state folder; and the
 * kernel-wide neighbour table sized for the endpoints. Undo: the script's `remove`, and the
 * limits put back (lab.ts's `down`).
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { ClusterModel } from "../../components/model.js";
import { renderHostScript } from "../../components/render/index.js";
import { pool, runIn } from "../exec.js";
import { ensureNeighbourCapacity } from "../neigh.js";
import type { HostPlan } from "../plan.js";
import type { StateDir } from "../state.js";
import type { LabRun, Stage } from "./run.js";

export const hostPrepStage: Stage = {
  title: () => "host preparation script (apply) in each host",
  async up(r: LabRun) {
    const outputs = await pool(r.plan.hosts, r.concurrency, (h) =>
      runHostScript(r.model, r.state, h, "apply"),
    );
    // What the script could not do here (kernel modules), said once.
    const notes = new Set(
      outputs.flatMap((o) => o.split("\n").filter((l) => /kernel module/.test(l))),
    );
    for (const n of notes) r.log(`    ${n.replace(/^\[calico-host\] /, "")}`);
  },
};

export const neighbourStage: Stage = {
  title: (r) => `neighbour table sized for ${r.plan.endpoints.length} endpoint(s)`,
  async up(r: LabRun) {
    const neighbour = ensureNeighbourCapacity(r.plan.endpoints.length, r.plan.hosts.length);
    if (neighbour === undefined) return;
    r.st.neighbour = neighbour;
    r.save();
    r.log(
      `    raised the kernel's neighbour table limits (shared by all namespaces) from ` +
        `gc_thresh2/3=${neighbour.from.gc_thresh2}/${neighbour.from.gc_thresh3} to ` +
        `${neighbour.to.gc_thresh2}/${neighbour.to.gc_thresh3}; down puts them back`,
    );
  },
};

export async function runHostScript(
  model: ClusterModel,
  state: StateDir,
  h: HostPlan,
  action: "apply" | "remove",
): Promise<string> {
  const file = state.hostScript(h.index);
  if (!existsSync(file))
    await writeFile(file, renderHostScript(model, model.hosts[h.index]!), { mode: 0o755 });
  return hostScriptAction(state, h, action);
}

export async function hostScriptAction(
  state: StateDir,
  h: HostPlan,
  action: "apply" | "remove",
): Promise<string> {
  const env = { ...process.env, CALICO_ROOT: state.hostRoot(h.index) };
  const { stdout, stderr } = await runIn(h.ns, "bash", [state.hostScript(h.index), action], {
    env,
  });
  await writeFile(path.join(state.dir, `host-prepare-h${h.index}.${action}.log`), stdout + stderr);
  return stdout + stderr;
}
