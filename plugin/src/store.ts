/**
 * Watches the data directory and keeps the merged state, with the last good content of
 * every file.
 *
 * When a file is read:
 * - renamed into the directory by an atomic writer (the rename of its temporary file is
 *   seen in the same batch of events): at once;
 * - written in place: only once it has been quiet (no event, mtime unchanged) for
 *   `settleMs`, and, if its last line has no newline yet (a writer cut short), for
 *   `incompleteSettleMs`;
 * - a periodic rescan compares each file's inode, size and mtime, as a safety net.
 *
 * What is refused: anything that is not a regular file (a symbolic link, a FIFO, a
 * directory), said once per version of it; a file larger than `maxFileBytes`. A file that
 * failed (too large, unreadable, does not parse) is remembered and not read again until its
 * inode, size or mtime changes; its last good content stays in force. A data directory
 * replaced by another (`mv`, a re-pointed symlink) is noticed at once through a watch on its
 * parent.
 */
import { EventEmitter } from "node:events";
import { constants, lstatSync, statSync, watch, type FSWatcher, type Stats } from "node:fs";
import { lstat, open, readdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Logger } from "pino";
import { parseDataFile, type FileContent, type Problem } from "./parse.js";
import {
  applyFileChanges,
  DefinitionCounts,
  mergeFiles,
  type State,
  type StateDelta,
} from "./state.js";

/** What the endpoint and network plugins may tune of their data store. */
export type DataStoreTuning = Pick<
  DataStoreOptions,
  "settleMs" | "incompleteSettleMs" | "maxFileBytes" | "rescanIntervalMs" | "pollMs"
>;

/** The tuning options that are set in `opts` (exactOptionalPropertyTypes-safe). */
export function storeTuning(opts: DataStoreTuning): DataStoreTuning {
  const out: { -readonly [K in keyof DataStoreTuning]: DataStoreTuning[K] } = {};
  for (const key of [
    "settleMs",
    "incompleteSettleMs",
    "maxFileBytes",
    "rescanIntervalMs",
    "pollMs",
  ] as const) {
    if (opts[key] !== undefined) out[key] = opts[key];
  }
  return out;
}

/** Largest data file read (8 MiB, some 40,000 endpoint sections); a larger one is refused. */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

export interface DataStoreOptions {
  readonly dir: string;
  readonly logger: Logger;
  /** Quiet time before a file written in place is read (default 100 ms). */
  readonly settleMs?: number;
  /** Quiet time before a file whose last line has no newline is read (default 1000 ms). */
  readonly incompleteSettleMs?: number;
  /** Largest data file read (default MAX_FILE_BYTES). */
  readonly maxFileBytes?: number;
  /** Safety-net rescan interval (default 5000 ms); 0 disables it. */
  readonly rescanIntervalMs?: number;
  /** How often to look for a data directory that does not exist yet (default 500 ms). */
  readonly pollMs?: number;
  /** Watch for changes (default true). false = the state changes only on rescan(). */
  readonly watch?: boolean;
}

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

export interface DataStoreEvents {
  /**
   * The merged state changed. `delta` says what changed when only endpoints, hosts or
   * groups defined once were touched; null means anything may have changed.
   */
  change: [state: State, delta: StateDelta | null];
}

function isDataFile(name: string): boolean {
  return name.endsWith(".txt") && !name.startsWith(".");
}

function problemText(p: Problem): string {
  return p.message;
}

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isBlockDevice() || st.isCharacterDevice()) return "a device";
  return "not a regular file";
}

/** Stable text of a state, to tell whether anything changed. */
function fingerprint(state: State): string {
  const strip = <T extends { file: string }>(x: T): Omit<T, "file"> => {
    const rest: Partial<T> = { ...x };
    delete rest.file;
    return rest as Omit<T, "file">;
  };
  return JSON.stringify([
    [...state.felix.entries()].sort().map(([k, v]) => [k, strip(v)]),
    [...state.endpoints.entries()].sort().map(([k, v]) => [k, strip(v)]),
    [...state.groupRules.entries()].sort().map(([k, v]) => [k, strip(v)]),
  ]);
}

/** How a named file is looked at in a scan. */
type Look =
  /** Complete (renamed in): read now if it changed. */
  | "now"
  /** Named by an event or quiet long enough: read if it changed and is not recent. */
  | "event"
  /** Periodic: read if its inode, size or mtime changed and it is not recent. */
  | "scan";

export class DataStore extends EventEmitter<DataStoreEvents> {
  private readonly dir: string;
  private readonly base: string;
  private readonly log: Logger;
  private readonly settleMs: number;
  private readonly incompleteSettleMs: number;
  private readonly maxFileBytes: number;
  private readonly rescanIntervalMs: number;
  private readonly pollMs: number;
  private readonly watchEnabled: boolean;
  private readonly files = new Map<string, FileRecord>();
  /** The merged state; updated in place when a change touches no conflicting name. */
  private current: State = { felix: new Map(), endpoints: new Map(), groupRules: new Map() };
  /** Fingerprint of `current`, or null when it must be computed again. */
  private currentPrint: string | null = null;
  /** The file contents `current` is made of. */
  private readonly merged = new Map<string, FileContent>();
  private readonly counts = new DefinitionCounts();
  private watcher: FSWatcher | null = null;
  private parentWatcher: FSWatcher | null = null;
  /** Inode and device of the directory being watched. */
  private dirId = "";
  private rescanTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  /** Files written in place, waiting to be quiet. */
  private readonly settling = new Map<string, NodeJS.Timeout>();
  /** Events of the current batch (one read of the watch), flushed on setImmediate. */
  private batch = { foreignRename: false, names: new Map<string, Set<string>>() };
  private flushScheduled = false;
  /** Files to look at in the next scan, and how. */
  private pending = new Map<string, Look>();
  private scanning: Promise<void> | null = null;
  private rescanAgain = false;
  private fullPending = false;
  /** Re-read every file, failed ones too (SIGHUP). */
  private forcePending = false;
  private stopped = true;
  private dirMissingLogged = false;
  private lastMergeProblems = "";
  /** The first scan reads every file as it is, recent or not. */
  private firstScan = true;

  constructor(opts: DataStoreOptions) {
    super();
    this.dir = opts.dir;
    this.base = basename(opts.dir);
    this.log = opts.logger.child({ component: "data" });
    this.settleMs = opts.settleMs ?? 100;
    this.incompleteSettleMs = opts.incompleteSettleMs ?? 1000;
    this.maxFileBytes = opts.maxFileBytes ?? MAX_FILE_BYTES;
    this.rescanIntervalMs = opts.rescanIntervalMs ?? 5000;
    this.pollMs = opts.pollMs ?? 500;
    this.watchEnabled = opts.watch ?? true;
  }

  get state(): State {
    return this.current;
  }

  /** Reads the directory once, then starts watching it (or polling until it exists). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.rescan();
    if (!this.watchEnabled) return;
    this.startWatcher();
    if (this.rescanIntervalMs > 0) {
      this.rescanTimer = setInterval(() => void this.rescan(), this.rescanIntervalMs);
      this.rescanTimer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    this.closeWatchers();
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    for (const t of this.settling.values()) clearTimeout(t);
    this.settling.clear();
    this.pollTimer = this.rescanTimer = null;
  }

  /** Reads every file again, failed ones too (what SIGHUP does). */
  reload(): Promise<void> {
    this.log.info({ dir: this.dir }, "re-reading the data directory");
    this.forcePending = true;
    return this.rescan();
  }

  private closeWatchers(): void {
    this.watcher?.close();
    this.parentWatcher?.close();
    this.watcher = this.parentWatcher = null;
  }

  private startWatcher(): void {
    if (this.stopped || this.watcher) return;
    try {
      const st = statSync(this.dir);
      const w = watch(this.dir, { persistent: false }, (event, filename) =>
        this.onEvent(event, filename === null ? null : filename.toString()),
      );
      w.on("error", (err) => {
        this.log.warn({ dir: this.dir, err: err.message }, "watch of the data directory failed");
        w.close();
        if (this.watcher === w) this.watcher = null;
        this.pollForDir();
      });
      this.watcher = w;
      this.dirId = `${st.dev}:${st.ino}`;
      this.dirMissingLogged = false;
      this.watchParent();
      // Files written between the first scan and the watch would otherwise wait for a rescan.
      this.fullPending = true;
      void this.rescan(false);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") {
        this.log.warn({ dir: this.dir, err: (err as Error).message }, "cannot watch data dir");
      }
      this.pollForDir();
    }
  }

  /** A directory swapped in under the same name is seen in its parent's events. */
  private watchParent(): void {
    if (this.parentWatcher) return;
    try {
      const p = watch(dirname(this.dir), { persistent: false }, (_event, filename) => {
        if (filename === null || filename.toString() === this.base) void this.checkDir();
      });
      p.on("error", () => {
        p.close();
        if (this.parentWatcher === p) this.parentWatcher = null;
      });
      this.parentWatcher = p;
    } catch {
      // No parent to watch (e.g. it is not readable): the periodic rescan still checks.
    }
  }

  /** Is the directory at `dir` still the one being watched? */
  private async checkDir(): Promise<void> {
    if (this.stopped) return;
    let id: string;
    try {
      const st = await stat(this.dir);
      id = st.isDirectory() ? `${st.dev}:${st.ino}` : "";
    } catch {
      id = "";
    }
    if (id === this.dirId || this.stopped) return;
    // The parent's watch stays: it sees the directory come back.
    this.watcher?.close();
    this.watcher = null;
    const had = this.dirId !== "";
    this.dirId = "";
    if (id === "") {
      // Keep the last good state: a vanished directory must not destroy every endpoint.
      this.log.warn({ dir: this.dir }, "data directory went away; its last good state stays");
      this.pollForDir();
      return;
    }
    this.log.info(
      { dir: this.dir },
      had ? "data directory replaced; reading the new one" : "data directory appeared",
    );
    this.startWatcher();
  }

  private onEvent(event: string, name: string | null): void {
    if (this.stopped) return;
    if (name === null) {
      this.fullPending = true;
      void this.rescan(false);
      return;
    }
    if (name === this.base) {
      void this.checkDir(); // the watched directory itself was moved or removed
      return;
    }
    if (!isDataFile(name)) {
      if (event === "rename") this.batch.foreignRename = true;
    } else {
      let events = this.batch.names.get(name);
      if (!events) this.batch.names.set(name, (events = new Set()));
      events.add(event);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushBatch());
    }
  }

  /**
   * After one batch of events: a data file that only appeared, in the same batch as another
   * name's rename, was renamed in (an atomic writer) and is read at once; one that was
   * written to or removed waits until it is quiet; anything else is looked at (a fresh file
   * waits until it is quiet).
   */
  private flushBatch(): void {
    this.flushScheduled = false;
    const { foreignRename, names } = this.batch;
    this.batch = { foreignRename: false, names: new Map() };
    let scan = false;
    for (const [name, events] of names) {
      if (events.has("change")) {
        this.settle(name, this.settleMs);
      } else if (!foreignRename && !existsNow(join(this.dir, name))) {
        // A removal waits a moment (not the quiet time): `rm -r` of the whole directory
        // unlinks its files one by one before the directory itself goes, and a vanished
        // directory must keep the last good state (the scan after the wait sees it gone).
        this.settle(name, REMOVAL_GRACE_MS);
      } else {
        this.pending.set(name, foreignRename ? "now" : "event");
        scan = true;
      }
    }
    if (scan) void this.rescan(false);
  }

  /** (Re)starts the quiet timer of a file written in place (or removed). */
  private settle(name: string, ms: number): void {
    if (this.stopped) return;
    const old = this.settling.get(name);
    if (old) clearTimeout(old);
    this.settling.set(
      name,
      setTimeout(() => {
        this.settling.delete(name);
        this.pending.set(name, "event");
        void this.rescan(false);
      }, ms),
    );
  }

  private pollForDir(): void {
    if (this.stopped || this.pollTimer) return;
    if (!this.dirMissingLogged) {
      this.log.warn({ dir: this.dir }, "data directory is not there (yet); polling for it");
      this.dirMissingLogged = true;
    }
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      stat(this.dir).then(
        (st) => {
          if (st.isDirectory()) {
            this.log.info({ dir: this.dir }, "data directory appeared");
            this.startWatcher();
          } else this.pollForDir();
        },
        () => this.pollForDir(),
      );
    }, this.pollMs);
    this.pollTimer.unref();
  }

  /**
   * Reads what changed in the directory and emits `change` if the merged state differs.
   * `full` lists the directory and looks at every file; otherwise only the files named by
   * events are looked at (the periodic rescan catches anything an event missed).
   */
  async rescan(full = true): Promise<void> {
    if (full) this.fullPending = true;
    if (this.scanning) {
      this.rescanAgain = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        do {
          this.rescanAgain = false;
          const isFull = this.fullPending;
          const force = this.forcePending;
          this.fullPending = this.forcePending = false;
          await this.scanOnce(isFull, force);
        } while (this.rescanAgain && !this.stopped);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, "scan of the data directory failed");
      } finally {
        this.scanning = null;
      }
    })();
    return this.scanning;
  }

  private async scanOnce(full: boolean, force: boolean): Promise<void> {
    const pending = this.pending;
    this.pending = new Map();
    let looks: Map<string, Look>;
    try {
      if (full) {
        const names = (await readdir(this.dir)).filter(isDataFile);
        const fallback: Look = this.firstScan ? "now" : "scan";
        this.firstScan = false;
        looks = new Map(names.map((n) => [n, pending.get(n) ?? fallback]));
      } else {
        await stat(this.dir); // a vanished directory keeps the state (below)
        looks = pending;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        if (this.watchEnabled) {
          this.closeWatchers();
          this.pollForDir();
        } else if (!this.dirMissingLogged) {
          this.log.warn({ dir: this.dir }, "data directory is not there (yet)");
          this.dirMissingLogged = true;
        }
      } else {
        this.log.error({ dir: this.dir, err: (err as Error).message }, "cannot list data dir");
      }
      // Keep the last good state: a vanished directory must not destroy every endpoint.
      return;
    }
    const touched = new Set<string>();
    for (const name of full ? [...this.files.keys()] : []) {
      if (!looks.has(name)) {
        this.files.delete(name);
        this.log.info({ file: name }, "data file removed");
        touched.add(name);
      }
    }
    for (const [name, look] of looks) {
      if (await this.loadFile(name, look, force)) touched.add(name);
    }
    const changes: Array<{ before: FileContent | null; after: FileContent | null }> = [];
    for (const name of touched) {
      const before = this.merged.get(name) ?? null;
      const after = this.files.get(name)?.content ?? null;
      if (before === after) continue;
      changes.push({ before, after });
      if (after) this.merged.set(name, after);
      else this.merged.delete(name);
    }
    if (changes.length === 0) return;
    // Only what the changed files define is looked at, unless a name they define (before or
    // after) is defined elsewhere too: then the whole directory is merged again.
    const delta = applyFileChanges(this.current, this.counts, changes);
    let state = this.current;
    if (delta) {
      if (delta.endpoints.size === 0 && !delta.felixChanged && !delta.groupsChanged) return;
      this.currentPrint = null;
      if (this.stopped) return;
    } else {
      const merge = mergeFiles(this.merged);
      state = merge.state;
      const problemsText = JSON.stringify(merge.problems);
      if (problemsText !== this.lastMergeProblems) {
        for (const p of merge.problems) this.log.warn({ ...p }, problemText(p));
        this.lastMergeProblems = problemsText;
      }
      const print = fingerprint(state);
      const before = this.currentPrint ?? fingerprint(this.current);
      this.current = state;
      this.currentPrint = print;
      if (print === before || this.stopped) return;
    }
    this.log.info(
      { hosts: state.felix.size, endpoints: state.endpoints.size, groups: state.groupRules.size },
      "data changed",
    );
    this.emit("change", state, delta);
  }

  /** Milliseconds the file still has to stay quiet, or 0 when it may be read. */
  private quietLeft(mtimeMs: number, settleMs: number): number {
    const age = Date.now() - mtimeMs;
    // A mtime in the future (clock skew) does not hold the file back.
    return age >= 0 && age < settleMs ? settleMs - age : 0;
  }

  /** Looks at one file; returns whether its contribution may have changed. */
  private async loadFile(name: string, look: Look, force: boolean): Promise<boolean> {
    const path = join(this.dir, name);
    let st: Stats;
    try {
      st = await lstat(path);
    } catch {
      if (this.files.delete(name)) {
        this.log.info({ file: name }, "data file removed");
        return true;
      }
      return false;
    }
    const rec = this.files.get(name);
    const same =
      rec !== undefined && rec.ino === st.ino && rec.size === st.size && rec.mtimeMs === st.mtimeMs;
    const stamp = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    if (!st.isFile()) {
      if (same && rec.refused) return false;
      this.log.warn(
        { file: name, kind: kindOf(st) },
        "refused: not a regular file; only regular files in the data directory are read",
      );
      this.files.set(name, { ...stamp, content: null, failed: false, refused: true });
      return rec?.content != null;
    }
    if (same && !force && (rec.failed || look === "scan")) return false;
    if (look !== "now" && !force) {
      const wait = this.quietLeft(st.mtimeMs, this.settleMs);
      if (wait > 0) {
        this.settle(name, wait);
        return false;
      }
    }
    const lastGood = rec?.content ?? null;
    const fail = (message: string, fields: Record<string, unknown> = {}): false => {
      this.log.error(
        { file: name, ...fields },
        `${message}; ${lastGood ? "its last good content stays in force" : "it is ignored until it changes"}`,
      );
      this.files.set(name, { ...stamp, content: lastGood, failed: true, refused: false });
      return false;
    };
    if (st.size > this.maxFileBytes) {
      return fail("data file is too large", { bytes: st.size, limit: this.maxFileBytes });
    }
    let text: string;
    try {
      const read = await this.readRegular(path, st);
      if (read === "too large") {
        return fail("data file is too large", { limit: this.maxFileBytes });
      }
      if (read === "replaced") {
        this.pending.set(name, "event"); // changing under our feet: read once it is quiet
        this.rescanAgain = true;
        return false;
      }
      text = read;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ELOOP") {
        this.pending.set(name, "event"); // became a symlink in between: looked at again
        this.rescanAgain = true;
        return false;
      }
      return fail("cannot read data file", { err: code ?? (err as Error).message });
    }
    if (text.trim() === "" && lastGood) {
      // Most likely caught between truncate and write: keep the last good content.
      this.log.warn({ file: name }, "data file is empty; its last good content stays in force");
      this.files.set(name, { ...stamp, content: lastGood, failed: false, refused: false });
      return false;
    }
    if (!text.endsWith("\n") && text.trim() !== "" && look !== "now" && !force) {
      // The last line may be cut short by a writer still at work.
      const wait = this.quietLeft(st.mtimeMs, this.incompleteSettleMs);
      if (wait > 0) {
        this.settle(name, wait);
        return false;
      }
    }
    const result = parseDataFile(name, text, lastGood ?? undefined);
    for (const p of result.problems) this.log.warn({ ...p }, problemText(p));
    if (result.content === null) return fail("data file does not parse");
    this.files.set(name, { ...stamp, content: result.content, failed: false, refused: false });
    return true;
  }

  /**
   * Reads a regular file without following a symlink and without blocking on a FIFO, and
   * never more than the size limit (+1 byte, to tell that it is over).
   */
  private async readRegular(path: string, seen: Stats): Promise<string | "too large" | "replaced"> {
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.ino !== seen.ino) return "replaced";
      if (st.size > this.maxFileBytes) return "too large";
      const buf = Buffer.alloc(Math.min(st.size, this.maxFileBytes) + 1);
      let length = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length === buf.length) {
          if (length > this.maxFileBytes) return "too large";
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

/** How long a removed file waits before it counts, in case its whole directory is going. */
const REMOVAL_GRACE_MS = 50;

/** Whether a path names something now (lstat: a link counts, whatever it points at). */
function existsNow(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
