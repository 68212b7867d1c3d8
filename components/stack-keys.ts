/**
 * Stack config entries (`{"calico-docker:hosts": ...}`, from Pulumi.<stack>.yaml or the
 * Pulumi runtime) to the raw object `loadConfig` validates. Pure.
 */
import { ConfigError, type ConfigIssue } from "./config.js";

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
]);
export const STACK_KEYS = new Set([
  ...OBJECT_KEYS,
  "platform",
  "controller",
  "endpointPool",
  "sshPrivateKey",
]);

/**
 * Turn stack config entries (`{"calico-docker:hosts": ...}`) into the raw object that
 * `loadConfig` takes. Values may be YAML-parsed objects (from Pulumi.<stack>.yaml) or JSON
 * strings (from the Pulumi runtime). Keys of other namespaces (`gcp:project`) are ignored;
 * an unknown key of ours is an error, so a typo never silently falls back to a default.
 */
export function rawFromStackConfig(entries: Record<string, unknown>): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  const issues: ConfigIssue[] = [];
  for (const [fullKey, value] of Object.entries(entries)) {
    const [ns, key] = fullKey.split(":", 2);
    if (ns !== PROJECT || key === undefined) continue;
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
  return raw;
}
