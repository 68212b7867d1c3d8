/**
 * GCE physical names and network tags, unique per Pulumi project and stack.
 *
 * Names in a GCP project are global per kind (instances per zone, networks, firewall rules,
 * routes per project), so two stacks of this program in one GCP project must not share any;
 * and the network tag is what every firewall rule matches on, so it must not be shared
 * either, or one stack's BGP and ZeroMQ rules would admit the other stack's hosts. Every
 * name starts with the stack's prefix: `calico-<stack, slugged>-<6 hex of sha256(project,
 * stack)>`; the hash keeps two stacks apart even when their names slug alike (`dev_1`,
 * `dev.1`) or when two projects have a stack of the same name.
 *
 * The host name that Felix, BIRD and the plugin use stays the config's host name; only the
 * GCE instance is named with the prefix. Pure: no Pulumi, no I/O. It takes only the parts of
 * the config it names (`NamedConfig`), so the config's checks can call it without this
 * module depending on anything of the config's.
 */
import { createHash } from "node:crypto";
import { routesFor, type RoutedConfig } from "./routes.js";

/** Which deployment a model is for: the Pulumi project and stack (from index.ts). */
export interface Deployment {
  project: string;
  stack: string;
}

/** GCE's limit for resource names and network tags (RFC 1035 labels). */
export const GCE_NAME_MAX = 63;
const GCE_NAME = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** The longest slug of the stack name kept in the prefix (the hash keeps it unique). */
const STACK_SLUG_MAX = 20;

export interface GceNames {
  /** `calico-<stack>-<hash>`: every name and the tag start with it. */
  prefix: string;
  /** The network tag of this stack's hosts; every firewall rule targets it. */
  hostTag: string;
  network: string;
  subnet(region: string): string;
  firewall(rule: "endpoints" | "zeromq" | "ssh" | "bgp"): string;
  instance(host: string): string;
  /** The GCE name of a model route (its logical name without the `calico-` prefix). */
  route(routeName: string): string;
}

function slug(text: string): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .slice(0, STACK_SLUG_MAX)
    .replace(/^-+|-+$/g, "");
  return s === "" ? "stack" : /^[a-z]/.test(s) ? s : `s${s}`.slice(0, STACK_SLUG_MAX);
}

export function gceNames(d: Deployment): GceNames {
  const hash = createHash("sha256").update(`${d.project}\0${d.stack}`).digest("hex").slice(0, 6);
  const prefix = `calico-${slug(d.stack)}-${hash}`;
  return {
    prefix,
    hostTag: `${prefix}-host`,
    network: `${prefix}-net`,
    subnet: (region) => `${prefix}-${region}`,
    firewall: (rule) => `${prefix}-${rule}`,
    instance: (host) => `${prefix}-${host}`,
    route: (routeName) => `${prefix}-${routeName.replace(/^calico-/, "")}`,
  };
}

/** Why `name` is no GCE name, or undefined when it is one. */
function nameProblem(name: string): string | undefined {
  if (name.length > GCE_NAME_MAX) return `${name.length} characters, over GCE's ${GCE_NAME_MAX}`;
  if (!GCE_NAME.test(name)) return "not a GCE name (RFC 1035: a-z, 0-9 and '-')";
  return undefined;
}

/** A name that GCE would refuse: the config key that makes it, and that key's value. */
export interface NameIssue {
  path: string;
  message: string;
  value: unknown;
}

/** The parts of a validated config that the GCE names derive from. */
export interface NamedConfig extends RoutedConfig {
  platform: "gce" | "existing";
  hosts: readonly { name: string; zone: string; region: string; endpointBlock?: string }[];
  gce: RoutedConfig["gce"] & {
    network?: string | undefined;
    subnets: readonly { region: string }[];
  };
}

/**
 * Every GCE name and tag the stack would create, checked against GCE's rules, as config
 * issues naming the key whose value makes the name too long. Empty off GCE.
 */
export function gceNameIssues(config: NamedConfig, d: Deployment): NameIssue[] {
  if (config.platform !== "gce") return [];
  const names = gceNames(d);
  const issues: NameIssue[] = [];
  const check = (what: string, name: string, path: string, value: unknown) => {
    const problem = nameProblem(name);
    if (problem !== undefined) {
      issues.push({ path, message: `makes the ${what} name "${name}" ${problem}`, value });
    }
  };
  const stackValue = `${d.project}/${d.stack}`;
  check("network tag", names.hostTag, "(stack)", stackValue);
  if (config.gce.network === undefined) {
    check("network", names.network, "(stack)", stackValue);
    for (const s of config.gce.subnets) {
      const i = config.hosts.findIndex((h) => h.region === s.region);
      check("subnetwork", names.subnet(s.region), `hosts[${i}].zone`, config.hosts[i]!.zone);
    }
  }
  for (const rule of ["endpoints", "zeromq", "ssh", "bgp"] as const) {
    check("firewall rule", names.firewall(rule), "(stack)", stackValue);
  }
  config.hosts.forEach((h, i) =>
    check("instance", names.instance(h.name), `hosts[${i}].name`, h.name),
  );
  for (const r of routesFor(config)) {
    const byEndpoint = config.endpoints.findIndex((e) => `${e.ip}/32` === r.destRange);
    const [path, value] =
      config.gce.routeGranularity === "host-block"
        ? [`hosts[${config.hosts.findIndex((h) => h.name === r.host)}].name`, r.host]
        : [`endpoints[${byEndpoint}].ip`, config.endpoints[byEndpoint]?.ip];
    check("route", names.route(r.name), path, value);
  }
  return issues;
}
