/**
 * Stage `plugin`: the controller's plugin data, file by file as render/ makes it for
 * production (with the endpoint containers' ids), and the project's own plugin — the
 * `endpoint` role (Felix's API) and the `network` role (the ACL Manager's) — running in the
 * controller's namespace over that directory, as its two containers do on a host. Undo:
 * `stopLabPlugins`, the processes found by their data directory.
 */
import { closeSync, mkdirSync, openSync, readdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { ClusterModel } from "../../components/model.js";
import {
  renderFelixTxt,
  renderGroupsTxt,
  renderPluginData,
} from "../../components/render/index.js";
import { cmdline, killAll } from "../processes.js";
import { netnsPath, spawnDetached } from "../exec.js";
import type { HostPlan, LabPlan } from "../plan.js";
import { REPO_ROOT, type StateDir } from "../state.js";
import type { LabRun, Stage } from "./run.js";
import { labLogDir } from "./felix.js";

export type PluginRole = "endpoint" | "network";

export interface PluginRecord {
  role: PluginRole;
  pid: number;
  startedAt: number;
}

export const pluginDataStage: Stage = {
  title: () => "the controller's plugin data, as render/ makes it",
  up: (r) => writePluginData(r.model, r.state, r.plan),
};

export const pluginStage: Stage = {
  title: (r) => `the plugin (endpoint and network) on ${r.model.controller.name}`,
  applies: (r) => r.felix === "real",
  async up(r: LabRun) {
    // Before Felix and the ACL Manager: the ACL Manager asks for the groups once, at its
    // start, and PUB/SUB drops what is published before it has subscribed. The endpoint
    // files follow when the endpoints have their ids (pluginDataStage).
    const dir = r.state.pluginDataDir(r.model.controller.index);
    mkdirSync(dir, { recursive: true });
    await writeFile(path.join(dir, "felix.txt"), renderFelixTxt(r.model));
    const groups = renderGroupsTxt(r.model);
    if (groups !== undefined) await writeFile(path.join(dir, "groups.txt"), groups);
    r.st.plugins = [];
    for (const role of ["endpoint", "network"] as const) {
      r.st.plugins.push(startPlugin(r.state, r.plan, r.model, role));
      r.save();
    }
  },
};

/** The controller's plugin data directory, file by file as render/ makes it for production. */
export async function writePluginData(model: ClusterModel, state: StateDir, plan: LabPlan) {
  const dir = state.pluginDataDir(model.controller.index);
  mkdirSync(dir, { recursive: true });
  const ids = new Map(plan.endpoints.map((e) => [e.name, e.id]));
  for (const f of renderPluginData(model, ids)) await writeFile(path.join(dir, f.name), f.content);
}

function controllerPlan(plan: LabPlan, model: ClusterModel): HostPlan {
  return plan.hosts.find((h) => h.name === model.controller.name)!;
}

/** The plugin's command line: node with the project's TypeScript loader, as `npm run plugin`. */
export function pluginArgv(state: StateDir, model: ClusterModel, role: PluginRole): string[] {
  return [
    process.execPath,
    "--import",
    "tsx",
    path.join(REPO_ROOT, "plugin", "src", "cli.ts"),
    role,
    "--data-dir",
    state.pluginDataDir(model.controller.index),
    "--log-dir",
    labLogDir(state, { index: model.controller.index } as HostPlan),
    "--bind",
    model.controller.internalAddress,
  ];
}

export function startPlugin(
  state: StateDir,
  plan: LabPlan,
  model: ClusterModel,
  role: PluginRole,
): PluginRecord {
  const h = controllerPlan(plan, model);
  mkdirSync(labLogDir(state, h), { recursive: true });
  const fd = openSync(path.join(state.dir, `plugin-${role}.out`), "a");
  try {
    const argv = pluginArgv(state, model, role);
    const pid = spawnDetached("nsenter", [`--net=${netnsPath(h.ns)}`, "--", ...argv], fd, {
      cwd: REPO_ROOT,
    });
    return { role, pid, startedAt: Date.now() };
  } finally {
    closeSync(fd);
  }
}

/** Plugin processes of this state folder (their --data-dir is under it), of one role or all. */
export function labPluginPids(state: StateDir, role?: PluginRole): number[] {
  const pids: number[] = [];
  const marker = `${state.dir}${path.sep}`;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const argv = cmdline(Number(entry));
    const cli = argv.findIndex((a) => a.endsWith(path.join("plugin", "src", "cli.ts")));
    if (cli < 0 || argv[0] === "nsenter") continue;
    if (!argv.some((a) => a.startsWith(marker))) continue;
    if (role !== undefined && argv[cli + 1] !== role) continue;
    pids.push(Number(entry));
  }
  return pids;
}

export async function stopLabPlugins(state: StateDir, role?: PluginRole): Promise<number[]> {
  const pids = labPluginPids(state, role);
  await killAll(pids);
  return pids;
}
