/**
 * The stack config's schema, as written in Pulumi.<stack>.yaml (without the `calico-docker:`
 * prefix): the shape of every key, its defaults and the checks of one value alone. What
 * relates values to each other (addresses in pools, names, secrets, quotas) is checked
 * after parsing, by the other modules of `components/config/`.
 *
 * A new setting goes into its section here (or a new top-level key into `schema`), with
 * its default; `types.ts` then says what the validated config holds, and `config.ts`
 * copies it over. Pure: no Pulumi, no I/O.
 */
import { z } from "zod";
import { cidrProblem, isIPv4 } from "../ipv4.js";
import { refuseProtoKey } from "../records.js";
import { absolutePathProblem, registrySchema, workloadFields } from "../workload.js";

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

// The sections of the schema, one per stack key that holds an object.

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

const sshSchema = z.object({ user: pattern(POSIX_USER, "a valid user name").optional() }).strict();

const LOG_SEVERITY = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] as const;

const felixSchema = z
  .object({
    resyncIntervalSecs: z.number().int().min(1).max(86400).default(1800),
    logSeverity: z.enum(LOG_SEVERITY).default("INFO"),
  })
  .strict();

const pluginSchema = z
  .object({
    resyncDelayMs: z.number().int().min(0).max(60000).default(1000),
    requestTimeoutMs: z.number().int().min(100).max(600000).default(10000),
  })
  .strict();

export const schema = z
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
    ssh: sshSchema.default({}),
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
    felix: felixSchema.prefault({}),
    plugin: pluginSchema.prefault({}),
  })
  .strict();

/**
 * Names a stack secret may not have: the schema's own top-level keys (every setting, and
 * the internal `stackSecrets`).
 */
export const RESERVED_SECRET_NAMES: ReadonlySet<string> = new Set(Object.keys(schema.shape));
export type Parsed = z.output<typeof schema>;
export type Rule = z.output<typeof ruleSchema>;
export type GroupRules = z.output<typeof groupRulesSchema>;

/** Parse a raw stack config: the parsed value, or zod's issues (paths into `raw`). */
export function parseConfig(raw: unknown) {
  return schema.safeParse(raw);
}
