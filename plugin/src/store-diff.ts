/**
 * The merged state of the data directory and what changed in it: given the files whose
 * content changed, it updates the state (in place when the names they define are defined
 * nowhere else, by merging every file again otherwise) and says whether anything changed.
 */
import type { Logger } from "pino";
import type { FileContent } from "./parse.js";
import {
  applyFileChanges,
  DefinitionCounts,
  mergeFiles,
  type State,
  type StateDelta,
} from "./state.js";

/** A change to emit: the new state and, when only some names changed, which. */
export interface StateChange {
  readonly state: State;
  readonly delta: StateDelta | null;
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

export class StateDiff {
  /** The merged state; updated in place when a change touches no conflicting name. */
  private current: State = { felix: new Map(), endpoints: new Map(), groupRules: new Map() };
  /** Fingerprint of `current`, or null when it must be computed again. */
  private currentPrint: string | null = null;
  /** The file contents `current` is made of. */
  private readonly merged = new Map<string, FileContent>();
  private readonly counts = new DefinitionCounts();
  private lastMergeProblems = "";

  constructor(private readonly log: Logger) {}

  get state(): State {
    return this.current;
  }

  /**
   * Takes the new content of the files in `touched` (null: it contributes nothing) and
   * returns the change to emit, or null when the merged state is the same.
   */
  apply(
    touched: Iterable<string>,
    contentOf: (name: string) => FileContent | null,
  ): StateChange | null {
    const changes: Array<{ before: FileContent | null; after: FileContent | null }> = [];
    for (const name of touched) {
      const before = this.merged.get(name) ?? null;
      const after = contentOf(name);
      if (before === after) continue;
      changes.push({ before, after });
      if (after) this.merged.set(name, after);
      else this.merged.delete(name);
    }
    if (changes.length === 0) return null;
    // Only what the changed files define is looked at, unless a name they define (before or
    // after) is defined elsewhere too: then the whole directory is merged again.
    const delta = applyFileChanges(this.current, this.counts, changes);
    if (delta) {
      if (delta.endpoints.size === 0 && !delta.felixChanged && !delta.groupsChanged) return null;
      this.currentPrint = null;
      return { state: this.current, delta };
    }
    const merge = mergeFiles(this.merged);
    const problemsText = JSON.stringify(merge.problems);
    if (problemsText !== this.lastMergeProblems) {
      for (const p of merge.problems) this.log.warn({ ...p }, p.message);
      this.lastMergeProblems = problemsText;
    }
    const print = fingerprint(merge.state);
    const before = this.currentPrint ?? fingerprint(this.current);
    this.current = merge.state;
    this.currentPrint = print;
    return print === before ? null : { state: merge.state, delta: null };
  }
}
