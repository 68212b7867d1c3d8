/**
 * BIRD processes of a lab: one per host, started in the host's namespace with its control
 * socket, pid file and log in the state folder, found again by those paths (whatever the
 * state file says), and stopped.
 */
import { closeSync, openSync, readdirSync } from "node:fs";
import path from "node:path";
import { hostOf, requireState, resolveContext, type LabOptions } from "./context.js";
import { netnsPath, spawnDetached } from "./exec.js";
import { cmdline, killAll } from "./processes.js";
import type { HostPlan } from "./plan.js";
import type { BirdRecord, StateDir } from "./state.js";

export function startBirdProcess(state: StateDir, h: HostPlan): BirdRecord {
  const fd = openSync(state.birdLog(h.index), "a");
  try {
    const pid = spawnDetached(
      "nsenter",
      [
        `--net=${netnsPath(h.ns)}`,
        "--",
        "bird",
        "-f",
        "-c",
        state.birdConf(h.index),
        "-s",
        state.birdSocket(h.index),
        "-P",
        state.birdPid(h.index),
      ],
      fd,
    );
    return { host: h.name, pid, startedAt: Date.now() };
  } finally {
    closeSync(fd);
  }
}

/** BIRD processes started for this state folder (whatever the state file says). */
export function labBirdPids(state: StateDir): number[] {
  const marker = `${state.dir}${path.sep}bird-h`;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = cmdline(Number(entry));
    if (argv.length === 0 || !/(^|\/)(bird|nsenter)$/.test(argv[0]!)) continue;
    if (argv.some((a) => a.startsWith(marker))) pids.push(Number(entry));
  }
  return pids;
}

/** Stop one host's BIRD (fault checks). */
export async function stopBird(opts: LabOptions, hostName: string): Promise<void> {
  const { state } = resolveContext(opts);
  const st = requireState(state);
  const h = hostOf(st.plan, hostName);
  const marker = state.birdConf(h.index);
  const pids = labBirdPids(state).filter((p) => cmdline(p).includes(marker));
  await killAll(pids);
  st.birds = st.birds.filter((b) => b.host !== hostName);
  state.write(st);
}

/** Start one host's BIRD again (fault checks). */
export async function startBird(opts: LabOptions, hostName: string): Promise<number> {
  const { state } = resolveContext(opts);
  const st = requireState(state);
  const h = hostOf(st.plan, hostName);
  const rec = startBirdProcess(state, h);
  st.birds.push(rec);
  state.write(st);
  return rec.startedAt;
}
