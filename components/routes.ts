/**
 * The GCE static routes of a stack: one /32 per endpoint, or one per host block. Pure, and
 * it takes only the parts of the config it reads, so naming (`names.ts`) and the model
 * (`model.ts`) can both use it without importing the config or each other.
 */

export interface RouteModel {
  /** Logical name, RFC 1035, unique in the stack. */
  name: string;
  destRange: string;
  host: string;
  zone: string;
}

/** What the routes are derived from: a validated config, or anything shaped like its parts. */
export interface RoutedConfig {
  hosts: readonly { name: string; zone: string; endpointBlock?: string | undefined }[];
  endpoints: readonly { ip: string; host: string }[];
  gce: { routeGranularity: "endpoint" | "host-block" };
}

/** An IP as an RFC 1035 fragment: 192.168.1.1 -> 192-168-1-1. */
function dashed(ip: string): string {
  return ip.replaceAll(".", "-").replaceAll("/", "-");
}

/** GCE static routes: one /32 per endpoint, or one per host block. */
export function routesFor(config: RoutedConfig): RouteModel[] {
  const zoneOf = new Map(config.hosts.map((h) => [h.name, h.zone]));
  if (config.gce.routeGranularity === "host-block") {
    return config.hosts
      .filter((h) => h.endpointBlock !== undefined)
      .map((h) => ({
        name: `calico-block-${h.name}`,
        destRange: h.endpointBlock!,
        host: h.name,
        zone: h.zone,
      }));
  }
  return config.endpoints.map((e) => ({
    name: `calico-ep-${dashed(e.ip)}`,
    destRange: `${e.ip}/32`,
    host: e.host,
    zone: zoneOf.get(e.host)!,
  }));
}
