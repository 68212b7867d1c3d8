/**
 * Stacks the tests share:
 *
 *   stackRaw(stack)      the raw config of a committed Pulumi.<stack>.yaml (as `loadConfig` takes it)
 *   devRaw()             stackRaw("dev")
 *   modelOf(raw)         buildModel(loadConfig(raw))
 *   devModel(overrides)  the dev stack's model, top-level keys replaced by `overrides`
 *                        (e.g. `{ bgp: { enabled: true } }` for the dev stack with BGP on)
 *   hostOf(model, name), endpointOf(model, name)   look one up by name (renderers take the objects)
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../components/config.js";
import { rawFromStackConfig } from "../../components/stack-keys.js";
import {
  buildModel,
  type ClusterModel,
  type EndpointModel,
  type HostModel,
} from "../../components/model.js";
import { readStackEntries, stackFilePath } from "../../components/stackfile.js";

/** Stack files live at the repository root, whatever the working directory. */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export function stackRaw(stack: string): Record<string, unknown> {
  return rawFromStackConfig(readStackEntries(stackFilePath(stack, REPO_ROOT)));
}

export function devRaw(): Record<string, unknown> {
  return stackRaw("dev");
}

export function modelOf(raw: unknown): ClusterModel {
  return buildModel(loadConfig(raw));
}

export function devModel(overrides: Record<string, unknown> = {}): ClusterModel {
  return modelOf({ ...devRaw(), ...overrides });
}

/** The host of a model with this name (a test's own lookup: renderers take the model). */
export function hostOf(model: ClusterModel, name: string): HostModel {
  const host = model.hosts.find((h) => h.name === name);
  if (host === undefined) throw new Error(`test: no host ${name} in the model`);
  return host;
}

/** The endpoint of a model with this name. */
export function endpointOf(model: ClusterModel, name: string): EndpointModel {
  const endpoint = model.endpoints.find((e) => e.name === name);
  if (endpoint === undefined) throw new Error(`test: no endpoint ${name} in the model`);
  return endpoint;
}
