/**
 * `npm run render -- --stack <name> [--out <dir>] [--dir <dir>]`
 *
 * Validates `Pulumi.<name>.yaml` and writes every rendered file into `out/<name>/` (one
 * folder per host), for review without a cloud account. Files of a previous render of the
 * same output folder are removed first (only those it wrote, listed in its manifest). No
 * symbolic link inside the output folder is ever followed: a render that meets one stops
 * before removing or writing anything. A bad stack file, manifest or --out is one line on
 * stderr naming it, and exit 1.
 */
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from "node:fs";
import { basename, dirname, isAbsolute, join, normalize, resolve, sep } from "node:path";
import { Command } from "commander";
import { ConfigError, loadConfig } from "../components/config.js";
import { buildModel, type ClusterModel } from "../components/model.js";
import {
  renderAll,
  STAND_IN_SSH_KEY,
  RenderError,
  type RenderedFile,
} from "../components/render/index.js";
import { rawFromStackConfig } from "../components/stack-keys.js";
import { readStackEntries, stackFilePath, StackFileError } from "../components/stackfile.js";

/** Lists what a render wrote, so the next render removes exactly that. */
export const MANIFEST = ".rendered-files.json";

class UsageError extends Error {}

function lstatOrMissing(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Is --out there (a folder, possibly through a link the user chose), or still to be made? */
function outDirExists(outDir: string): boolean {
  try {
    if (statSync(outDir).isDirectory()) return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return false;
    if (code === "ENOTDIR") throw new UsageError(`--out ${outDir}: lies inside a file`);
    throw error;
  }
  throw new UsageError(`--out ${outDir}: is not a directory`);
}

/**
 * The absolute path of `rel` inside `outDir`, reached through real folders only: no part of
 * it may be a symbolic link (a link is never followed, whatever it points at), every existing
 * parent is a folder and an existing last part is a regular file. `source` names where `rel`
 * came from, for the message when it leads outside.
 */
function pathInside(outDir: string, rel: string, source: string): string {
  const parts = normalize(rel).split(sep);
  if (rel === "" || isAbsolute(rel) || parts.includes("..") || parts.includes(".")) {
    throw new UsageError(`${source}: lists ${JSON.stringify(rel)}, outside ${outDir}`);
  }
  let path = outDir;
  for (const [i, part] of parts.entries()) {
    path = join(path, part);
    const st = lstatOrMissing(path);
    if (st === undefined) break; // the rest does not exist yet
    if (st.isSymbolicLink()) {
      throw new UsageError(
        `${path} is a symbolic link; npm run render never follows links inside --out ` +
          `(remove it, or choose another --out)`,
      );
    }
    const last = i === parts.length - 1;
    if (!last && !st.isDirectory()) throw new UsageError(`${path} is not a directory`);
    if (last && !st.isFile()) throw new UsageError(`${path} is not a regular file`);
  }
  return join(outDir, ...parts);
}

/** The files the previous render of `outDir` wrote (its manifest), or none. */
function previousFiles(outDir: string): string[] | undefined {
  const manifest = join(outDir, MANIFEST);
  const st = lstatOrMissing(manifest);
  if (st === undefined) {
    if (readdirSync(outDir).length > 0) {
      throw new UsageError(
        `${outDir} exists, is not empty and was not written by npm run render ` +
          `(no ${MANIFEST}); choose another --out or empty it`,
      );
    }
    return undefined;
  }
  if (!st.isFile()) throw new UsageError(`${manifest}: is not a regular file; remove it by hand`);
  let listed: unknown;
  try {
    listed = JSON.parse(readFileSync(manifest, "utf8"));
  } catch (error) {
    throw new UsageError(
      `${manifest}: is not valid JSON (${(error as Error).message}); remove it by hand`,
    );
  }
  if (!Array.isArray(listed) || !listed.every((p) => typeof p === "string")) {
    throw new UsageError(`${manifest}: is not a list of file names; remove it by hand`);
  }
  return listed as string[];
}

/**
 * Check every path this render touches (the previous render's files and the new ones) before
 * touching any, then remove the previous render's files and the folders they leave empty.
 */
function removePrevious(outDir: string, files: readonly RenderedFile[]): number {
  if (!outDirExists(outDir)) return 0;
  const listed = previousFiles(outDir);
  const manifest = join(outDir, MANIFEST);
  const old = (listed ?? []).map((rel) => pathInside(outDir, rel, manifest));
  for (const f of files) pathInside(outDir, f.path, "the render");
  if (listed === undefined) return 0;
  let removed = 0;
  const dirs = new Set<string>();
  for (const file of old) {
    if (lstatOrMissing(file) !== undefined) {
      unlinkSync(file);
      removed++;
    }
    for (let d = dirname(file); d.startsWith(outDir + sep); d = dirname(d)) dirs.add(d);
  }
  // Deepest first: remove the folders left empty.
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    if (lstatOrMissing(d)?.isDirectory() && readdirSync(d).length === 0) rmdirSync(d);
  }
  unlinkSync(manifest);
  return removed;
}

/**
 * Write a file as a new inode renamed into place: never through a link at `path` (symbolic
 * or hard), and a reader never sees half of it.
 */
function writeNew(path: string, content: string, mode: number): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    mode,
  );
  try {
    writeSync(fd, content);
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Make the folders of `rel` inside `outDir` one by one, never through a link. */
function makeParents(outDir: string, rel: string): void {
  const parts = normalize(rel).split(sep).slice(0, -1);
  let path = outDir;
  for (const part of parts) {
    path = join(path, part);
    const st = lstatOrMissing(path);
    if (st === undefined) mkdirSync(path);
    else if (st.isSymbolicLink() || !st.isDirectory()) pathInside(outDir, rel, "the render");
  }
}

function writeFiles(outDir: string, files: readonly RenderedFile[]): void {
  mkdirSync(outDir, { recursive: true });
  for (const f of files) {
    const path = pathInside(outDir, f.path, "the render");
    makeParents(outDir, f.path);
    writeNew(path, f.content, f.mode);
  }
  writeNew(
    join(outDir, MANIFEST),
    JSON.stringify(
      files.map((f) => f.path),
      null,
      2,
    ) + "\n",
    0o644,
  );
}

function summary(
  stack: string,
  model: ClusterModel,
  files: readonly RenderedFile[],
  outDir: string,
  removed: number,
  keyStandIn: boolean,
): string {
  const c = model.config;
  const sessions = model.hosts.reduce((n, h) => n + h.peers.length, 0) / 2;
  const bytes = files.reduce((n, f) => n + Buffer.byteLength(f.content), 0);
  const lines = [
    `stack ${stack}: platform ${c.platform}, pool ${c.endpointPool}, controller ${model.controller.name}`,
    `hosts (${model.hosts.length}):`,
    ...model.hosts.map((h) => {
      const roles = [
        h.isController ? "controller" : "",
        h.isRouteReflector ? "route reflector" : "",
      ]
        .filter(Boolean)
        .join(", ");
      return `  ${h.name.padEnd(16)} ${h.internalAddress.padEnd(15)} ${String(h.endpoints.length).padStart(3)} endpoint(s), ${h.peers.length} BGP peer(s)${roles ? ` [${roles}]` : ""}`;
    }),
    `endpoints: ${model.endpoints.length} in ${model.groups.length} group(s) (${model.groups.filter((g) => g.explicit).length} with explicit rules)`,
    c.platform === "gce"
      ? `GCE routes: ${model.routes.length} (${c.gce.routeGranularity})`
      : "GCE routes: none (platform existing)",
    c.bgp.enabled
      ? `BGP: AS ${c.bgp.asNumber}, ${c.bgp.peering}, ${c.bgp.session}, ${sessions} session(s)`
      : "BGP: off (no bird.conf)",
    `files: ${files.length} written to ${outDir} (${bytes} bytes)${removed > 0 ? `, ${removed} from the previous render removed` : ""}`,
  ];
  if (c.platform === "gce") {
    lines.push(
      `note: ignition.json holds a stand-in SSH key "${STAND_IN_SSH_KEY}"; the real key is generated at deploy`,
    );
  }
  if (keyStandIn) {
    lines.push(
      "note: the stack sets no sshPrivateKey; rendering needs none, deploying needs it " +
        "(pulumi config set --secret sshPrivateKey < <private key file>)",
    );
  }
  lines.push("note: endpoint ids are synthetic here; at deploy they are the containers' ids");
  return lines.join("\n");
}

export function main(argv: readonly string[]): number {
  const program = new Command()
    .name("npm run render --")
    .description("Write every rendered file of a stack into a folder, for review.")
    .requiredOption("-s, --stack <name>", "stack name: reads Pulumi.<name>.yaml")
    .option("-o, --out <dir>", "output folder (default: out/<stack>)")
    .option("-d, --dir <dir>", "folder holding Pulumi.<stack>.yaml", process.cwd())
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: "user" });
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : 2;
  }
  const opts = program.opts<{ stack: string; out?: string; dir: string }>();
  try {
    let file: string;
    try {
      file = stackFilePath(opts.stack, opts.dir);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (!existsSync(file)) {
      throw new UsageError(
        `no stack file ${file} (create it, or pass --dir to the folder holding it)`,
      );
    }
    const raw = rawFromStackConfig(readStackEntries(file));
    // Rendering reads no key: on platform existing a stack without its secret key (an
    // example, a fresh copy) renders with a stand-in for it, as GCE renders a stand-in
    // public key. Deploying still requires the real one.
    const keyStandIn = raw.platform === "existing" && raw.sshPrivateKey === undefined;
    if (keyStandIn) raw.sshPrivateKey = { secret: true };
    const model = buildModel(loadConfig(raw));
    const files = renderAll(model);
    const outDir = resolve(opts.out ?? join("out", opts.stack));
    const removed = removePrevious(outDir, files);
    writeFiles(outDir, files);
    console.log(summary(opts.stack, model, files, outDir, removed, keyStandIn));
    return 0;
  } catch (error) {
    if (
      error instanceof ConfigError ||
      error instanceof RenderError ||
      error instanceof UsageError ||
      error instanceof StackFileError
    ) {
      console.error(`render: ${error.message}`);
      return 1;
    }
    const errno = error as NodeJS.ErrnoException;
    if (typeof errno.code === "string" && typeof errno.syscall === "string") {
      // The file system refused (permissions, a full disk): its message names the path.
      console.error(`render: ${errno.message}`);
      return 1;
    }
    throw error;
  }
}

process.exitCode = main(process.argv.slice(2));
