/**
 * Reading a stack's config the way the program does, without the Pulumi CLI: for
 * `npm run render`, the lab and the tests. Pure apart from reading the file.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { isMap, LineCounter, parseDocument, type Node } from "yaml";
import { loadConfig, type CalicoConfig } from "./config.js";
import { rawFromStackConfig } from "./stack-keys.js";

/** A stack file that cannot be read or is not a YAML mapping: one line naming file and line. */
export class StackFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StackFileError";
  }
}

/** The path of `Pulumi.<stack>.yaml` in `dir` (default: the repository root). */
export function stackFilePath(stack: string, dir = process.cwd()): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(stack)) {
    throw new Error(`stack name ${JSON.stringify(stack)} may only hold letters, digits, _ . -`);
  }
  return resolve(dir, `Pulumi.${stack}.yaml`);
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "does not exist"
        : code === "EISDIR"
          ? "is a directory"
          : code === "EACCES"
            ? "cannot be read (permission denied)"
            : `cannot be read (${code ?? (error as Error).message})`;
    throw new StackFileError(`${file}: ${why}`);
  }
}

/**
 * The `config:` entries of a stack file (`{"calico-docker:hosts": [...], ...}`). Duplicate
 * keys, tabs as indentation and every other YAML error, a document that is not a mapping and a
 * `config:` that is not one throw a StackFileError naming the file, line and column.
 */
export function readStackEntries(file: string): Record<string, unknown> {
  const lines = new LineCounter();
  const doc = parseDocument(readText(file), { lineCounter: lines, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return `${file}, line ${line}, column ${col}`;
  };
  const first = doc.errors[0];
  if (first !== undefined) {
    const reason = first.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
    const more = doc.errors.length > 1 ? ` (and ${doc.errors.length - 1} more problem(s))` : "";
    throw new StackFileError(`${at(first.pos[0])}: ${reason}${more}`);
  }
  const top = doc.contents;
  if (top === null || (top as Node & { value?: unknown }).value === null) return {};
  if (!isMap(top)) {
    throw new StackFileError(
      `${at(top.range?.[0] ?? 0)}: a stack file must be a mapping (with a \`config:\` key)`,
    );
  }
  const config = top.get("config", true) as Node | undefined;
  if (config === undefined || (config as Node & { value?: unknown }).value === null) return {};
  if (!isMap(config)) {
    throw new StackFileError(`${at(config.range?.[0] ?? 0)}: \`config:\` must be a mapping`);
  }
  return config.toJS(doc) as Record<string, unknown>;
}

/** Validate a stack file into a config; throws ConfigError naming every bad key. */
export function loadStackFile(file: string): CalicoConfig {
  return loadConfig(rawFromStackConfig(readStackEntries(file)));
}
