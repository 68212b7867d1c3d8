/**
 * The stack config: one zod schema, and `loadConfig(raw)`, the only place that validates.
 *
 * Pure: no Pulumi, no I/O. `loadConfig` either returns a fully defaulted, cross-checked
 * config or throws ONE `ConfigError` listing every problem with its key path and value.
 */
import { z } from "zod";
import {
  absolutePathProblem,
  checkWorkload,
  registrySchema,
  workloadFields,
  type RegistryConfig,
  type Workload,
} from "./workload.js";
import {
  allocateInternalAddresses,
  carveSubnets,
  gceAddressProblem,
  regionOfZone,
  type GceSubnet,
} from "./allocation.js";
import { cidrContains, cidrProblem, cidrsOverlap, inCidr, isIPv4 } from "./ipv4.js";
import { gceNameIssues, type Deployment } from "./names.js";
import { refuseProtoKey } from "./records.js";
import { sshRangeProblems } from "./ssh-ranges.js";

// ---------------------------------------------------------------------------------------------
// Value checks shared by the schema and the cross-field rules.

/**
 * GCE's default quota of static routes (the `ROUTES` quota of a project, which all its
 * networks share): `gce.routeQuota` unless the stack says its quota was raised.
 */
export const GCE_DEFAULT_ROUTE_QUOTA = 250;

/** RFC 1035 label, as GCE requires for instance, network and route names (≤ 63 chars). */
const RFC1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Endpoint and group names: safe as a container name, a file name and a shell word. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const ZONE = /^[a-z]+-[a-z]+[0-9]+-[a-z]$/;
const REGION = /^[a-z]+-[a-z]+[0-9]+$/;
const MACHINE_TYPE = /^[a-z][a-z0-9-]{0,62}$/;
const POSIX_USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const GCP_PROJECT = /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/;
const GCE_IMAGE = /^[A-Za-z0-9][A-Za-z0-9/_.-]{0,255}$/;
const DOCKER_IMAGE = /^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]{1,128})?(@sha256:[a-f0-9]{64})?$/;
const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const PROTOCOLS = ["tcp", "udp", "icmp", "sctp", "udplite", "esp", "ah", "gre"] as const;

const ipv4 = z.string().refine(isIPv4, { message: "is not an IPv4 address like 10.240.0.2" });
const cidr = z.string().superRefine((v, ctx) => {
  const problem = cidrProblem(v);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
const pattern = (re: RegExp, what: string) => z.string().regex(re, { message: `is not ${what}` });

// ---------------------------------------------------------------------------------------------
// The schema, as written in Pulumi.<stack>.yaml (without the `calico-docker:` prefix).

const hostSchema = z
  .object({
    name: pattern(RFC1035, "a valid host name (RFC 1035: a-z, 0-9 and '-', ≤ 63 chars)"),
    zone: pattern(ZONE, "a GCE zone like us-central1-a").optional(),
    machineType: pattern(MACHINE_TYPE, "a machine type like e2-small").optional(),
    /** `existing`: how to reach the host over SSH. `gce`: a reserved static external IP. */
    address: z
      .string()
      .refine((v) => isIPv4(v) || DNS_NAME.test(v), {
        message: "is not an IPv4 address or DNS name",
      })
      .optional(),
    /** The address Felix, BIRD and the plugin use between hosts. */
    internalAddress: ipv4.optional(),
    sshUser: pattern(POSIX_USER, "a valid user name").optional(),
    /** A block of the pool routed to this host as a whole (GCE `routeGranularity: host-block`). */
    endpointBlock: cidr.optional(),
  })
  .strict();

const endpointSchema = z
  .object({
    name: pattern(SAFE_NAME, "a safe name (letters, digits, '_', '.', '-'; ≤ 63 chars)").optional(),
    host: z.string(),
    ip: ipv4,
    group: pattern(SAFE_NAME, "a safe group name (letters, digits, '_', '.', '-'; ≤ 63 chars)"),
    ...workloadFields,
  })
  .strict();

const portNumber = z.number().int().min(1).max(65535);
const ruleSchema = z
  .object({
    group: pattern(SAFE_NAME, "a safe group name").optional(),
    cidr: cidr.optional(),
    protocol: z.enum(PROTOCOLS).optional(),
    port: z.union([portNumber, z.tuple([portNumber, portNumber])]).optional(),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if ((rule.group === undefined) === (rule.cidr === undefined)) {
      ctx.addIssue({ code: "custom", message: "needs exactly one of `group` or `cidr`" });
    }
    if (rule.port !== undefined) {
      if (rule.protocol !== "tcp" && rule.protocol !== "udp" && rule.protocol !== "sctp") {
        ctx.addIssue({
          code: "custom",
          path: ["port"],
          message: "needs protocol tcp, udp or sctp",
        });
      }
      if (Array.isArray(rule.port) && rule.port[0] > rule.port[1]) {
        ctx.addIssue({ code: "custom", path: ["port"], message: "range has min > max" });
      }
    }
  });

const groupRulesSchema = z
  .object({
    inbound: z.array(ruleSchema).default([]),
    outbound: z.array(ruleSchema).default([]),
  })
  .strict();

const bgpSchema = z
  .object({
    enabled: z.boolean().optional(),
    asNumber: z.number().int().min(1).max(4294967295).default(64511),
    peering: z.enum(["full-mesh", "route-reflector"]).default("full-mesh"),
    /** Host names that reflect routes (peering: route-reflector). Default: the controller. */
    routeReflectors: z.array(z.string()).min(1).optional(),
    session: z.enum(["multihop", "direct"]).default("multihop"),
    /** BIRD `connect delay time`: BIRD's default holds a new session back ~4 s. */
    connectDelaySeconds: z.number().int().min(1).max(300).default(1),
  })
  .strict();

const gceSchema = z
  .object({
    project: pattern(GCP_PROJECT, "a GCP project id").optional(),
    region: pattern(REGION, "a GCE region like us-central1").optional(),
    /** Default zone for hosts that name none. */
    zone: pattern(ZONE, "a GCE zone like us-central1-a").default("us-central1-a"),
    machineType: pattern(MACHINE_TYPE, "a machine type like e2-small").default("e2-small"),
    /** An existing VPC network to use instead of a dedicated one. */
    network: pattern(RFC1035, "a network name (RFC 1035)").optional(),
    /** The subnetwork of `network` the hosts go in (required with `network`). */
    subnetwork: pattern(RFC1035, "a subnetwork name (RFC 1035)").optional(),
    subnetCidr: cidr.default("10.240.0.0/16"),
    image: pattern(GCE_IMAGE, "an image path").default(
      "projects/kinvolk-public/global/images/family/flatcar-stable",
    ),
    routeGranularity: z.enum(["endpoint", "host-block"]).default("endpoint"),
    /**
     * The static routes this stack may create: GCE's default routes quota unless you had it
     * raised (docs/config.md). More routes than this are refused before anything is made.
     */
    routeQuota: z.number().int().min(1).max(1_000_000).default(GCE_DEFAULT_ROUTE_QUOTA),
    sshSourceRanges: z.array(cidr).default([]),
    /**
     * Flatcar's reboot after an update (locksmithd, /etc/flatcar/update.conf): `off` (the
     * default: updates wait for a reboot you make, one host at a time) or `reboot`, within
     * `window` when given (every host uses the same window). docs/day-two.md.
     */
    reboot: z
      .object({
        strategy: z.enum(["off", "reboot"]).default("off"),
        window: z
          .object({
            start: pattern(
              /^((Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?([01][0-9]|2[0-3]):[0-5][0-9]$/,
              'a start like "Sun 04:00" or "04:00"',
            ),
            length: pattern(
              /^([1-9][0-9]?h)?([1-9][0-9]?m)?$/,
              'a length like "1h" or "1h30m"',
            ).refine((v) => v !== "", { message: "is empty" }),
          })
          .strict()
          .optional(),
      })
      .strict()
      .refine((r) => r.strategy === "reboot" || r.window === undefined, {
        message: "only applies with strategy reboot",
        path: ["window"],
      })
      .prefault({}),
  })
  .strict();

const imagesSchema = z
  .object({
    felix: pattern(DOCKER_IMAGE, "a docker image reference").default("calico:felix"),
    bird: pattern(DOCKER_IMAGE, "a docker image reference").default("calico:bird"),
    plugin: pattern(DOCKER_IMAGE, "a docker image reference").default("calico:plugin"),
    util: pattern(DOCKER_IMAGE, "a docker image reference").default("calico:util"),
  })
  .strict();

const LOG_SEVERITY = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] as const;

const schema = z
  .object({
    platform: z.enum(["gce", "existing"]).default("gce"),
    controller: z.string().optional(),
    hosts: z.array(hostSchema).min(1, { message: "must list at least one host" }),
    endpoints: z.array(endpointSchema).default([]),
    endpointPool: cidr.default("192.168.0.0/16"),
    /** The endpoints' veth MTU: default 1460 on gce (a VPC's MTU), 1500 on existing. */
    vethMtu: z.number().int().min(576).max(9000).optional(),
    bgp: bgpSchema.default({
      asNumber: 64511,
      peering: "full-mesh",
      session: "multihop",
      connectDelaySeconds: 1,
    }),
    gce: gceSchema.prefault({}),
    ssh: z
      .object({ user: pattern(POSIX_USER, "a valid user name").optional() })
      .strict()
      .default({}),
    /** Present (never its value) when `calico-docker:sshPrivateKey` is set as a secret. */
    sshPrivateKey: z.unknown().optional(),
    groups: refuseProtoKey(
      z.record(pattern(SAFE_NAME, "a safe group name"), groupRulesSchema),
      "is not a valid group name",
    ).default({}),
    images: imagesSchema.prefault({}),
    /** Directories that workload volumes may bind from the host (nothing by default). */
    allowedHostPaths: z
      .array(
        z.string().superRefine((v, ctx) => {
          const problem = absolutePathProblem(v);
          if (problem) ctx.addIssue({ code: "custom", message: problem });
        }),
      )
      .default([]),
    /** Private registries the hosts log in to before pulling workload images. */
    registries: z.array(registrySchema).default([]),
    /** Stack secrets named by secretEnv/passwordSecret: presence only, never the value. */
    stackSecrets: refuseProtoKey(
      z.record(z.string(), z.object({ secret: z.boolean() }).strict()),
      "is not a stack secret's name",
    ).default({}),
    felix: z
      .object({
        resyncIntervalSecs: z.number().int().min(1).max(86400).default(60),
        logSeverity: z.enum(LOG_SEVERITY).default("INFO"),
      })
      .strict()
      .prefault({}),
    plugin: z
      .object({
        resyncDelayMs: z.number().int().min(0).max(60000).default(1000),
        requestTimeoutMs: z.number().int().min(100).max(600000).default(10000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

type Parsed = z.output<typeof schema>;

/**
 * Names a stack secret may not have: the schema's own top-level keys (every setting, and
 * the internal `stackSecrets`).
 */
export const RESERVED_SECRET_NAMES: ReadonlySet<string> = new Set(Object.keys(schema.shape));
export type Rule = z.output<typeof ruleSchema>;
export type GroupRules = z.output<typeof groupRulesSchema>;

// ---------------------------------------------------------------------------------------------
// The validated config: every default filled in, every cross-reference resolved.

export interface HostConfig {
  name: string;
  zone: string;
  /** The zone's region (GCE). */
  region: string;
  machineType: string;
  /** SSH address: the given one (existing, or a static IP on GCE), else unknown until created. */
  address?: string;
  internalAddress: string;
  sshUser: string;
  endpointBlock?: string;
}

export interface EndpointConfig {
  name: string;
  host: string;
  ip: string;
  group: string;
  /** Where the endpoint is in the stack config, for messages: `endpoints[2]`. */
  configPath: string;
  /** What runs in the container: the program's own (an image) or an attached one. */
  workload: Workload;
}

export interface CalicoConfig {
  platform: "gce" | "existing";
  controller: string;
  hosts: HostConfig[];
  endpoints: EndpointConfig[];
  endpointPool: string;
  /** The MTU of both ends of every endpoint's veth. */
  vethMtu: number;
  bgp: {
    enabled: boolean;
    asNumber: number;
    peering: "full-mesh" | "route-reflector";
    routeReflectors: string[];
    session: "multihop" | "direct";
    connectDelaySeconds: number;
  };
  gce: Omit<Parsed["gce"], "region"> & {
    /** The provider region: gce.region, else the first host's. */
    region: string;
    /** One subnet per region the hosts use, carved from subnetCidr. */
    subnets: GceSubnet[];
  };
  /** True when the stack supplies `sshPrivateKey` (a secret); else the program generates one. */
  sshKeySupplied: boolean;
  groups: Record<string, GroupRules>;
  images: Parsed["images"];
  felix: Parsed["felix"];
  plugin: Parsed["plugin"];
  /** Directories workload volumes may bind from (absolute, normalised). */
  allowedHostPaths: string[];
  registries: RegistryConfig[];
  /** Every stack secret the program reads (secretEnv values, registry passwords), sorted. */
  secretKeys: string[];
}

export interface ConfigIssue {
  /** Key path as written in the stack config, e.g. `endpoints[2].ip`. */
  path: string;
  message: string;
  value: unknown;
}

/** Every problem with a stack config, in one error. */
export class ConfigError extends Error {
  constructor(public readonly issues: ConfigIssue[]) {
    super(
      `invalid stack config (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
        issues.map((i) => `  - ${i.path}: ${i.message} (got ${show(i.value)})`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? "(config)" : out;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = raw;
  for (const part of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[part];
  }
  return cur;
}

/** Names whose data file would overwrite the plugin's own `felix.txt` or `groups.txt`. */
export const RESERVED_ENDPOINT_NAMES: readonly string[] = ["felix", "groups"];

/** The seed's default endpoint name: the IP with dots as underscores (`192_168_1_1`). */
export function defaultEndpointName(ip: string): string {
  return ip.replaceAll(".", "_");
}

/**
 * Validate a raw stack config (the `calico-docker:*` keys without their prefix) and return
 * the typed, defaulted config. Throws one `ConfigError` listing every problem. With the
 * deployment (the program passes its project and stack), GCE names are checked too.
 */
export function loadConfig(raw: unknown, deployment?: Deployment): CalicoConfig {
  const parsed = schema.safeParse(raw);
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
  const bad = (path: readonly PropertyKey[], message: string, value?: unknown) =>
    issues.push({ path: formatPath(path), message, value: value ?? valueAt(raw, path) });

  // Hosts: unique names, a controller among them, addresses per platform.
  const hostNames = new Set<string>();
  c.hosts.forEach((h, i) => {
    if (hostNames.has(h.name)) bad(["hosts", i, "name"], "duplicates another host's name");
    hostNames.add(h.name);
  });
  const controller = c.controller ?? c.hosts[0]!.name;
  if (!hostNames.has(controller)) bad(["controller"], "is not the name of a host");

  // GCE subnets are regional: one per region the hosts use, carved from subnetCidr.
  const hostRegions = c.hosts.map((h) => regionOfZone(h.zone ?? c.gce.zone));
  const regions = [...new Set(hostRegions)];
  const plan = carveSubnets(c.gce.subnetCidr, regions);
  const subnetOf = new Map(plan.subnets.map((s) => [s.region, s.cidr]));

  if (c.platform === "existing") {
    c.hosts.forEach((h, i) => {
      if (h.address === undefined) bad(["hosts", i, "address"], "is required on platform existing");
      else if (h.internalAddress === undefined && !isIPv4(h.address)) {
        bad(["hosts", i, "internalAddress"], "is required when `address` is a DNS name");
      }
      if (h.sshUser === undefined && c.ssh.user === undefined) {
        bad(["hosts", i, "sshUser"], "is required on platform existing (or set ssh.user)");
      }
      if (h.zone !== undefined) bad(["hosts", i, "zone"], "only applies to platform gce");
    });
    if (c.sshPrivateKey === undefined) {
      bad(["sshPrivateKey"], "is required on platform existing (pulumi config set --secret)");
    }
  } else {
    if (c.gce.network !== undefined && c.gce.subnetwork === undefined) {
      bad(["gce", "subnetwork"], "is required with gce.network (name its subnet and subnetCidr)");
    }
    if (c.gce.network !== undefined && regions.length > 1) {
      bad(
        ["hosts"],
        `must all be in one region with an existing gce.network (got ${regions.join(", ")})`,
      );
    }
    if (plan.prefixLength > 29) {
      bad(["gce", "subnetCidr"], `is too small to split into ${regions.length} regional subnets`);
    }
    if (c.gce.sshSourceRanges.length === 0) {
      bad(["gce", "sshSourceRanges"], "must list the ranges allowed to SSH to the hosts");
    }
    for (const p of sshRangeProblems(c.gce.sshSourceRanges)) {
      const key = ["gce", "sshSourceRanges", ...(p.index === undefined ? [] : [p.index])];
      bad(key, p.message);
    }
    c.hosts.forEach((h, i) => {
      if (h.address !== undefined && !isIPv4(h.address)) {
        bad(["hosts", i, "address"], "must be a reserved static IPv4 address on gce");
      }
      if (h.internalAddress !== undefined) {
        const subnet = subnetOf.get(hostRegions[i]!)!;
        const problem = gceAddressProblem(h.internalAddress, subnet, plan.size);
        if (problem === "outside") {
          bad(["hosts", i, "internalAddress"], `is outside its region's subnet ${subnet}`);
        } else if (problem === "reserved") {
          bad(["hosts", i, "internalAddress"], `is reserved by GCE in ${subnet}`);
        }
      }
    });
    if (cidrsOverlap(c.endpointPool, c.gce.subnetCidr)) {
      bad(["endpointPool"], `overlaps the host subnet gce.subnetCidr ${c.gce.subnetCidr}`);
    }
    if (c.bgp.enabled && c.bgp.session === "direct") {
      bad(["bgp", "session"], "cannot be direct on gce (hosts share no link); use multihop");
    }
  }

  // Internal addresses: given, else (existing) the SSH address, else (gce) the next free
  // address of the host's regional subnet.
  const allocated = allocateInternalAddresses(
    c.platform,
    c.hosts.map((h, i) => ({
      region: hostRegions[i]!,
      ...(h.address !== undefined ? { address: h.address } : {}),
      ...(h.internalAddress !== undefined ? { internalAddress: h.internalAddress } : {}),
    })),
    plan,
  );
  const internal = allocated.map((ip, i) => {
    if (ip === undefined && c.platform === "gce") {
      bad(["hosts", i, "internalAddress"], "cannot be allocated: the regional subnet is full");
    }
    return ip ?? "";
  });
  const seenInternal = new Map<string, number>();
  internal.forEach((ip, i) => {
    if (ip === "") return;
    const other = seenInternal.get(ip);
    if (other !== undefined) {
      bad(["hosts", i, "internalAddress"], `duplicates hosts[${other}]'s address`, ip);
    }
    seenInternal.set(ip, i);
    if (inCidr(ip, c.endpointPool)) {
      bad(["hosts", i, "internalAddress"], `lies in endpointPool ${c.endpointPool}`, ip);
    }
  });

  // Host blocks: inside the pool, not overlapping; required for host-block routes.
  c.hosts.forEach((h, i) => {
    if (h.endpointBlock === undefined) {
      if (c.platform === "gce" && c.gce.routeGranularity === "host-block") {
        bad(["hosts", i, "endpointBlock"], "is required with gce.routeGranularity host-block");
      }
      return;
    }
    if (!cidrContains(c.endpointPool, h.endpointBlock)) {
      bad(["hosts", i, "endpointBlock"], `is not inside endpointPool ${c.endpointPool}`);
    }
    c.hosts.slice(0, i).forEach((o, j) => {
      if (o.endpointBlock !== undefined && cidrsOverlap(o.endpointBlock, h.endpointBlock!)) {
        bad(["hosts", i, "endpointBlock"], `overlaps hosts[${j}].endpointBlock ${o.endpointBlock}`);
      }
    });
  });

  // Stack secrets named by endpoints and registries: key -> the config paths that name it.
  const secretUses = new Map<string, (string | number)[][]>();
  const secretUse = (path: (string | number)[], key: string) =>
    secretUses.set(key, [...(secretUses.get(key) ?? []), path]);

  // Endpoints: known host, inside pool and block, unique IPs and names.
  const hostByName = new Map(c.hosts.map((h) => [h.name, h]));
  const ips = new Map<string, number>();
  const names = new Map<string, number>();
  const endpoints: EndpointConfig[] = c.endpoints.map((e, i) => {
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
    if (RESERVED_ENDPOINT_NAMES.includes(name)) {
      bad(["endpoints", i, "name"], "is reserved: the plugin's own data file has that name", name);
    }
    const nameTwin = names.get(name);
    if (nameTwin !== undefined) {
      bad(["endpoints", i, "name"], `duplicates endpoints[${nameTwin}]'s name`, name);
    } else names.set(name, i);
    const { workload, issues: workloadIssues } = checkWorkload(
      e,
      RESERVED_SECRET_NAMES,
      c.allowedHostPaths,
    );
    for (const w of workloadIssues) bad(["endpoints", i, ...w.path], w.message, w.value);
    if (workload.kind === "run") {
      for (const [variable, key] of Object.entries(workload.secretEnv)) {
        secretUse(["endpoints", i, "secretEnv", variable], key);
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
  c.registries.forEach((r, i) => {
    if (RESERVED_SECRET_NAMES.has(r.passwordSecret)) {
      bad(
        ["registries", i, "passwordSecret"],
        "names a calico-docker setting; choose another name",
      );
    }
    secretUse(["registries", i, "passwordSecret"], r.passwordSecret);
    if (c.registries.findIndex((o) => o.address === r.address) < i) {
      bad(["registries", i, "address"], "duplicates another registry's address");
    }
  });
  // Every stack secret named is set, and set as a secret; every one set is named.
  for (const [key, uses] of secretUses) {
    const stored = c.stackSecrets[key];
    if (stored === undefined) {
      for (const path of uses) {
        bad(
          path,
          `names the stack secret ${key}, which is not set (pulumi config set --secret ${key} <value>)`,
        );
      }
    } else if (!stored.secret) {
      bad(
        [key],
        `is stored in plain text; it holds a secret (pulumi config set --secret ${key} <value>)`,
        "(value not shown)",
      );
    }
  }

  // Groups with rules: rules may only name groups that exist (have members or rules).
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

  // BGP: default on for existing hosts, route reflectors are hosts.
  const bgpEnabled = c.bgp.enabled ?? c.platform === "existing";
  const reflectors = c.bgp.routeReflectors ?? [controller];
  c.bgp.routeReflectors?.forEach((r, i) => {
    if (!hostNames.has(r)) bad(["bgp", "routeReflectors", i], "is not the name of a host");
  });
  if (c.bgp.routeReflectors !== undefined && c.bgp.peering !== "route-reflector") {
    bad(["bgp", "routeReflectors"], "only applies with bgp.peering route-reflector");
  }

  const region = c.gce.region ?? hostRegions[0]!;

  // GCE: one static route per endpoint (or per host block) must fit in the routes quota, or
  // `pulumi up` fails at apply time, long after the preview said yes.
  if (c.platform === "gce") {
    const perBlock = c.gce.routeGranularity === "host-block";
    const routes = perBlock
      ? c.hosts.filter((h) => h.endpointBlock !== undefined).length
      : endpoints.length;
    if (routes > c.gce.routeQuota) {
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
  }

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
      enabled: bgpEnabled,
      asNumber: c.bgp.asNumber,
      peering: c.bgp.peering,
      routeReflectors: c.bgp.peering === "route-reflector" ? reflectors : [],
      session: c.bgp.session,
      connectDelaySeconds: c.bgp.connectDelaySeconds,
    },
    gce: { ...c.gce, region, subnets: plan.subnets },
    sshKeySupplied: c.sshPrivateKey !== undefined,
    groups: c.groups,
    images: c.images,
    felix: c.felix,
    plugin: c.plugin,
    allowedHostPaths: c.allowedHostPaths,
    registries: c.registries,
    secretKeys: [...secretUses.keys()].sort(),
  };
  // With the project and stack known (the program), every GCE name must fit GCE's rules.
  if (deployment !== undefined) {
    const names = gceNameIssues(config, deployment);
    if (names.length > 0) throw new ConfigError(names);
  }
  return config;
}
