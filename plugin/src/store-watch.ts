/**
 * Watching the data directory: which files to look at, and when.
 *
 * - A data file renamed into the directory by an atomic writer (the rename of its temporary
 *   file is seen in the same batch of events) is looked at at once;
 * - one written in place waits until it is quiet (`settle`);
 * - a data directory replaced by another (`mv`, a re-pointed symlink) is noticed at once
 *   through a watch on its parent; one that does not exist (yet) is polled for.
 *
 * What to do with a file is the scan's job: this only tells it (`WatchSink`).
 */
import { statSync, watch, type FSWatcher } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import { isDataFile, type Look } from "./store-read.js";

/** What the watcher asks of the scan. */
export interface WatchSink {
  /** Look at this file in the next scan. */
  pend(name: string, look: Look): void;
  /** Start a scan (`full`: list the whole directory). */
  scan(full: boolean): void;
}

export interface DirWatcherOptions {
  readonly dir: string;
  readonly log: Logger;
  /** Quiet time before a file written in place is looked at. */
  readonly settleMs: number;
  /** How often to look for a data directory that does not exist (yet). */
  readonly pollMs: number;
  readonly sink: WatchSink;
}

export class DirWatcher {
  private readonly dir: string;
  private readonly base: string;
  private readonly log: Logger;
  private readonly sink: WatchSink;
  private watcher: FSWatcher | null = null;
  private parentWatcher: FSWatcher | null = null;
  /** Inode and device of the directory being watched. */
  private dirId = "";
  private pollTimer: NodeJS.Timeout | null = null;
  /** Files written in place, waiting to be quiet. */
  private readonly settling = new Map<string, NodeJS.Timeout>();
  /** Events of the current batch (one read of the watch), flushed on setImmediate. */
  private batch = { foreignRename: false, names: new Map<string, Set<string>>() };
  private flushScheduled = false;
  private stopped = true;
  private dirMissingLogged = false;

  constructor(private readonly opts: DirWatcherOptions) {
    this.dir = opts.dir;
    this.base = basename(opts.dir);
    this.log = opts.log;
    this.sink = opts.sink;
  }

  /** Lets the quiet timers run (before the first scan). */
  start(): void {
    this.stopped = false;
  }

  /** Watches the directory (or polls until it exists). */
  watchDir(): void {
    this.startWatcher();
  }

  stop(): void {
    this.stopped = true;
    this.closeWatchers();
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    for (const t of this.settling.values()) clearTimeout(t);
    this.settling.clear();
  }

  /** The directory is gone (a scan found it missing): poll until it is back. */
  lost(): void {
    this.closeWatchers();
    this.pollForDir();
  }

  /** (Re)starts the quiet timer of a file written in place (or removed). */
  settle(name: string, ms: number): void {
    if (this.stopped) return;
    const old = this.settling.get(name);
    if (old) clearTimeout(old);
    this.settling.set(
      name,
      setTimeout(() => {
        this.settling.delete(name);
        this.sink.pend(name, "event");
        this.sink.scan(false);
      }, ms),
    );
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
      this.sink.scan(true);
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
      this.sink.scan(true);
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
   * written to waits until it is quiet; anything else is looked at (a fresh file waits until
   * it is quiet; a removal counts only once the directory has survived it, see the scan).
   */
  private flushBatch(): void {
    this.flushScheduled = false;
    const { foreignRename, names } = this.batch;
    this.batch = { foreignRename: false, names: new Map() };
    let scan = false;
    for (const [name, events] of names) {
      if (events.has("change")) {
        this.settle(name, this.opts.settleMs);
      } else {
        this.sink.pend(name, foreignRename ? "now" : "event");
        scan = true;
      }
    }
    if (scan) this.sink.scan(false);
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
    }, this.opts.pollMs);
    this.pollTimer.unref();
  }
}
