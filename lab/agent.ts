/**
 * The host agents of a lab: the production agent script, rendered per host, run in the
 * host's namespace against the lab's daemon with the lab's endpoint scripts, its log in the
 * state folder; found again by its script path (whatever the state file says) and stopped.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { cmdline, killAll } from "./bird.js";
import type { LabState, StateDir } from "./state.js";

/** Agent processes started for this state folder: `bash <state>/calico-agent-h<N>.sh run`. */
export function labAgentPids(state: StateDir, hostIndex?: number): number[] {
  const marker =
    hostIndex === undefined
      ? `${state.dir}${path.sep}calico-agent-h`
      : state.agentScript(hostIndex);
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = cmdline(Number(entry));
    if (argv.length === 0 || !/(^|\/)(bash|nsenter|env)$/.test(argv[0]!)) continue;
    if (argv.some((a) => a.startsWith(marker))) pids.push(Number(entry));
  }
  return pids;
}

/** Stop every agent of the lab (and what it runs: docker events, a script half-way). */
export async function stopAgents(state: StateDir, st: LabState | undefined): Promise<number[]> {
  const pids = [...new Set([...(st?.agents ?? []).map((a) => a.pid), ...labAgentPids(state)])];
  await killGroups(pids);
  return pids;
}

/** SIGTERM the process groups (agents run detached, each its own group), then the pids. */
export async function killGroups(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(-pid, "SIGTERM");
    } catch {
      // not a group leader, or gone
    }
  }
  await killAll(pids.filter((p) => cmdline(p).length > 0));
}
