/**
 * Workload fields of an endpoint: the image it runs, its command, environment (plain and
 * secret), limits, volumes and labels, or `attach: true` for a container something else runs.
 * The zod shape and the cross-field checks; `config.ts` composes them into the stack schema.
 *
 * Pure: no Pulumi, no I/O.
 *
 * Secrets: a Pulumi config value is secret as a whole, so one structured `endpoints` key
 * cannot hide a single value inside it. An endpoint therefore names its secret values:
 * `secretEnv: {DB_PASSWORD: dbPassword}` reads the stack's top-level secret key
 * `calico-docker:dbPassword` (`pulumi config set --secret dbPassword ...`); `index.ts` reads
 * every named key with `config.requireSecret`. Registry passwords work the same way
 * (`registries[].passwordSecret`).
 */
import { z } from "zod";
import { refuseProtoKey } from "./records.js";

/**
 * A Docker image reference: `[registry[:port]/]path[:tag][@digest]` (Docker's reference
 * grammar: lower-case path components, a tag of up to 128 word characters, a digest).
 */
export const IMAGE_REF =
  /^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?)\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
/** An environment variable name (POSIX shell style). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The name of a top-level stack config key that holds a secret. */
export const SECRET_KEY = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
/** A Docker label key; `calico-docker.*` is the program's own. */
export const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$/;
/** A container user: a name or uid, optionally `:group` or `:gid`. */
export const CONTAINER_USER =
  /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$/;
/** Memory with a unit (Docker's `--memory`): `512m`, `1g`, `262144k`. */
export const MEMORY = /^([1-9][0-9]{0,6})([kmg])$/i;
/** Labels the program sets on every endpoint container. */
export const RESERVED_LABEL_PREFIX = "calico-docker.";
/** Docker refuses a memory limit below 6 MiB. */
export const MIN_MEMORY_MB = 6;
/**
 * The largest memory limit taken (32 TiB, in MiB): GCE's largest machines have 32 TB, so
 * anything above is a typo (`1000000g`), not a host; Docker would fail on it at run time.
 */
export const MAX_MEMORY_MB = 32 * 1024 * 1024;
/** Docker's smallest CPU limit (`--cpus`); below it `docker run` fails at deploy time. */
export const MIN_CPUS = 0.01;
/**
 * Container paths the container needs for itself: a volume over `/` would replace its root,
 * over `/proc`, `/sys` or `/dev` (or below them) the kernel's views Docker mounts there;
 * Docker refuses some of them only at run time and takes the others.
 */
export const SYSTEM_CONTAINER_PATHS: readonly string[] = ["/proc", "/sys", "/dev"];

/** The problem with a volume's container path, or undefined. */
export function containerPathProblem(value: string): string | undefined {
  if (value === "/") return "is the container's root; mount the volume at a directory below it";
  const system = SYSTEM_CONTAINER_PATHS.find((dir) => pathWithin(dir, value));
  if (system !== undefined) {
    return `is ${system === value ? "" : "inside "}${system}, which the container's kernel view needs (/proc, /sys and /dev are not for volumes)`;
  }
  return undefined;
}

/** The problem with an absolute path, or undefined: absolute, normalised, printable. */
export function absolutePathProblem(value: string): string | undefined {
  if (!value.startsWith("/")) return "is not an absolute path";
  // Printable ASCII except the characters that make a path hard to quote or read.
  if (!/^[A-Za-z0-9_./@+=,:~-]+$/.test(value)) {
    return "holds characters other than letters, digits and _ . / @ + = , : ~ -";
  }
  const parts = value.split("/").slice(1);
  if (value !== "/" && parts.some((p) => p === "" || p === "." || p === "..")) {
    return "is not a normalised path (no //, /./, /../ or trailing /)";
  }
  if (value.length > 1024) return "is longer than 1024 characters";
  return undefined;
}

const absolutePath = z.string().superRefine((v, ctx) => {
  const problem = absolutePathProblem(v);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** True when `path` is `dir` or below it (both absolute and normalised). */
export function pathWithin(dir: string, path: string): boolean {
  if (dir === "/") return true;
  return path === dir || path.startsWith(`${dir}/`);
}

const volumeSchema = z
  .object({
    hostPath: absolutePath,
    containerPath: absolutePath.superRefine((v, ctx) => {
      const problem = containerPathProblem(v);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
    readOnly: z.boolean().default(false),
  })
  .strict();

/** A record whose keys must match `re`; a bad key is reported at its own path, by name. */
function keyedRecord<T extends z.ZodType>(re: RegExp, what: string, value: T) {
  const record = z.record(z.string(), value).superRefine((record, ctx) => {
    for (const key of Object.keys(record)) {
      if (!re.test(key)) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `the name ${JSON.stringify(key)} is not ${what}`,
        });
      }
    }
  });
  return refuseProtoKey(record, `the name "__proto__" is not ${what}`);
}

const envValue = z
  .union([z.string(), z.number(), z.boolean()])
  .transform((v) => String(v))
  .refine((v) => !v.includes("\0"), { message: "holds a NUL character" });

/**
 * The workload fields of an `endpoints[]` entry (spread into the endpoint schema). Nothing
 * here can make a container privileged or put it on the host's network: there is no key
 * for either, and the schema refuses unknown keys.
 */
export const workloadFields = {
  /** Any reference the host's Docker can pull; default: the util image. */
  image: z
    .string()
    .regex(IMAGE_REF, {
      message:
        "is not a docker image reference like nginx:1.27 or registry:5000/app@sha256:<64 hex>",
    })
    .optional(),
  /** The container's command (arguments after the image's entrypoint). */
  command: z
    .array(
      z
        .string()
        .max(4096)
        .refine((v) => !v.includes("\0"), { message: "holds a NUL character" }),
    )
    .min(1, { message: "must hold at least one word (leave it out for the image's own)" })
    .optional(),
  env: keyedRecord(ENV_NAME, "an environment variable name", envValue).optional(),
  /** Environment variable -> the name of a stack secret (`pulumi config set --secret`). */
  secretEnv: keyedRecord(
    ENV_NAME,
    "an environment variable name",
    z.string().regex(SECRET_KEY, {
      message: "is not a secret's key name (a letter, then letters, digits, '_', '-')",
    }),
  ).optional(),
  workingDir: absolutePath.optional(),
  user: z
    .string()
    .regex(CONTAINER_USER, { message: "is not a user like app, 1000 or 1000:1000" })
    .optional(),
  /** Memory limit: a number of MiB, or a size like `512m` or `1g`. */
  memory: z.union([z.number().int(), z.string()]).optional(),
  /** CPU limit in cores (`--cpus`), e.g. 0.5. */
  cpus: z
    .number()
    .positive({ message: "must be more than 0" })
    .min(MIN_CPUS, { message: `is below ${MIN_CPUS}, the smallest CPU limit Docker takes` })
    .max(1024)
    .optional(),
  volumes: z.array(volumeSchema).optional(),
  labels: keyedRecord(
    LABEL_KEY,
    "a label key (letters, digits, '.', '_', '/', '-')",
    z
      .string()
      .max(4096)
      .refine((v) => !v.includes("\0"), { message: "holds a NUL character" }),
  ).optional(),
  /** Wire the running container called `name` instead of creating one. */
  attach: z.boolean().default(false),
};

/** A private registry the hosts pull workload images from. */
export const registrySchema = z
  .object({
    /** Registry host (and port), e.g. `registry.example.com` or `10.0.0.5:5000`. */
    address: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?(:[0-9]{1,5})?$/, {
      message: "is not a registry address like registry.example.com:5000",
    }),
    username: z
      .string()
      .min(1)
      .max(256)
      .regex(/^[^\s]+$/, { message: "holds white space" }),
    /** The name of the stack secret that holds the password or token. */
    passwordSecret: z.string().regex(SECRET_KEY, {
      message: "is not a secret's key name (a letter, then letters, digits, '_', '-')",
    }),
  })
  .strict();

export type RegistryConfig = z.output<typeof registrySchema>;

interface ParsedWorkload {
  image?: string | undefined;
  command?: string[] | undefined;
  env?: Record<string, string> | undefined;
  secretEnv?: Record<string, string> | undefined;
  workingDir?: string | undefined;
  user?: string | undefined;
  memory?: number | string | undefined;
  cpus?: number | undefined;
  volumes?: { hostPath: string; containerPath: string; readOnly: boolean }[] | undefined;
  labels?: Record<string, string> | undefined;
  attach: boolean;
}

/** What an endpoint runs: created by the program (`run`) or attached (`attach`). */
export type Workload =
  | {
      kind: "run";
      /** The image to pull on the endpoint's host; undefined: the util image. */
      image?: string;
      command?: string[];
      env: Record<string, string>;
      /** Environment variable -> stack secret key. */
      secretEnv: Record<string, string>;
      workingDir?: string;
      user?: string;
      /** MiB. */
      memoryMb?: number;
      cpus?: number;
      volumes: { hostPath: string; containerPath: string; readOnly: boolean }[];
      labels: Record<string, string>;
    }
  | { kind: "attach" };

/** A problem found by `checkWorkload`: a path below the endpoint, a message, the value. */
export interface WorkloadIssue {
  path: (string | number)[];
  message: string;
  value?: unknown;
}

/** Memory in MiB from a number of MiB or a size with a unit; undefined when it is not one. */
export function memoryMb(value: number | string): number | undefined {
  if (typeof value === "number") return value;
  const m = MEMORY.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  return unit === "g" ? n * 1024 : unit === "m" ? n : n / 1024;
}

/**
 * The cross-field rules of one endpoint's workload fields, and the validated workload.
 * `stackKeys`: the program's own top-level keys, which a secret must not be named after;
 * `allowedHostPaths`: the directories host-path volumes may come from.
 */
export function checkWorkload(
  e: ParsedWorkload & { name?: string | undefined },
  stackKeys: ReadonlySet<string>,
  allowedHostPaths: readonly string[],
): { workload: Workload; issues: WorkloadIssue[] } {
  const issues: WorkloadIssue[] = [];
  if (e.attach) {
    if (e.name === undefined) {
      issues.push({
        path: ["name"],
        message: "is required with attach: true (the name of the running container to wire)",
      });
    }
    const runOnly = [
      "image",
      "command",
      "env",
      "secretEnv",
      "workingDir",
      "user",
      "memory",
      "cpus",
      "volumes",
      "labels",
    ] as const;
    for (const key of runOnly) {
      if (e[key] !== undefined) {
        issues.push({
          path: [key],
          message: "does not apply with attach: true (the container is run by something else)",
        });
      }
    }
    return { workload: { kind: "attach" }, issues };
  }

  const env = e.env ?? {};
  const secretEnv = e.secretEnv ?? {};
  for (const [name, key] of Object.entries(secretEnv)) {
    if (Object.hasOwn(env, name)) {
      issues.push({ path: ["secretEnv", name], message: "is also set in env", value: key });
    }
    if (stackKeys.has(key)) {
      issues.push({
        path: ["secretEnv", name],
        message: "names a calico-docker setting, not a secret of its own; choose another name",
        value: key,
      });
    }
  }

  let mb: number | undefined;
  if (e.memory !== undefined) {
    mb = memoryMb(e.memory);
    if (mb === undefined) {
      issues.push({
        path: ["memory"],
        message: "is not a size like 512m or 1g, or a number of MiB",
      });
    } else if (mb < MIN_MEMORY_MB) {
      issues.push({
        path: ["memory"],
        message: `is below Docker's minimum of ${MIN_MEMORY_MB} MiB`,
      });
    } else if (!Number.isInteger(mb)) {
      issues.push({ path: ["memory"], message: "is not a whole number of MiB" });
    } else if (mb > MAX_MEMORY_MB) {
      issues.push({
        path: ["memory"],
        message: `is above ${MAX_MEMORY_MB / 1024 / 1024} TiB (${MAX_MEMORY_MB} MiB), more than any host has`,
      });
    }
  }

  const volumes = e.volumes ?? [];
  const seen = new Map<string, number>();
  volumes.forEach((v, i) => {
    if (!allowedHostPaths.some((dir) => pathWithin(dir, v.hostPath))) {
      issues.push({
        path: ["volumes", i, "hostPath"],
        message:
          allowedHostPaths.length === 0
            ? "is not allowed: no host path is, until allowedHostPaths lists its directory"
            : `is outside allowedHostPaths (${allowedHostPaths.join(", ")})`,
      });
    }
    const twin = seen.get(v.containerPath);
    if (twin !== undefined) {
      issues.push({
        path: ["volumes", i, "containerPath"],
        message: `duplicates volumes[${twin}].containerPath`,
      });
    } else seen.set(v.containerPath, i);
  });

  const labels = e.labels ?? {};
  for (const key of Object.keys(labels)) {
    if (key.startsWith(RESERVED_LABEL_PREFIX)) {
      issues.push({
        path: ["labels", key],
        message: `is reserved: the program sets the ${RESERVED_LABEL_PREFIX}* labels`,
        value: key,
      });
    }
  }

  return {
    workload: {
      kind: "run",
      ...(e.image !== undefined ? { image: e.image } : {}),
      ...(e.command !== undefined ? { command: e.command } : {}),
      env,
      secretEnv,
      ...(e.workingDir !== undefined ? { workingDir: e.workingDir } : {}),
      ...(e.user !== undefined ? { user: e.user } : {}),
      ...(mb !== undefined ? { memoryMb: mb } : {}),
      ...(e.cpus !== undefined ? { cpus: e.cpus } : {}),
      volumes,
      labels,
    },
    issues,
  };
}
