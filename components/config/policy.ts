/** The cross-field checks of policy and routing: group rules, BGP reflectors. Pure. */
import type { Report } from "./issues.js";
import type { Parsed } from "./schema.js";
import type { EndpointConfig } from "./types.js";

/** Rules may only name groups that exist (have members or rules). */
export function checkGroupRules(c: Parsed, bad: Report, endpoints: EndpointConfig[]): void {
  const groupNames = new Set([...endpoints.map((e) => e.group), ...Object.keys(c.groups)]);
  for (const [g, rules] of Object.entries(c.groups)) {
    for (const dir of ["inbound", "outbound"] as const) {
      rules[dir].forEach((r, i) => {
        if (r.group !== undefined && !groupNames.has(r.group)) {
          bad(["groups", g, dir, i, "group"], "is not a group of any endpoint");
        }
      });
    }
  }
}

/** BGP: on by default for existing hosts; route reflectors are hosts (the controller by default). */
export function checkBgp(
  c: Parsed,
  bad: Report,
  hostNames: ReadonlySet<string>,
  controller: string,
): { enabled: boolean; routeReflectors: string[] } {
  c.bgp.routeReflectors?.forEach((r, i) => {
    if (!hostNames.has(r)) bad(["bgp", "routeReflectors", i], "is not the name of a host");
  });
  if (c.bgp.routeReflectors !== undefined && c.bgp.peering !== "route-reflector") {
    bad(["bgp", "routeReflectors"], "only applies with bgp.peering route-reflector");
  }
  return {
    enabled: c.bgp.enabled ?? c.platform === "existing",
    routeReflectors:
      c.bgp.peering === "route-reflector" ? (c.bgp.routeReflectors ?? [controller]) : [],
  };
}
