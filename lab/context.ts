/**
 * What every lab command shares: the options a caller gives, the error an operator can act
 * on, the resolved context (stack, state folder, log, concurrency), the lab that is up, and
 * the progress-step and duration formatting of the log.
 */
import os from "node:os";
import type { CalicoConfig } from "../components/config.js";
import type { EndpointMode, HostPlan, LabPlan } from "./plan.js";
import { DEFAULT_STATE_ROOT, StateDir, type LabState } from "./state.js";

/** A problem the operator can act on (printed without a stack trace). */
export class LabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LabError";
  }
}

export interface LabOptions {
  /** Stack name (default `dev`): reads `Pulumi.<stack>.yaml` unless `config` is given. */
  stack?: string;
  /** A validated config to build instead of the stack file (tests, variants). */
  config?: CalicoConfig;
  /** A stack file to read instead of `Pulumi.<stack>.yaml` (names still come from `stack`). */
  stackFile?: string;
  /** Where state folders live (default `<repo>/.lab`). */
  stateRoot?: string;
  /** Progress lines; default: none. */
  log?: (line: string) => void;
  /** Endpoints as Docker containers (default) or bare namespaces (very large labs). */
  endpoints?: EndpointMode;
  /** Real Felix and ACL Manager from the felix image (default), or the routing stand-in. */
  felix?: "real" | "stand-in";
  /** Felix's source mirror (laid out like shared/sources); default CALICO_SOURCES, else upstream. */
  sources?: string;
  /** Parallel jobs for namespaces and scripts (default: 4 per core, at least 8). */
  concurrency?: number;
}

export interface LabContext {
  stack: string;
  state: StateDir;
  log: (line: string) => void;
  concurrency: number;
}

/** The options with their defaults filled in. */
export function resolveContext(opts: LabOptions): LabContext {
  const stack = opts.stack ?? "dev";
  const state = new StateDir(opts.stateRoot ?? DEFAULT_STATE_ROOT, stack);
  const log = opts.log ?? (() => {});
  const concurrency = opts.concurrency ?? Math.max(8, os.cpus().length * 4);
  return { stack, state, log, concurrency };
}

/** The state of a lab that is up (its plan and `up` finished), or a LabError saying how. */
export function requireState(state: StateDir): LabState & { plan: LabPlan } {
  const st = state.read();
  if (st?.plan === undefined || st.upDoneAt === undefined) {
    throw new LabError(
      `no lab is up for stack ${state.stack} (no complete ${state.file}): ` +
        `run \`npm run lab -- up --stack ${state.stack}\` first`,
    );
  }
  return st as LabState & { plan: LabPlan };
}

export function hostOf(plan: LabPlan, hostName: string): HostPlan {
  const h = plan.hosts.find((x) => x.name === hostName);
  if (h === undefined) throw new LabError(`no host ${hostName} in lab ${plan.stack}`);
  return h;
}

export function fmtSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** Run one step of `up` or `down`, saying when it starts, and how long it took. */
export async function step<T>(
  log: (l: string) => void,
  name: string,
  fn: () => Promise<T>,
): Promise<T> {
  const t0 = performance.now();
  log(`- ${name} ...`);
  try {
    const out = await fn();
    log(`  ok ${name} (${fmtSeconds(performance.now() - t0)})`);
    return out;
  } catch (e) {
    log(`  FAILED ${name} (${fmtSeconds(performance.now() - t0)})`);
    throw e;
  }
}
