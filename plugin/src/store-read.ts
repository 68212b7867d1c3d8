/**
 * Reading the data directory's files, one at a time, with the last good content of each.
 *
 * What is refused: anything that is not a regular file (a symbolic link, a FIFO, a
 * directory), said once per version of it; a file larger than `maxFileBytes`. A file that
 * failed (too large, unreadable, does not parse) is remembered and not read again until its
 * inode, size or mtime changes; its last good content stays in force. A file written in
 * place is read only once it has been quiet for `settleMs` (and, if its last line has no
 * newline yet, for `incompleteSettleMs`): the caller is told how long to wait.
 */
import { constants, type Stats } from "node:fs";
import { lstat, open } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { parseDataFile, type FileContent } from "./parse.js";

/** Largest data file read (8 MiB, some 40,000 endpoint sections); a larger one is refused. */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

/** How a named file is looked at in a scan. */
export type Look =
  /** Complete (renamed in): read now if it changed. */
  | "now"
  /** Named by an event or quiet long enough: read if it changed and is not recent. */
  | "event"
  /** Periodic: read if its inode, size or mtime changed and it is not recent. */
  | "scan";

/** What looking at one file found. */
export type Loaded =
  /** Its contribution may have changed. */
  | { kind: "changed" }
  /** Nothing to do. */
  | { kind: "same" }
  /** It is gone from the directory (its record is still kept). */
  | { kind: "gone" }
  /** Not quiet yet: look again after `ms`. */
  | { kind: "wait"; ms: number }
  /** It changed under our feet: look again once it is quiet. */
  | { kind: "again" };

interface FileRecord {
  ino: number;
  size: number;
  mtimeMs: number;
  /** The last good content (null if the file never parsed or is refused). */
  content: FileContent | null;
  /** This version failed (too large, unreadable, does not parse): not read again. */
  failed: boolean;
  /** This version is not a regular file: refused. */
  refused: boolean;
}

export interface FileReaderOptions {
  readonly dir: string;
  readonly log: Logger;
  readonly settleMs: number;
  readonly incompleteSettleMs: number;
  readonly maxFileBytes: number;
}

export function isDataFile(name: string): boolean {
  return name.endsWith(".txt") && !name.startsWith(".");
}

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isBlockDevice() || st.isCharacterDevice()) return "a device";
  return "not a regular file";
}

/** Milliseconds a file still has to stay quiet, or 0 when it may be read. */
function quietLeft(mtimeMs: number, settleMs: number): number {
  const age = Date.now() - mtimeMs;
  // A mtime in the future (clock skew) does not hold the file back.
  return age >= 0 && age < settleMs ? settleMs - age : 0;
}

const SAME: Loaded = { kind: "same" };
const AGAIN: Loaded = { kind: "again" };

/** The files of one data directory, as last read. */
export class FileReader {
  private readonly files = new Map<string, FileRecord>();

  constructor(private readonly opts: FileReaderOptions) {}

  /** The names of every file with a record. */
  names(): string[] {
    return [...this.files.keys()];
  }

  /** What a file contributes now (null when nothing). */
  contentOf(name: string): FileContent | null {
    return this.files.get(name)?.content ?? null;
  }

  /** Forgets a file that is gone; returns whether it had a record. */
  forget(name: string): boolean {
    if (!this.files.delete(name)) return false;
    this.opts.log.info({ file: name }, "data file removed");
    return true;
  }

  /** Looks at one file (`force`: read it even if it failed before or is recent). */
  async load(name: string, look: Look, force: boolean): Promise<Loaded> {
    const { log, settleMs, incompleteSettleMs } = this.opts;
    const path = join(this.opts.dir, name);
    let st: Stats;
    try {
      st = await lstat(path);
    } catch {
      return this.files.has(name) ? { kind: "gone" } : SAME;
    }
    const rec = this.files.get(name);
    const same =
      rec !== undefined && rec.ino === st.ino && rec.size === st.size && rec.mtimeMs === st.mtimeMs;
    const stamp = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    if (!st.isFile()) {
      if (same && rec.refused) return SAME;
      log.warn(
        { file: name, kind: kindOf(st) },
        "refused: not a regular file; only regular files in the data directory are read",
      );
      this.files.set(name, { ...stamp, content: null, failed: false, refused: true });
      return rec?.content != null ? { kind: "changed" } : SAME;
    }
    if (same && !force && (rec.failed || look === "scan")) return SAME;
    if (look !== "now" && !force) {
      const wait = quietLeft(st.mtimeMs, settleMs);
      if (wait > 0) return { kind: "wait", ms: wait };
    }
    const lastGood = rec?.content ?? null;
    const fail = (message: string, fields: Record<string, unknown> = {}): Loaded => {
      log.error(
        { file: name, ...fields },
        `${message}; ${lastGood ? "its last good content stays in force" : "it is ignored until it changes"}`,
      );
      this.files.set(name, { ...stamp, content: lastGood, failed: true, refused: false });
      return SAME;
    };
    const read = await this.readText(path, st);
    if (read.kind === "again") return AGAIN;
    if (read.kind === "failed") return fail(read.message, read.fields);
    const text = read.text;
    if (text.trim() === "" && lastGood) {
      // Most likely caught between truncate and write: keep the last good content.
      log.warn({ file: name }, "data file is empty; its last good content stays in force");
      this.files.set(name, { ...stamp, content: lastGood, failed: false, refused: false });
      return SAME;
    }
    if (!text.endsWith("\n") && text.trim() !== "" && look !== "now" && !force) {
      // The last line may be cut short by a writer still at work.
      const wait = quietLeft(st.mtimeMs, incompleteSettleMs);
      if (wait > 0) return { kind: "wait", ms: wait };
    }
    const result = parseDataFile(name, text, lastGood ?? undefined);
    for (const p of result.problems) log.warn({ ...p }, p.message);
    if (result.content === null) return fail("data file does not parse");
    this.files.set(name, { ...stamp, content: result.content, failed: false, refused: false });
    return { kind: "changed" };
  }

  /** The text of a regular file, or why there is none. */
  private async readText(
    path: string,
    st: Stats,
  ): Promise<
    | { kind: "text"; text: string }
    | { kind: "again" }
    | { kind: "failed"; message: string; fields: Record<string, unknown> }
  > {
    const limit = this.opts.maxFileBytes;
    if (st.size > limit) {
      return {
        kind: "failed",
        message: "data file is too large",
        fields: { bytes: st.size, limit },
      };
    }
    try {
      const read = await this.readRegular(path, st);
      if (read === "too large") {
        return { kind: "failed", message: "data file is too large", fields: { limit } };
      }
      // "replaced": changing under our feet, read once it is quiet.
      if (read === "replaced") return { kind: "again" };
      return { kind: "text", text: read };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ELOOP: it became a symlink in between; it is looked at again.
      if (code === "ELOOP") return { kind: "again" };
      return {
        kind: "failed",
        message: "cannot read data file",
        fields: { err: code ?? (err as Error).message },
      };
    }
  }

  /**
   * Reads a regular file without following a symlink and without blocking on a FIFO, and
   * never more than the size limit (+1 byte, to tell that it is over).
   */
  private async readRegular(path: string, seen: Stats): Promise<string | "too large" | "replaced"> {
    const limit = this.opts.maxFileBytes;
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.ino !== seen.ino) return "replaced";
      if (st.size > limit) return "too large";
      const buf = Buffer.alloc(Math.min(st.size, limit) + 1);
      let length = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length === buf.length) {
          if (length > limit) return "too large";
          // It grew while being read: read it again once it is quiet.
          return "replaced";
        }
      }
      return buf.subarray(0, length).toString("utf8");
    } finally {
      await fh.close();
    }
  }
}
