/**
 * The stack config: `loadConfig(raw)`, the only place that validates.
 *
 * Pure: no Pulumi, no I/O. `loadConfig` either returns a fully defaulted, cross-checked
 * config or throws ONE `ConfigError` listing every problem with its key path and value.
 * The parts live beside it in `config/`: the zod schema (`schema.ts`), what the validated
 * config holds (`types.ts`), the issues (`issues.ts`), and the checks that relate values to
 * each other: hosts and addresses (`hosts.ts`), endpoints (`endpoints.ts`), stack secrets
 * (`secrets.ts`), group rules and BGP (`policy.ts`), GCE's routes quota (`quota.ts`); GCE's
 * name rules are `names.ts`'s.
 */
import { checkEndpoints } from "./config/endpoints.js";
import { checkHosts } from "./config/hosts.js";
import { ConfigError, formatPath, reporter, valueAt, type ConfigIssue } from "./config/issues.js";
import { checkBgp, checkGroupRules } from "./config/policy.js";
import { checkRouteQuota } from "./config/quota.js";
import { parseConfig } from "./config/schema.js";
import { checkRegistries, checkStackSecrets, SecretUses } from "./config/secrets.js";
import type { CalicoConfig } from "./config/types.js";
import { gceNameIssues, type Deployment } from "./names.js";

export { ConfigError, formatPath, type ConfigIssue } from "./config/issues.js";
export {
  defaultEndpointName,
  PLUGIN_DATA_NAMES,
  RESERVED_ENDPOINT_NAMES,
  SYSTEM_CONTAINER_NAMES,
} from "./config/reserved.js";
export {
  GCE_DEFAULT_ROUTE_QUOTA,
  RESERVED_SECRET_NAMES,
  type GroupRules,
  type Rule,
} from "./config/schema.js";
export type { CalicoConfig, EndpointConfig, HostConfig } from "./config/types.js";

/**
 * Validate a raw stack config (the `calico-docker:*` keys without their prefix) and return
 * the typed, defaulted config. Throws one `ConfigError` listing every problem. With the
 * deployment (the program passes its project and stack), GCE names are checked too.
 */
export function loadConfig(raw: unknown, deployment?: Deployment): CalicoConfig {
  const parsed = parseConfig(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({
        path: formatPath(i.path),
        message: i.message,
        value: valueAt(raw, i.path),
      })),
    );
  }
  const c = parsed.data;
  const issues: ConfigIssue[] = [];
  const bad = reporter(raw, issues);

  const { controller, hostNames, hostRegions, plan, internal } = checkHosts(c, bad);
  const secrets = new SecretUses();
  const endpoints = checkEndpoints(c, bad, secrets);
  checkRegistries(c, bad, secrets);
  checkStackSecrets(c, bad, secrets);
  checkGroupRules(c, bad, endpoints);
  const bgp = checkBgp(c, bad, hostNames, controller);
  checkRouteQuota(c, bad, endpoints);
  if (issues.length > 0) throw new ConfigError(issues);

  const config: CalicoConfig = {
    platform: c.platform,
    controller,
    hosts: c.hosts.map((h, i) => ({
      name: h.name,
      zone: h.zone ?? c.gce.zone,
      region: hostRegions[i]!,
      machineType: h.machineType ?? c.gce.machineType,
      ...(h.address !== undefined ? { address: h.address } : {}),
      internalAddress: internal[i]!,
      sshUser: h.sshUser ?? c.ssh.user ?? "core",
      ...(h.endpointBlock !== undefined ? { endpointBlock: h.endpointBlock } : {}),
    })),
    endpoints,
    endpointPool: c.endpointPool,
    vethMtu: c.vethMtu ?? (c.platform === "gce" ? 1460 : 1500),
    bgp: {
      enabled: bgp.enabled,
      asNumber: c.bgp.asNumber,
      peering: c.bgp.peering,
      routeReflectors: bgp.routeReflectors,
      session: c.bgp.session,
      connectDelaySeconds: c.bgp.connectDelaySeconds,
    },
    // The provider region: gce.region, else the first host's.
    gce: { ...c.gce, region: c.gce.region ?? hostRegions[0]!, subnets: plan.subnets },
    sshKeySupplied: c.sshPrivateKey !== undefined,
    groups: c.groups,
    images: c.images,
    felix: c.felix,
    plugin: c.plugin,
    allowedHostPaths: c.allowedHostPaths,
    registries: c.registries,
    secretKeys: secrets.keys(),
  };
  // With the project and stack known (the program), every GCE name must fit GCE's rules.
  if (deployment !== undefined) {
    const names = gceNameIssues(config, deployment);
    if (names.length > 0) throw new ConfigError(names);
  }
  return config;
}
