/**
 * Reading a stack's config the way the program does, without the Pulumi CLI: for
 * `npm run render`, the lab and the tests. Pure apart from reading the file.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse } from "yaml";
import { loadConfig, type CalicoConfig } from "./config.js";
import { rawFromStackConfig } from "./stack-keys.js";

/** The path of `Pulumi.<stack>.yaml` in `dir` (default: the repository root). */
export function stackFilePath(stack: string, dir = process.cwd()): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(stack)) {
    throw new Error(`stack name ${JSON.stringify(stack)} may only hold letters, digits, _ . -`);
  }
  return resolve(dir, `Pulumi.${stack}.yaml`);
}

/** The `config:` entries of a stack file (`{"calico-docker:hosts": [...], ...}`). */
export function readStackEntries(file: string): Record<string, unknown> {
  const doc: unknown = parse(readFileSync(file, "utf8"));
  if (doc === null || typeof doc !== "object") return {};
  const config = (doc as { config?: unknown }).config;
  if (config === undefined || config === null) return {};
  if (typeof config !== "object" || Array.isArray(config)) {
    throw new Error(`${file}: \`config:\` must be a mapping`);
  }
  return config as Record<string, unknown>;
}

/** Validate a stack file into a config; throws ConfigError naming every bad key. */
export function loadStackFile(file: string): CalicoConfig {
  return loadConfig(rawFromStackConfig(readStackEntries(file)));
}
