/**
 * Problems with a stack config: each names its key path as written in the stack file, says
 * why, and shows the value; `ConfigError` carries every one of them at once. Pure.
 */

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

/** The value at `path` in the raw config (own keys only), or undefined. */
export function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = raw;
  for (const part of path) {
    if (cur === null || typeof cur !== "object" || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[part];
  }
  return cur;
}

/**
 * Records one problem: the key path (as parts: `["endpoints", 2, "ip"]`), why, and the value
 * to show (by default the one the raw config holds at that path).
 */
export type Report = (path: readonly PropertyKey[], message: string, value?: unknown) => void;

/** A `Report` that adds to `issues`, looking values up in `raw`. */
export function reporter(raw: unknown, issues: ConfigIssue[]): Report {
  return (path, message, value) =>
    issues.push({ path: formatPath(path), message, value: value ?? valueAt(raw, path) });
}
