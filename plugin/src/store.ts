/**
 * The data directory as one merged state, kept up to date: the watching (`store-watch.ts`)
 * says which files to look at and when, the reading (`store-read.ts`) keeps the last good
 * content of every file, and the diff (`store-diff.ts`) merges them and says what changed.
 * This composes them: it runs the scans, one at a time, and emits `change`.
 *
 * A periodic rescan compares each file's inode, size and mtime, as a safety net.
 */
import { EventEmitter } from "node:events";
import { readdir } from "node:fs/promises";
import type { Logger } from "pino";
import type { State, StateDelta } from "./state.js";
import { StateDiff } from "./store-diff.js";
import { FileReader, isDataFile, MAX_FILE_BYTES, type Look } from "./store-read.js";
import { afterRemovals, dirIdOf, RemovalGate } from "./store-removal.js";
import { DirWatcher } from "./store-watch.js";

export { MAX_FILE_BYTES } from "./store-read.js";

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

export interface DataStoreEvents {
  /**
   * The merged state changed. `delta` says what changed when only endpoints, hosts or
   * groups defined once were touched; null means anything may have changed.
   */
  change: [state: State, delta: StateDelta | null];
}

export class DataStore extends EventEmitter<DataStoreEvents> {
  private readonly dir: string;
  private readonly log: Logger;
  private readonly rescanIntervalMs: number;
  private readonly watchEnabled: boolean;
  private readonly reader: FileReader;
  private readonly diff: StateDiff;
  private readonly watcher: DirWatcher;
  /** Removals wait for the directory to survive them (watched: without holding the scans). */
  private readonly removals: RemovalGate;
  private rescanTimer: NodeJS.Timeout | null = null;
  /** Files to look at in the next scan, and how. */
  private pending = new Map<string, Look>();
  private scanning: Promise<void> | null = null;
  private rescanAgain = false;
  private fullPending = false;
  /** Re-read every file, failed ones too (SIGHUP). */
  private forcePending = false;
  private stopped = true;
  private dirMissingLogged = false;
  /** The first scan reads every file as it is, recent or not. */
  private firstScan = true;

  constructor(opts: DataStoreOptions) {
    super();
    this.dir = opts.dir;
    this.log = opts.logger.child({ component: "data" });
    this.rescanIntervalMs = opts.rescanIntervalMs ?? 5000;
    this.watchEnabled = opts.watch ?? true;
    const settleMs = opts.settleMs ?? 100;
    this.reader = new FileReader({
      dir: opts.dir,
      log: this.log,
      settleMs,
      incompleteSettleMs: opts.incompleteSettleMs ?? 1000,
      maxFileBytes: opts.maxFileBytes ?? MAX_FILE_BYTES,
    });
    this.diff = new StateDiff(this.log);
    this.watcher = new DirWatcher({
      dir: opts.dir,
      log: this.log,
      settleMs,
      pollMs: opts.pollMs ?? 500,
      sink: {
        pend: (name, look) => this.pending.set(name, look),
        scan: (full) => {
          if (full) this.fullPending = true;
          void this.rescan(false);
        },
      },
    });
    this.removals = new RemovalGate({
      dir: opts.dir,
      stopped: () => this.stopped,
      decided: (names) => {
        for (const name of names) this.pending.set(name, "event");
        void this.rescan(false);
      },
      undecided: () => void this.rescan(),
      known: () => this.reader.names(),
    });
  }

  get state(): State {
    return this.diff.state;
  }

  /** Reads the directory once, then starts watching it (or polling until it exists). */
  async start(): Promise<void> {
    this.stopped = false;
    this.watcher.start();
    await this.rescan();
    if (!this.watchEnabled) return;
    this.watcher.watchDir();
    if (this.rescanIntervalMs > 0) {
      this.rescanTimer = setInterval(() => void this.rescan(), this.rescanIntervalMs);
      this.rescanTimer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    this.watcher.stop();
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.rescanTimer = null;
  }

  /** Reads every file again, failed ones too (what SIGHUP does). */
  reload(): Promise<void> {
    this.log.info({ dir: this.dir }, "re-reading the data directory");
    this.forcePending = true;
    return this.rescan();
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

  /**
   * The files to look at, and how, in the directory `dirId`; null when the directory cannot
   * be listed.
   */
  private async looks(
    full: boolean,
  ): Promise<{ looks: Map<string, Look>; dirId: string; listed: Set<string> | null } | null> {
    const pending = this.pending;
    this.pending = new Map();
    try {
      // A vanished directory keeps the state (below).
      const dirId = await dirIdOf(this.dir);
      if (!full) return { looks: pending, dirId, listed: null };
      const listed = new Set((await readdir(this.dir)).filter(isDataFile));
      const fallback: Look = this.firstScan ? "now" : "scan";
      this.firstScan = false;
      const looks = new Map(
        [...listed].map((n): [string, Look] => [n, pending.get(n) ?? fallback]),
      );
      return { looks, dirId, listed };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        if (this.watchEnabled) {
          this.watcher.lost();
        } else if (!this.dirMissingLogged) {
          this.log.warn({ dir: this.dir }, "data directory is not there (yet)");
          this.dirMissingLogged = true;
        }
      } else {
        this.log.error({ dir: this.dir, err: (err as Error).message }, "cannot list data dir");
      }
      // Keep the last good state: a vanished directory must not destroy every endpoint.
      return null;
    }
  }

  private async scanOnce(full: boolean, force: boolean): Promise<void> {
    const found = await this.looks(full);
    if (found === null) return;
    const { looks, dirId, listed } = found;
    const touched = new Set<string>();
    const gone = new Set<string>();
    for (const name of full ? this.reader.names() : []) {
      if (!looks.has(name)) gone.add(name);
    }
    for (const [name, look] of looks) {
      const loaded = await this.reader.load(name, look, force);
      if (loaded.kind === "changed") touched.add(name);
      else if (loaded.kind === "gone") gone.add(name);
      else if (loaded.kind === "wait") this.watcher.settle(name, loaded.ms);
      else if (loaded.kind === "again") {
        this.pending.set(name, "event");
        this.rescanAgain = true;
      }
    }
    if (this.watchEnabled) {
      const held = [...gone].filter((name) => {
        if (!this.removals.take(name)) return true;
        if (this.reader.forget(name)) touched.add(name);
        return false;
      });
      this.removals.looked(looks.keys());
      if (held.length > 0) this.removals.hold(held, dirId, listed);
    } else if (gone.size > 0) {
      await this.removeIfSurvived(gone, dirId, listed, touched);
    }
    const change = this.diff.apply(touched, (name) => this.reader.contentOf(name));
    if (change === null || this.stopped) return;
    const { state } = change;
    this.log.info(
      { hosts: state.felix.size, endpoints: state.endpoints.size, groups: state.groupRules.size },
      "data changed",
    );
    this.emit("change", state, change.delta);
  }

  /**
   * Forgets the files of `gone` once the directory has survived their removal (see
   * `store-removal.ts`); a file that is back is looked at again.
   */
  private async removeIfSurvived(
    gone: ReadonlySet<string>,
    dirId: string,
    listed: ReadonlySet<string> | null,
    touched: Set<string>,
  ): Promise<void> {
    const now = await afterRemovals({
      dir: this.dir,
      dirId,
      listed,
      stopped: () => this.stopped,
      known: () => this.reader.names(),
    });
    if (now === null) {
      if (this.stopped) return;
      this.log.warn(
        { dir: this.dir, files: gone.size },
        "data directory went away or was replaced while its files were removed; its last good state stays",
      );
      this.fullPending = true; // looked at again when (if) the directory is back
      return;
    }
    for (const name of gone) {
      if (now.has(name)) {
        this.pending.set(name, "event");
        this.rescanAgain = true;
      } else if (this.reader.forget(name)) {
        touched.add(name);
      }
    }
  }
}
