/**
 * Stacks the tests share:
 *
 *   devRaw()             the raw config of Pulumi.dev.yaml (as `loadConfig` takes it)
 *   modelOf(raw)         buildModel(loadConfig(raw))
 *   devModel(overrides)  the dev stack's model, top-level keys replaced by `overrides`
 *                        (e.g. `{ bgp: { enabled: true } }` for the dev stack with BGP on)
 */
import { loadConfig, rawFromStackConfig } from "../../components/config.js";
import { buildModel, type ClusterModel } from "../../components/model.js";
import { readStackEntries, stackFilePath } from "../../components/stackfile.js";

export function devRaw(): Record<string, unknown> {
  return rawFromStackConfig(readStackEntries(stackFilePath("dev")));
}

export function modelOf(raw: unknown): ClusterModel {
  return buildModel(loadConfig(raw));
}

export function devModel(overrides: Record<string, unknown> = {}): ClusterModel {
  return modelOf({ ...devRaw(), ...overrides });
}
