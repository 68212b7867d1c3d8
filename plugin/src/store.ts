/**
 * Watches the data directory and keeps the merged state, with the last good content of
 * every file. A change is noticed by fs.watch (debounced) and, as a safety net, by a
 * periodic rescan that compares each file's inode, size and mtime.
 */
import { EventEmitter } from "node:events";
import { watch, type FSWatcher } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { parseDataFile, type FileContent, type Problem } from "./parse.js";
import { EMPTY_STATE, mergeFiles, type State } from "./state.js";

export interface DataStoreOptions {
  readonly dir: string;
  readonly logger: Logger;
  /** Quiet time after the last fs event before the directory is read (default 30 ms). */
  readonly debounceMs?: number;
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
  /** The last good content (null if the file never parsed). */
  content: FileContent | null;
}

export interface DataStoreEvents {
  change: [state: State, previous: State];
}

function isDataFile(name: string): boolean {
  return name.endsWith(".txt") && !name.startsWith(".");
}

function problemText(p: Problem): string {
  return p.message;
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

export class DataStore extends EventEmitter<DataStoreEvents> {
  private readonly dir: string;
  private readonly log: Logger;
  private readonly debounceMs: number;
  private readonly rescanIntervalMs: number;
  private readonly pollMs: number;
  private readonly watchEnabled: boolean;
  private readonly files = new Map<string, FileRecord>();
  private current: State = EMPTY_STATE;
  private currentPrint = fingerprint(EMPTY_STATE);
  private watcher: FSWatcher | null = null;
  private debounceTimer: NodeJS.Timeout | null = null;
  private rescanTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  /** Files named by fs events since the last scan: always re-read, whatever their stat says. */
  private dirty = new Set<string>();
  private scanning: Promise<void> | null = null;
  private rescanAgain = false;
  private fullPending = false;
  private stopped = true;
  private dirMissingLogged = false;
  private lastMergeProblems = "";

  constructor(opts: DataStoreOptions) {
    super();
    this.dir = opts.dir;
    this.log = opts.logger.child({ component: "data" });
    this.debounceMs = opts.debounceMs ?? 30;
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
    this.watcher?.close();
    this.watcher = null;
    for (const t of [this.debounceTimer, this.pollTimer]) if (t) clearTimeout(t);
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.debounceTimer = this.pollTimer = this.rescanTimer = null;
  }

  private startWatcher(): void {
    if (this.stopped || this.watcher) return;
    try {
      const w = watch(this.dir, { persistent: false }, (_event, filename) => {
        if (filename === null) this.dirty.add("*");
        else if (isDataFile(filename.toString())) this.dirty.add(filename.toString());
        else return;
        this.schedule();
      });
      w.on("error", (err) => {
        this.log.warn({ dir: this.dir, err: err.message }, "watch of the data directory failed");
        w.close();
        if (this.watcher === w) this.watcher = null;
        this.pollForDir();
      });
      this.watcher = w;
      this.dirMissingLogged = false;
      // Files written between the first scan and the watch would otherwise wait for a rescan.
      this.dirty.add("*");
      this.schedule();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") {
        this.log.warn({ dir: this.dir, err: (err as Error).message }, "cannot watch data dir");
      }
      this.pollForDir();
    }
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

  private schedule(): void {
    if (this.stopped) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      void this.rescan(false);
    }, this.debounceMs);
  }

  /**
   * Reads what changed in the directory and emits `change` if the merged state differs.
   * `full` lists the directory and stats every file; otherwise only the files named by fs
   * events are read (the periodic rescan catches anything an event missed).
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
          const isFull = this.fullPending || this.dirty.has("*");
          this.fullPending = false;
          await this.scanOnce(isFull);
        } while (this.rescanAgain && !this.stopped);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, "scan of the data directory failed");
      } finally {
        this.scanning = null;
      }
    })();
    return this.scanning;
  }

  private async scanOnce(full: boolean): Promise<void> {
    const dirty = this.dirty;
    this.dirty = new Set();
    let names: string[];
    try {
      if (full) names = (await readdir(this.dir)).filter(isDataFile);
      else {
        await stat(this.dir); // a vanished directory keeps the state (below)
        names = [...dirty];
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        if (this.watchEnabled) {
          this.watcher?.close();
          this.watcher = null;
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
    let touched = false;
    const present = new Set(names);
    for (const name of full ? [...this.files.keys()] : []) {
      if (!present.has(name)) {
        this.files.delete(name);
        this.log.info({ file: name }, "data file removed");
        touched = true;
      }
    }
    for (const name of names) {
      if (await this.loadFile(name, dirty.has(name) || dirty.has("*"))) touched = true;
    }
    if (!touched) return;
    const contents = new Map<string, FileContent>();
    for (const [name, rec] of this.files) if (rec.content) contents.set(name, rec.content);
    const { state, problems } = mergeFiles(contents);
    const problemsText = JSON.stringify(problems);
    if (problemsText !== this.lastMergeProblems) {
      for (const p of problems) this.log.warn({ ...p }, problemText(p));
      this.lastMergeProblems = problemsText;
    }
    const print = fingerprint(state);
    if (print === this.currentPrint) return;
    const previous = this.current;
    this.current = state;
    this.currentPrint = print;
    this.log.info(
      { hosts: state.felix.size, endpoints: state.endpoints.size, groups: state.groupRules.size },
      "data changed",
    );
    this.emit("change", state, previous);
  }

  /** Re-reads one file if needed; returns whether its contribution may have changed. */
  private async loadFile(name: string, force: boolean): Promise<boolean> {
    const path = join(this.dir, name);
    let st;
    try {
      st = await stat(path);
    } catch {
      if (this.files.delete(name)) {
        this.log.info({ file: name }, "data file removed");
        return true;
      }
      return false;
    }
    if (!st.isFile()) return false;
    const rec = this.files.get(name);
    if (!force && rec && rec.ino === st.ino && rec.size === st.size && rec.mtimeMs === st.mtimeMs) {
      return false;
    }
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      this.log.warn({ file: name, err: (err as Error).message }, "cannot read data file");
      return false;
    }
    const stamp = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    if (text.trim() === "" && rec?.content) {
      // Most likely caught between truncate and write: keep the last good content.
      this.log.warn({ file: name }, "data file is empty; its last good content stays in force");
      this.files.set(name, { ...stamp, content: rec.content });
      return false;
    }
    const result = parseDataFile(name, text, rec?.content ?? undefined);
    for (const p of result.problems) this.log.warn({ ...p }, problemText(p));
    if (result.content === null) {
      this.log.error(
        { file: name },
        rec?.content
          ? "data file does not parse; its last good content stays in force"
          : "data file does not parse; it is ignored until fixed",
      );
      this.files.set(name, { ...stamp, content: rec?.content ?? null });
      return false;
    }
    this.files.set(name, { ...stamp, content: result.content });
    return true;
  }
}
