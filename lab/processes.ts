/**
 * The lab's processes as /proc shows them: whether one still runs, its command line, and
 * stopping a set of them (SIGTERM, then SIGKILL after a grace period).
 */
import { readFileSync } from "node:fs";
import { sleep } from "./exec.js";

/**
 * True while pid runs. A zombie (exited, not yet reaped by its parent) holds nothing but its
 * pid and counts as gone: the lab's daemons are reparented to the machine's init, which may
 * reap them only seconds later.
 */
export function alive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  // "pid (comm) S ...": the state follows the last ')' (comm may hold spaces and parens).
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}

export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; returns when all are gone. */
export async function killAll(pids: number[], graceMs = 3000): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < deadline) await sleep(50);
  for (const pid of pids.filter(alive)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  while (pids.some(alive)) await sleep(20);
}
