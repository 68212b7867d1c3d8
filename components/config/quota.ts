/**
 * GCE's routes quota: one static route per endpoint (or per host block) must fit in it, or
 * `pulumi up` fails at apply time, long after the preview said yes. Pure.
 */
import type { Report } from "./issues.js";
import { GCE_DEFAULT_ROUTE_QUOTA, type Parsed } from "./schema.js";
import type { EndpointConfig } from "./types.js";

export function checkRouteQuota(c: Parsed, bad: Report, endpoints: EndpointConfig[]): void {
  if (c.platform !== "gce") return;
  const perBlock = c.gce.routeGranularity === "host-block";
  const routes = perBlock
    ? c.hosts.filter((h) => h.endpointBlock !== undefined).length
    : endpoints.length;
  if (routes <= c.gce.routeQuota) return;
  bad(
    perBlock ? ["hosts"] : ["endpoints"],
    `needs ${routes} static routes (one per ${perBlock ? "host block" : "endpoint"}), over ` +
      `gce.routeQuota ${c.gce.routeQuota} (GCE's default routes quota is ` +
      `${GCE_DEFAULT_ROUTE_QUOTA} per project)` +
      (perBlock
        ? "; have the quota raised and set gce.routeQuota"
        : "; use gce.routeGranularity: host-block (one route per host, with " +
          "hosts[].endpointBlock), or have the quota raised and set gce.routeQuota"),
    `${routes} routes`,
  );
}
