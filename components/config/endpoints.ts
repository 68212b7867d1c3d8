/**
 * The cross-field checks of the endpoints: a known host, an IP inside the pool (and the
 * host's block) used once, a name used once and not reserved, and the workload's own rules.
 * Pure.
 */
import { inCidr } from "../ipv4.js";
import { checkWorkload } from "../workload.js";
import type { Report } from "./issues.js";
import { defaultEndpointName, reservedNameProblem } from "./reserved.js";
import { RESERVED_SECRET_NAMES, type Parsed } from "./schema.js";
import type { SecretUses } from "./secrets.js";
import type { EndpointConfig } from "./types.js";

export function checkEndpoints(c: Parsed, bad: Report, secrets: SecretUses): EndpointConfig[] {
  const hostByName = new Map(c.hosts.map((h) => [h.name, h]));
  const ips = new Map<string, number>();
  const names = new Map<string, number>();
  return c.endpoints.map((e, i) => {
    const name = e.name ?? defaultEndpointName(e.ip);
    const host = hostByName.get(e.host);
    if (host === undefined) bad(["endpoints", i, "host"], "is not the name of a host");
    if (!inCidr(e.ip, c.endpointPool)) {
      bad(["endpoints", i, "ip"], `is outside endpointPool ${c.endpointPool}`);
    } else if (host?.endpointBlock !== undefined && !inCidr(e.ip, host.endpointBlock)) {
      bad(
        ["endpoints", i, "ip"],
        `is outside host ${host.name}'s endpointBlock ${host.endpointBlock}`,
      );
    }
    const ipTwin = ips.get(e.ip);
    if (ipTwin !== undefined) bad(["endpoints", i, "ip"], `duplicates endpoints[${ipTwin}].ip`);
    else ips.set(e.ip, i);
    const reserved = reservedNameProblem(name);
    if (reserved !== undefined) bad(["endpoints", i, "name"], reserved, name);
    const nameTwin = names.get(name);
    if (nameTwin !== undefined) {
      bad(["endpoints", i, "name"], `duplicates endpoints[${nameTwin}]'s name`, name);
    } else names.set(name, i);
    const { workload, issues } = checkWorkload(e, RESERVED_SECRET_NAMES, c.allowedHostPaths);
    for (const w of issues) bad(["endpoints", i, ...w.path], w.message, w.value);
    if (workload.kind === "run") {
      for (const [variable, key] of Object.entries(workload.secretEnv)) {
        secrets.add(["endpoints", i, "secretEnv", variable], key);
      }
    }
    return {
      name,
      host: e.host,
      ip: e.ip,
      group: e.group,
      configPath: `endpoints[${i}]`,
      workload,
    };
  });
}
