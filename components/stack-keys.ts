/**
 * Stack config entries (`{"calico-docker:hosts": ...}`, from Pulumi.<stack>.yaml or the
 * Pulumi runtime) to the raw object `loadConfig` validates. Pure.
 */
import { ConfigError, RESERVED_SECRET_NAMES, type ConfigIssue } from "./config.js";

/** The Pulumi project name, and so the namespace of every config key (`calico-docker:hosts`). */
export const PROJECT = "calico-docker";

/** Top-level keys of the stack config whose values are objects/lists (JSON in Pulumi config). */
const OBJECT_KEYS = new Set([
  "hosts",
  "endpoints",
  "bgp",
  "gce",
  "ssh",
  "groups",
  "images",
  "felix",
  "plugin",
  "allowedHostPaths",
  "registries",
]);
export const STACK_KEYS = new Set([
  ...OBJECT_KEYS,
  "platform",
  "controller",
  "endpointPool",
  "sshPrivateKey",
]);

/**
 * The top-level keys that `endpoints[].secretEnv` and `registries[].passwordSecret` name in
 * these entries (unparseable values name none; loadConfig reports them).
 */
function namedSecretKeys(entries: Record<string, unknown>): Set<string> {
  const names = new Set<string>();
  const value = (key: string): unknown => {
    const v = entries[`${PROJECT}:${key}`];
    if (typeof v !== "string") return v;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return undefined;
    }
  };
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  for (const e of list(value("endpoints"))) {
    const secretEnv = (e as { secretEnv?: unknown } | null)?.secretEnv;
    if (secretEnv !== null && typeof secretEnv === "object") {
      for (const k of Object.values(secretEnv)) if (typeof k === "string") names.add(k);
    }
  }
  for (const r of list(value("registries"))) {
    const k = (r as { passwordSecret?: unknown } | null)?.passwordSecret;
    if (typeof k === "string") names.add(k);
  }
  for (const k of RESERVED_SECRET_NAMES) names.delete(k);
  return names;
}

/**
 * Turn stack config entries (`{"calico-docker:hosts": ...}`) into the raw object that
 * `loadConfig` takes. Values may be YAML-parsed objects (from Pulumi.<stack>.yaml) or JSON
 * strings (from the Pulumi runtime). Keys of other namespaces (`gcp:project`) are ignored;
 * an unknown key of ours is an error, so a typo never silently falls back to a default, and
 * so is a key of ours with a second colon (`calico-docker:hosts:later`), which would
 * otherwise be read as the key before it.
 *
 * A key that an endpoint's `secretEnv` or a registry's `passwordSecret` names is a stack
 * secret: only whether it is stored as one (`secure:` in the stack file, or `isSecret` from
 * the runtime) goes into the raw config (`stackSecrets`), never its value.
 */
export function rawFromStackConfig(
  entries: Record<string, unknown>,
  opts: { isSecret?: (fullKey: string) => boolean } = {},
): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  const issues: ConfigIssue[] = [];
  const named = namedSecretKeys(entries);
  const stackSecrets = new Map<string, { secret: boolean }>();
  for (const [fullKey, value] of Object.entries(entries)) {
    const key = ourKey(fullKey);
    if (key === undefined) continue;
    if (key.includes(":")) {
      // `calico-docker:hosts:later` must not pass for `calico-docker:hosts`.
      issues.push({
        path: key,
        message: `is not a calico-docker setting: a stack key is exactly ${PROJECT}:<setting>, with one colon`,
        value: fullKey,
      });
      continue;
    }
    if (named.has(key)) {
      const secure =
        (value !== null && typeof value === "object" && Object.hasOwn(value, "secure")) ||
        (opts.isSecret?.(fullKey) ?? false);
      stackSecrets.set(key, { secret: secure });
      continue;
    }
    if (!STACK_KEYS.has(key)) {
      issues.push({ path: key, message: "is not a calico-docker setting", value: fullKey });
      continue;
    }
    if (key === "sshPrivateKey") {
      raw[key] = { secret: true }; // never carry the key material into the config
    } else if (OBJECT_KEYS.has(key) && typeof value === "string") {
      try {
        raw[key] = JSON.parse(value) as unknown;
      } catch {
        issues.push({ path: key, message: "is not valid JSON", value });
      }
    } else {
      raw[key] = value;
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  // fromEntries defines own keys: `__proto__` stays a key (which the schema then refuses).
  if (stackSecrets.size > 0) raw.stackSecrets = Object.fromEntries(stackSecrets);
  return raw;
}

/** The key after `calico-docker:`, or undefined for a key of another namespace. */
function ourKey(fullKey: string): string | undefined {
  const colon = fullKey.indexOf(":");
  if (colon < 0 || fullKey.slice(0, colon) !== PROJECT) return undefined;
  return fullKey.slice(colon + 1);
}
