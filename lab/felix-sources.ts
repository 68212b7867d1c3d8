/**
 * Where the felix image's sources come from: upstream at the commits pinned in
 * images/felix/sources.lock, or a mirror folder (`--sources DIR`, `CALICO_SOURCES=DIR`) laid
 * out like `git archive` tarballs `<name>-<version>.tar.gz` with a SHA256SUMS file. A mirror
 * is checked before the build: its SHA256SUMS must hold, and every pinned file must be there
 * with the pinned hash. A mismatch is an error that names the file.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { sha256File } from "./cache.js";
import { LabError } from "./context.js";
import { REPO_ROOT } from "./state.js";

/** The recipe's folder: the build context of the felix image. */
export const FELIX_RECIPE_DIR = path.join(REPO_ROOT, "images", "felix");
export const SOURCES_LOCK = path.join(FELIX_RECIPE_DIR, "sources.lock");

/** The felix image cannot be built (or loaded): `up` stops with this, unless `--felix stand-in`. */
export class FelixImageError extends LabError {
  constructor(message: string) {
    super(message);
    this.name = "FelixImageError";
  }
}

export interface PinnedSource {
  name: string;
  version: string;
  repo: string;
  tag: string;
  commit: string;
  sha256: string;
}

/** `<name>-<version>.tar.gz`: the source's file in a mirror. */
export function mirrorFile(s: PinnedSource): string {
  return `${s.name}-${s.version}.tar.gz`;
}

/** The pinned sources of images/felix/sources.lock. */
export function readSourcesLock(file = SOURCES_LOCK): PinnedSource[] {
  const out: PinnedSource[] = [];
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const [name = "", version = "", repo = "", tag = "", commit = "", sha256 = "", ...rest] =
        line.split(/\s+/);
      const ok =
        rest.length === 0 &&
        /^[A-Za-z0-9._-]+$/.test(name + version) &&
        /^https:\/\//.test(repo) &&
        /^[0-9a-f]{40}$/.test(commit) &&
        /^[0-9a-f]{64}$/.test(sha256);
      if (!ok) throw new FelixImageError(`${file}:${i + 1}: not a pinned source: ${line}`);
      out.push({ name, version, repo, tag, commit, sha256 });
    });
  if (out.length === 0) throw new FelixImageError(`${file} pins no source`);
  return out;
}

export type SourcesChoice =
  { kind: "mirror"; dir: string; from: "--sources" | "CALICO_SOURCES" } | { kind: "upstream" };

/** `--sources DIR` first, then `$CALICO_SOURCES`, else upstream. */
export function chooseSources(
  given: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): SourcesChoice {
  if (given !== undefined && given.trim() !== "") {
    return { kind: "mirror", dir: path.resolve(given), from: "--sources" };
  }
  const fromEnv = env.CALICO_SOURCES?.trim();
  if (fromEnv !== undefined && fromEnv !== "") {
    return { kind: "mirror", dir: path.resolve(fromEnv), from: "CALICO_SOURCES" };
  }
  return { kind: "upstream" };
}

/** SHA256SUMS lines: file name → hash (the `*` of binary mode is dropped). */
function readSums(file: string): Map<string, string> {
  const sums = new Map<string, string>();
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((raw, i) => {
      if (raw.trim() === "") return;
      const m = /^([0-9a-f]{64}) [ *](\S+)$/.exec(raw.trim());
      if (!m) throw new FelixImageError(`${file}:${i + 1}: not a SHA256SUMS line: ${raw}`);
      sums.set(m[2]!, m[1]!);
    });
  return sums;
}

/**
 * Check a mirror folder: its SHA256SUMS (every line must hold) and every pinned source (there,
 * with the hash of sources.lock). Returns the file of each source, in lock order.
 */
export function verifyMirror(
  choice: Extract<SourcesChoice, { kind: "mirror" }>,
  pins: PinnedSource[],
): string[] {
  const where = `${choice.from}=${choice.dir}`;
  if (!existsSync(choice.dir) || !statSync(choice.dir).isDirectory()) {
    throw new FelixImageError(`${where}: no such folder of sources`);
  }
  const sumsFile = path.join(choice.dir, "SHA256SUMS");
  if (!existsSync(sumsFile)) throw new FelixImageError(`${where}: no SHA256SUMS in it`);
  const sums = readSums(sumsFile);
  const hashes = new Map<string, string>();
  const hashOf = (name: string): string => {
    const file = path.join(choice.dir, name);
    if (!existsSync(file)) throw new FelixImageError(`${where}: ${name} is missing`);
    const h = hashes.get(name) ?? sha256File(file);
    hashes.set(name, h);
    return h;
  };
  for (const [name, want] of sums) {
    const got = hashOf(name);
    if (got !== want) {
      throw new FelixImageError(
        `${where}: ${name} has SHA-256 ${got}, but its SHA256SUMS says ${want}`,
      );
    }
  }
  return pins.map((s) => {
    const name = mirrorFile(s);
    const got = hashOf(name);
    if (got !== s.sha256) {
      throw new FelixImageError(
        `${where}: ${name} has SHA-256 ${got}, but images/felix/sources.lock pins ${s.sha256} ` +
          `(${s.name} ${s.version}, commit ${s.commit})`,
      );
    }
    return path.join(choice.dir, name);
  });
}
