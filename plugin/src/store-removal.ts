/**
 * When a removed data file counts. `rm -r` of the data directory unlinks its files one by
 * one before the directory itself goes, and a vanished directory must keep the last good
 * state: so a removal counts only once the directory has been seen to survive it — still
 * there, still the same directory, after a quiet time in which no other data file vanished
 * (200 ms; 2 s when more than 10 known files are missing, so that a deleter held up by a loaded
 * machine is still seen to go on).
 * While files keep vanishing (a recursive delete at any pace faster than the quiet time),
 * nothing is decided; when the directory goes, nothing was removed.
 */
import { readdir, stat } from "node:fs/promises";
import { isDataFile } from "./store-read.js";

/** Quiet time (no data file vanishing) that a removal must leave the directory standing. */
export const REMOVAL_QUIET_MS = 200;
/** More removals than this at once are a mass removal (`rm -r`, or a prune)... */
export const MASS_REMOVAL = 10;
/** ...which must leave the directory standing longer: a deleter may be held up that long. */
export const MASS_REMOVAL_QUIET_MS = 2000;

/** Device and inode of the directory at `dir` ("" when it is not a directory). */
export async function dirIdOf(dir: string): Promise<string> {
  const st = await stat(dir);
  return st.isDirectory() ? `${st.dev}:${st.ino}` : "";
}

/** The data files of a directory now, or null when it cannot be listed. */
async function listing(dir: string): Promise<Set<string> | null> {
  try {
    return new Set((await readdir(dir)).filter(isDataFile));
  } catch {
    return null;
  }
}

export interface RemovalCheck {
  readonly dir: string;
  /** The directory the removals were seen in (`dirIdOf`). */
  readonly dirId: string;
  /** The data files listed when the removals were seen, if a listing was made. */
  readonly listed: ReadonlySet<string> | null;
  /** Give up (the store is stopping). */
  readonly stopped: () => boolean;
  /** The data files the store knows (has read). */
  readonly known: () => readonly string[];
}

/**
 * Waits until the removals have settled. Returns the data files the surviving directory
 * lists then, or null when it went away, was replaced, or the store stopped: then no
 * removal counts.
 */
export async function afterRemovals(check: RemovalCheck): Promise<Set<string> | null> {
  let before = check.listed ?? (await listing(check.dir));
  for (;;) {
    if (before === null) return null;
    const present = before;
    const mass = check.known().filter((name) => !present.has(name)).length > MASS_REMOVAL;
    await new Promise((resolve) =>
      setTimeout(resolve, mass ? MASS_REMOVAL_QUIET_MS : REMOVAL_QUIET_MS),
    );
    if (check.stopped()) return null;
    const now = await listing(check.dir);
    let id = "";
    try {
      id = await dirIdOf(check.dir);
    } catch {
      return null;
    }
    if (now === null || id !== check.dirId) return null;
    if ([...before].every((name) => now.has(name))) return now;
    before = now;
  }
}

export interface RemovalGateOptions {
  readonly dir: string;
  readonly stopped: () => boolean;
  /** The removals of `names` may now count: look at them again. */
  readonly decided: (names: string[]) => void;
  /** The directory went away or was replaced: nothing counted; look at it all again. */
  readonly undecided: () => void;
  /** The data files the store knows (has read). */
  readonly known: () => readonly string[];
}

/**
 * For a watched directory: holds removals while the scans go on, and lets them count
 * (`take`) once the directory has survived them. One check runs at a time; removals seen
 * meanwhile are decided with it.
 */
export class RemovalGate {
  private readonly held = new Set<string>();
  private readonly confirmed = new Set<string>();
  private checking = false;

  constructor(private readonly opts: RemovalGateOptions) {}

  /** Whether the removal of `name` may count now (it was confirmed). */
  take(name: string): boolean {
    return this.confirmed.delete(name);
  }

  /** A scan looked at these files: a confirmation not used by it is stale. */
  looked(names: Iterable<string>): void {
    for (const name of names) this.confirmed.delete(name);
  }

  /** Holds the removals of `names`, seen in directory `dirId` (listing `listed`, if any). */
  hold(names: Iterable<string>, dirId: string, listed: ReadonlySet<string> | null): void {
    for (const name of names) this.held.add(name);
    if (this.checking) return;
    this.checking = true;
    void afterRemovals({
      dir: this.opts.dir,
      stopped: this.opts.stopped,
      dirId,
      listed,
      known: this.opts.known,
    }).then((now) => {
      this.checking = false;
      const decided = [...this.held].filter((name) => now !== null && !now.has(name));
      this.held.clear();
      for (const name of decided) this.confirmed.add(name);
      if (decided.length > 0) this.opts.decided(decided);
      if (now === null && !this.opts.stopped()) this.opts.undecided();
    });
  }
}
