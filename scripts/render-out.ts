/**
 * The output folder of `npm run render`: removing the previous render's files and writing the
 * new ones without ever touching anything outside `--out`.
 *
 * Node cannot remove or create relative to an opened folder (no `unlinkat`/`openat`), so
 * every operation goes by path, and a path is only as safe as the folders it runs through.
 * Hence two rules, both checked before anything is removed or written:
 *
 * - No other user can change the way to a file: every folder from `/` down to `--out` is
 *   owned by this user or root, and one that its group or others can write must be sticky
 *   (like `/tmp`, where nobody else can rename what is ours); `--out` and every folder inside
 *   it are owned by this user, and neither its group nor others can write them. Otherwise
 *   another user could swap a checked folder for a link between the check and the removal.
 * - No symbolic link inside `--out` is ever followed: every path about to be removed or
 *   written is checked part by part.
 *
 * Within those folders only this user (and root) can change anything, so a path checked
 * stays what it was.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from "node:fs";
import { basename, dirname, isAbsolute, join, normalize, parse, relative, sep } from "node:path";

/** Lists what a render wrote, so the next render removes exactly that. */
export const MANIFEST = ".rendered-files.json";

/** A file to write: its path inside `--out`, its text and mode. */
export interface OutFile {
  path: string;
  content: string;
  mode: number;
}

/** An --out, manifest or path inside --out that the render refuses: one line for the user. */
export class OutError extends Error {}

/** --out: its real path, which every operation uses, and the path the user gave, for messages. */
interface Out {
  real: string;
  shown: string;
}

/** How the user would spell `path`, a path under `out.real`. */
function shown(out: Out, path: string): string {
  return path === out.real ? out.shown : join(out.shown, relative(out.real, path));
}

const me = (): number | undefined => process.getuid?.();
/** The sticky bit: in such a folder only an entry's owner (or root) may rename or remove it. */
const STICKY = 0o1000;

function lstatOrMissing(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

const modeOf = (st: Stats) => (st.mode & 0o7777).toString(8);

/**
 * Why another user could change folder `dir` (its entries), or undefined when none can.
 * `inside`: a folder of --out, which must be this user's and writable by nobody else; above
 * --out, root's folders and sticky ones (`/tmp`) are fine too.
 */
function othersCanChange(dir: string, st: Stats, inside: boolean): string | undefined {
  const uid = me();
  if (uid === undefined) return undefined; // no users to tell apart
  const owners = inside ? [uid] : [uid, 0];
  if (!owners.includes(st.uid)) {
    return `${dir} belongs to uid ${st.uid}, not to this user (uid ${uid})`;
  }
  const writable = st.mode & 0o022;
  if (writable === 0 || (!inside && (st.mode & STICKY) !== 0)) return undefined;
  const who = (writable & 0o002) !== 0 ? "other users" : "the users of its group";
  return `${dir} can be written by ${who} (mode ${modeOf(st)})`;
}

function refuseShared(dir: string, st: Stats, inside: boolean, outDir: string): void {
  const why = othersCanChange(dir, st, inside);
  if (why === undefined) return;
  throw new OutError(
    `--out ${outDir}: ${why}; npm run render writes only where no other user can swap a ` +
      `folder for a link (chmod go-w it, run as its owner, or choose another --out)`,
  );
}

/** Every folder from `/` down to `dir` (absolute, no links), `/` first. */
function foldersDownTo(dir: string): string[] {
  const chain: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    chain.unshift(d);
    if (d === parse(d).root) return chain;
  }
}

/**
 * Check --out and the folders above it; make --out (0755, one folder at a time, never
 * through a link) when it is missing. Returns its real path, which every later operation
 * uses, and whether it existed.
 */
function openOut(outDir: string): Out & { existed: boolean } {
  let existing = outDir;
  const missing: string[] = [];
  for (;;) {
    try {
      if (statSync(existing).isDirectory()) break;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOTDIR") throw new OutError(`--out ${outDir}: lies inside a file`);
      if (code !== "ENOENT") throw error;
      missing.unshift(basename(existing));
      existing = dirname(existing);
      continue;
    }
    throw new OutError(
      missing.length === 0
        ? `--out ${outDir}: is not a directory`
        : `--out ${outDir}: lies inside a file`,
    );
  }
  // --out (or the folder it will be made in) through the links the user chose, once.
  let real = realpathSync(existing);
  const chain = foldersDownTo(real);
  chain.forEach((d, i) => {
    const isOut = missing.length === 0 && i === chain.length - 1;
    refuseShared(d, lstatSync(d), isOut, outDir);
  });
  for (const part of missing) {
    real = join(real, part);
    mkdirSync(real, { mode: 0o755 }); // fails on anything planted there meanwhile
  }
  return { real, shown: outDir, existed: missing.length === 0 };
}

/**
 * The absolute path of `rel` inside `outDir`, reached through real folders only: no part of
 * it may be a symbolic link (a link is never followed, whatever it points at), every existing
 * parent is a folder of this user that nobody else can write, and an existing last part is
 * a regular file. `source` names where `rel` came from, for the message when it leads outside.
 */
function pathInside(out: Out, rel: string, source: string): string {
  const parts = normalize(rel).split(sep);
  if (rel === "" || isAbsolute(rel) || parts.includes("..") || parts.includes(".")) {
    throw new OutError(`${source}: lists ${JSON.stringify(rel)}, outside ${out.shown}`);
  }
  let path = out.real;
  for (const [i, part] of parts.entries()) {
    path = join(path, part);
    const st = lstatOrMissing(path);
    if (st === undefined) break; // the rest does not exist yet
    if (st.isSymbolicLink()) {
      throw new OutError(
        `${shown(out, path)} is a symbolic link; npm run render never follows links inside ` +
          `--out (remove it, or choose another --out)`,
      );
    }
    const last = i === parts.length - 1;
    if (!last && !st.isDirectory()) throw new OutError(`${shown(out, path)} is not a directory`);
    if (!last) refuseShared(shown(out, path), st, true, out.shown);
    if (last && !st.isFile()) throw new OutError(`${shown(out, path)} is not a regular file`);
  }
  return join(out.real, ...parts);
}

/** The files the previous render of `outDir` wrote (its manifest), or none. */
function previousFiles(out: Out): string[] | undefined {
  const manifest = join(out.shown, MANIFEST);
  const st = lstatOrMissing(join(out.real, MANIFEST));
  if (st === undefined) {
    if (readdirSync(out.real).length > 0) {
      throw new OutError(
        `${out.shown} exists, is not empty and was not written by npm run render ` +
          `(no ${MANIFEST}); choose another --out or empty it`,
      );
    }
    return undefined;
  }
  if (!st.isFile()) throw new OutError(`${manifest}: is not a regular file; remove it by hand`);
  let listed: unknown;
  try {
    listed = JSON.parse(readFileSync(join(out.real, MANIFEST), "utf8"));
  } catch (error) {
    throw new OutError(
      `${manifest}: is not valid JSON (${(error as Error).message}); remove it by hand`,
    );
  }
  if (!Array.isArray(listed) || !listed.every((p) => typeof p === "string")) {
    throw new OutError(`${manifest}: is not a list of file names; remove it by hand`);
  }
  return listed as string[];
}

/**
 * Check every path this render touches (the previous render's files and the new ones) before
 * touching any, then remove the previous render's files and the folders they leave empty.
 */
function removePrevious(out: Out, files: readonly OutFile[]): number {
  const listed = previousFiles(out);
  const manifest = join(out.shown, MANIFEST);
  const old = (listed ?? []).map((rel) => pathInside(out, rel, manifest));
  for (const f of files) pathInside(out, f.path, "the render");
  if (listed === undefined) return 0;
  let removed = 0;
  const dirs = new Set<string>();
  for (const file of old) {
    if (lstatOrMissing(file) !== undefined) {
      unlinkSync(file);
      removed++;
    }
    for (let d = dirname(file); d.startsWith(out.real + sep); d = dirname(d)) dirs.add(d);
  }
  // Deepest first: remove the folders left empty.
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    if (lstatOrMissing(d)?.isDirectory() && readdirSync(d).length === 0) rmdirSync(d);
  }
  unlinkSync(join(out.real, MANIFEST));
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

/** Make the folders of `rel` inside --out one by one (0755), never through a link. */
function makeParents(out: Out, rel: string): void {
  const parts = normalize(rel).split(sep).slice(0, -1);
  let path = out.real;
  for (const part of parts) {
    path = join(path, part);
    const st = lstatOrMissing(path);
    if (st === undefined) mkdirSync(path, { mode: 0o755 });
    else if (st.isSymbolicLink() || !st.isDirectory()) pathInside(out, rel, "the render");
  }
}

/**
 * Replace the previous render in `outDir` (the path the user gave, absolute) with `files`,
 * and list them in the manifest. Returns how many files of the previous render were removed.
 */
export function writeOut(outDir: string, files: readonly OutFile[]): number {
  const out = openOut(outDir);
  const removed = out.existed ? removePrevious(out, files) : 0;
  for (const f of files) {
    const path = pathInside(out, f.path, "the render");
    makeParents(out, f.path);
    writeNew(path, f.content, f.mode);
  }
  const list = files.map((f) => f.path);
  writeNew(join(out.real, MANIFEST), JSON.stringify(list, null, 2) + "\n", 0o644);
  return removed;
}
