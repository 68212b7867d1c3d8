/**
 * What the stages of `up` share: the stack's model and plan, the state folder and its record
 * (written after every change, so that `down` finds whatever a failed `up` left), progress,
 * and the choices of this run. A stage is a pair of functions, one for `up` and its undo for
 * `down`; lab.ts only sequences them.
 */
import type { ClusterModel } from "../../components/model.js";
import type { LabOptions } from "../context.js";
import type { LabPlan } from "../plan.js";
import type { DockerRecord, LabState, StateDir } from "../state.js";

/** Real Felix and ACL Manager from the felix image, or the lab's routing stand-in. */
export type FelixMode = "real" | "stand-in";

export interface LabRun {
  stack: string;
  opts: LabOptions;
  model: ClusterModel;
  plan: LabPlan;
  state: StateDir;
  /** The state record; `save()` writes it. */
  st: LabState;
  log: (line: string) => void;
  concurrency: number;
  felix: FelixMode;
  /** DOCKER_HOST of a daemon given from outside, when the lab does not run its own. */
  externalDocker?: string;
  /** The lab's Docker daemon, once it answers (set by the daemon stage). */
  docker?: Promise<DockerRecord>;
  /** What starting the daemon in the background said, shown by the daemon stage. */
  daemonNotes?: string[];
  save(): void;
}

export interface Stage {
  /** The progress line of the step. */
  title(run: LabRun): string;
  /** False: the stage has nothing to do in this lab (it is not announced). */
  applies?(run: LabRun): boolean;
  up(run: LabRun): Promise<void>;
}

/** The daemon of a lab run, or an error saying that this lab has none. */
export async function dockerOf(run: LabRun): Promise<DockerRecord> {
  if (run.docker === undefined) throw new Error("this lab runs no Docker daemon");
  return run.docker;
}
