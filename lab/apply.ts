/**
 * `apply`: a policy change to a lab that is up, delivered as `pulumi up` delivers it on a
 * host — the controller's plugin data re-rendered from the changed stack, each changed file
 * written aside and renamed into place, a file that is no longer rendered removed — with
 * nothing restarted: the running plugin sees the change and pushes it to Felix and the ACL
 * Manager. Only the policy may change (group rules, endpoints' groups); a change of hosts,
 * endpoints or addresses needs `up`.
 */
import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { CalicoConfig } from "../components/config.js";
import { buildModel, type ClusterModel } from "../components/model.js";
import { probeKinds, withKinds } from "../components/reachability.js";
import { renderPluginData } from "../components/render/index.js";
import { LabError, requireState, resolveContext, type LabOptions } from "./context.js";

export interface ApplyResult {
  /** Data files written (changed or new), and removed. */
  written: string[];
  removed: string[];
}

/** What may not change without `up`: hosts, endpoints, their addresses and hosts. */
function shape(model: ClusterModel): string {
  return JSON.stringify({
    hosts: model.hosts.map((h) => [h.name, h.internalAddress]),
    endpoints: model.endpoints.map((e) => [e.name, e.host, e.ip]),
  });
}

export function applyPolicy(opts: LabOptions, config: CalicoConfig): ApplyResult {
  const { state } = resolveContext(opts);
  const st = requireState(state);
  const before = buildModel(st.config!);
  const after = buildModel(config);
  if (shape(before) !== shape(after)) {
    throw new LabError(
      "only the policy (groups' rules, endpoints' groups) can be applied to a running lab; " +
        `hosts or endpoints changed: run \`npm run lab -- up --stack ${state.stack}\` again`,
    );
  }
  const dir = state.pluginDataDir(after.controller.index);
  const ids = new Map(st.plan.endpoints.map((e) => [e.name, e.id]));
  const files = renderPluginData(after, ids);
  const result: ApplyResult = { written: [], removed: [] };
  for (const f of files) {
    const file = path.join(dir, f.name);
    if (existsSync(file) && readFileSync(file, "utf8") === f.content) continue;
    const tmp = path.join(dir, `.${f.name}.tmp`);
    writeFileSync(tmp, f.content);
    renameSync(tmp, file);
    result.written.push(f.name);
  }
  const old = renderPluginData(before, ids).map((f) => f.name);
  for (const name of old.filter((n) => !files.some((f) => f.name === n))) {
    unlinkSync(path.join(dir, name));
    result.removed.push(name);
  }
  st.formerKinds = withKinds(st.formerKinds ?? [], probeKinds(before.groups));
  st.config = config;
  state.write(st);
  return result;
}
