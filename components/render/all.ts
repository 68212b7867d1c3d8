/**
 * Every rendered file of a stack, per host, as `npm run render` writes them and the
 * Pulumi program delivers them.
 */
import type { ClusterModel } from "../model.js";
import { syntheticEndpointId } from "../model.js";
import { renderAgentScript } from "./agent-script.js";
import { renderBirdConf } from "./bird.js";
import { renderEndpointScript } from "./endpoint-script.js";
import { renderAclManagerCfg, renderFelixCfg } from "./felix-cfg.js";
import { renderHostScript } from "./host-script.js";
import { renderIgnition } from "./ignition.js";
import {
  checkDataFile,
  renderEndpointData,
  renderFelixTxt,
  renderGroupsTxt,
} from "./plugin-data.js";
import { RenderError, checkEndpointId } from "./text.js";

export interface RenderedFile {
  /** Relative path: `<host>/bird.conf`, `<host>/plugin-data/felix.txt`, ... */
  path: string;
  content: string;
  /** 0o644 or 0o755 (scripts). */
  mode: number;
}

export interface RenderAllOptions {
  /** Endpoint name -> docker container id; missing ones get `syntheticEndpointId(name)`. */
  endpointIds?: Record<string, string>;
  /** The SSH public key put in Ignition (GCE); default: a stand-in key (the real one is generated at deploy). */
  sshPublicKey?: string;
}

/** The key `npm run render` puts in ignition.json: the real one is generated at deploy. */
export const STAND_IN_SSH_KEY = "ssh-ed25519 AAAA...(generated at deploy)";

/** The endpoint id to use for each endpoint: given (validated) or synthetic. */
export function endpointIdsFor(
  model: ClusterModel,
  given: Record<string, string> = {},
): Map<string, string> {
  const known = new Set(model.endpoints.map((e) => e.name));
  for (const name of Object.keys(given)) {
    if (!known.has(name)) {
      throw new RenderError(`endpointIds names ${JSON.stringify(name)}, which is no endpoint`);
    }
  }
  const ids = new Map<string, string>();
  const seen = new Map<string, string>();
  for (const e of model.endpoints) {
    const id = checkEndpointId(e.name, given[e.name] ?? syntheticEndpointId(e.name));
    const twin = seen.get(id.slice(0, 11));
    if (twin !== undefined) {
      throw new RenderError(
        `endpoints ${twin} and ${e.name} have ids that share their first 11 characters ` +
          `(${id.slice(0, 11)}): their taps would have the same name`,
      );
    }
    seen.set(id.slice(0, 11), e.name);
    ids.set(e.name, id);
  }
  return ids;
}

/**
 * The plugin's data directory on the controller, file by file: felix.txt, groups.txt (when a
 * group has rules) and one file per endpoint. `npm run status` compares the live directory
 * with this.
 */
export function renderPluginData(
  model: ClusterModel,
  ids: Map<string, string>,
): { name: string; content: string }[] {
  const files = [{ name: "felix.txt", content: renderFelixTxt(model) }];
  const groups = renderGroupsTxt(model);
  if (groups !== undefined) files.push({ name: "groups.txt", content: groups });
  for (const e of model.endpoints) {
    const id = ids.get(e.name);
    if (id === undefined) throw new RenderError(`no endpoint id for ${e.name}`);
    files.push({ name: e.dataFile, content: renderEndpointData(e, id) });
  }
  return files;
}

export function renderAll(model: ClusterModel, opts: RenderAllOptions = {}): RenderedFile[] {
  const ids = endpointIdsFor(model, opts.endpointIds);
  for (const e of model.endpoints) checkDataFile(e.name, e.dataFile);
  const files: RenderedFile[] = [];
  const add = (path: string, content: string, mode = 0o644) => files.push({ path, content, mode });
  const bgp = model.config.bgp.enabled;
  const gce = model.config.platform === "gce";
  for (const host of model.hosts) {
    const dir = host.name;
    add(`${dir}/calico-host-prepare.sh`, renderHostScript(model, host), 0o755);
    add(`${dir}/calico-agent.sh`, renderAgentScript(model, host), 0o755);
    add(`${dir}/felix.cfg`, renderFelixCfg(model, host));
    if (bgp) add(`${dir}/bird.conf`, renderBirdConf(model, host));
    if (gce) {
      add(`${dir}/ignition.json`, renderIgnition(model, opts.sshPublicKey ?? STAND_IN_SSH_KEY));
    }
    for (const e of host.endpoints) {
      add(`${dir}/endpoint-${e.name}.sh`, renderEndpointScript(e, ids.get(e.name)!), 0o755);
    }
    if (host.isController) {
      add(`${dir}/acl_manager.cfg`, renderAclManagerCfg(model));
      for (const f of renderPluginData(model, ids)) add(`${dir}/plugin-data/${f.name}`, f.content);
    }
  }
  return files;
}
