/**
 * The host agents of a lab: the very agent host preparation installs (under the host's
 * CALICO_ROOT), run as its systemd unit would, `calico-agent.sh run`, in the host's namespace
 * against the lab's daemon with the lab's endpoint scripts, its log in the state folder; found
 * again by its path (whatever the state file says), and stopped. `up` creates the endpoint
 * containers and waits for the agents to say they wired them.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { cmdline, killAll } from "./processes.js";
import { LabError } from "./context.js";
import { netnsPath, sleep, spawnDetached } from "./exec.js";
import type { EndpointPlan, HostPlan, LabPlan } from "./plan.js";
import type { AgentRecord, LabState, StateDir } from "./state.js";

/** Start one host's agent; returns when it runs (not when its first pass is done). */
export function startAgent(state: StateDir, h: HostPlan, dockerHost: string): AgentRecord {
  const script = state.agentScript(h.index);
  if (!existsSync(script)) {
    throw new LabError(
      `${h.name}: host preparation did not install the agent (${script} is missing)`,
    );
  }
  const fd = openSync(state.agentLog(h.index), "a");
  try {
    const pid = spawnDetached(
      "nsenter",
      [
        `--net=${netnsPath(h.ns)}`,
        "--",
        "env",
        `DOCKER_HOST=${dockerHost}`,
        `CALICO_SCRIPT_DIR=${state.endpointScripts}`,
        "bash",
        script,
        "run",
      ],
      fd,
    );
    return { host: h.name, pid, startedAt: Date.now() };
  } finally {
    closeSync(fd);
  }
}

/** Agent processes of this state folder (and what they run: docker events, scripts). */
export function labAgentPids(state: StateDir, hostIndex?: number): number[] {
  const root = `${path.join(state.dir, "root")}${path.sep}`;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const argv = cmdline(pid);
    const hit =
      hostIndex === undefined
        ? argv.some((a) => a.startsWith(root) && a.endsWith("calico-agent.sh"))
        : argv.includes(state.agentScript(hostIndex));
    if (hit) pids.push(pid);
  }
  return pids;
}

/** SIGTERM the agents' process groups (each runs detached, its own group), then the rest. */
async function stopPids(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(-pid, "SIGTERM");
    } catch {
      // not a group leader, or gone
    }
  }
  await killAll(
    pids.filter((p) => cmdline(p).length > 0),
    3000,
  );
}

/** Stop every agent of the lab. */
export async function stopAgents(state: StateDir, st: LabState | undefined): Promise<number[]> {
  const pids = [...new Set([...(st?.agents ?? []).map((a) => a.pid), ...labAgentPids(state)])];
  await stopPids(pids);
  return pids;
}

/** Stop one host's agent (a reboot, in the fault checks). */
export async function stopAgent(state: StateDir, h: HostPlan): Promise<void> {
  await stopPids(labAgentPids(state, h.index));
}

export interface WiringOutcome {
  endpoint: string;
  ok: boolean;
  line: string;
}

/** What the agent logs said about each endpoint's container id, the last word counting. */
export function agentVerdicts(logs: string[]): Map<string, WiringOutcome> {
  const out = new Map<string, WiringOutcome>();
  const re = /\] \S+: (wired|failed to wire|skipped) endpoint (\S+) \(container ([0-9a-f]{12})[,)]/;
  for (const text of logs) {
    for (const line of text.split("\n")) {
      const m = re.exec(line);
      if (m) out.set(`${m[2]}\0${m[3]}`, { endpoint: m[2]!, ok: m[1] === "wired", line });
    }
  }
  return out;
}

/**
 * Wait until the agents' logs say that each endpoint's current container was wired (or that
 * wiring it failed). Resolves with the failures; rejects when some are not reported in time.
 */
export async function waitForAgents(
  state: StateDir,
  plan: LabPlan,
  endpoints: EndpointPlan[],
  timeoutMs: number,
  since: Map<number, number> = new Map(),
): Promise<WiringOutcome[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const logs = plan.hosts.map((h) => {
      const file = state.agentLog(h.index);
      return existsSync(file) ? readFileSync(file, "utf8").slice(since.get(h.index) ?? 0) : "";
    });
    const verdicts = agentVerdicts(logs);
    const pending = endpoints.filter((e) => !verdicts.has(`${e.name}\0${e.id.slice(0, 12)}`));
    if (pending.length === 0) {
      return endpoints
        .map((e) => verdicts.get(`${e.name}\0${e.id.slice(0, 12)}`)!)
        .filter((v) => !v.ok);
    }
    if (Date.now() > deadline) {
      throw new LabError(
        `the host agents did not wire ${pending.length} endpoint(s) within ${timeoutMs / 1000} s: ` +
          `${pending
            .slice(0, 8)
            .map((e) => e.name)
            .join(
              ", ",
            )}${pending.length > 8 ? ", ..." : ""} (see ${state.dir}/calico-agent-h*.log)`,
      );
    }
    await sleep(100);
  }
}

/** The size of each host's agent log now (to read only what comes after). */
export function agentLogOffsets(state: StateDir, plan: LabPlan): Map<number, number> {
  return new Map(
    plan.hosts.map((h) => {
      const file = state.agentLog(h.index);
      return [h.index, existsSync(file) ? readFileSync(file).length : 0];
    }),
  );
}
