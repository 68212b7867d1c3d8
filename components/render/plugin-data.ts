/**
 * The plugin's data files, in the seed's INI format (`plugin/` parses them):
 * `felix.txt`, one `<endpoint>.txt` per endpoint, and `groups.txt` for explicit rules.
 */
import { PLUGIN_DATA_NAMES } from "../config.js";
import type { ClusterModel, EndpointModel } from "../model.js";
import { RenderError, checkEndpointId, iniSection } from "./text.js";

/** File names the plugin data directory reserves (an endpoint's file must not take them). */
export const RESERVED_DATA_FILES: readonly string[] = PLUGIN_DATA_NAMES.map((n) => `${n}.txt`);

/** Refuse an endpoint whose data file would replace the plugin's own felix.txt/groups.txt. */
export function checkDataFile(endpointName: string, dataFile: string): void {
  if (RESERVED_DATA_FILES.includes(dataFile)) {
    throw new RenderError(
      `endpoint ${endpointName}: its plugin data file ${dataFile} would overwrite the ` +
        `plugin's own ${dataFile}; give the endpoint another name`,
    );
  }
}

/** `felix.txt`: one `[felix <name>]` section per host with `ip=` and `host=`. */
export function renderFelixTxt(model: ClusterModel): string {
  return model.hosts
    .map((h) =>
      iniSection(
        `felix ${h.name}`,
        [
          ["ip", h.internalAddress],
          ["host", h.name],
        ],
        "=",
      ),
    )
    .join("\n");
}

/** `<name>.txt`: `[endpoint <name>]` with `id`, `ip`, `mac`, `host`, `group`. */
export function renderEndpointData(e: EndpointModel, endpointId: string): string {
  checkDataFile(e.name, e.dataFile);
  return iniSection(
    `endpoint ${e.name}`,
    [
      ["id", checkEndpointId(e.name, endpointId)],
      ["ip", e.ip],
      ["mac", e.mac],
      ["host", e.host],
      ["group", e.group],
    ],
    "=",
  );
}

/**
 * `groups.txt`: `[group <name>]` with `inbound=` and `outbound=` JSON arrays of wire rules,
 * for the groups the stack gives rules; undefined when none has any (the plugin then
 * applies the prototype's policy to every group).
 */
export function renderGroupsTxt(model: ClusterModel): string | undefined {
  const explicit = model.groups.filter((g) => g.explicit);
  if (explicit.length === 0) return undefined;
  return explicit
    .map((g) =>
      iniSection(
        `group ${g.name}`,
        [
          ["inbound", JSON.stringify(g.inbound)],
          ["outbound", JSON.stringify(g.outbound)],
        ],
        "=",
      ),
    )
    .join("\n");
}
