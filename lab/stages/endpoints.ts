/**
 * Stage `endpoints`: each declared endpoint, wired by the rendered endpoint script exactly as
 * production wires it. Docker mode: a `--net=none` container is created, its script rendered
 * for its id, and started — the host agent sees the start and wires it; an attached endpoint
 * (someone else's running container) is looked up with the production lookup and wired here.
 * Netns mode: a bare namespace wired with `--netns`. Undo: the daemon stage removes the
 * containers, and deleting the namespaces removes the rest.
 */
import { existsSync, mkdirSync, readlinkSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tapName, type EndpointModel } from "../../components/model.js";
import { attachLookupScript, renderEndpointScript } from "../../components/render/index.js";
import { agentLogOffsets, waitForAgents } from "../agent.js";
import { LabError } from "../context.js";
import { createEndpointContainer, docker } from "../docker.js";
import { netnsPath, poolSettled, runIn } from "../exec.js";
import type { EndpointPlan, LabPlan } from "../plan.js";
import type { StateDir } from "../state.js";
import type { LabRun, Stage } from "./run.js";

export const endpointsStage: Stage = {
  title: (r) =>
    r.st.docker !== undefined && r.plan.endpointMode === "docker"
      ? `start ${r.plan.endpoints.length} endpoint container(s); the host agents wire each`
      : `wire ${r.plan.endpoints.length} endpoint(s) with the endpoint script`,
  async up(r: LabRun) {
    mkdirSync(r.state.endpointScripts, { recursive: true });
    if (r.plan.endpointMode === "docker") await dockerEndpoints(r);
    else await netnsEndpoints(r);
  },
};

function modelOf(r: LabRun, e: EndpointPlan): EndpointModel {
  return r.model.endpoints.find((m) => m.name === e.name)!;
}

/**
 * The endpoint script links a container's namespace as `/var/run/netns/calico-<name>`, a
 * machine-wide name: another lab (or a host's own endpoint) of the same endpoint name that
 * is up would have its link taken over. Refused, naming it, before anything starts.
 */
export function linksTaken(plan: LabPlan): string[] {
  return plan.endpoints
    .map((e) => e.ns)
    .filter((ns) => {
      const link = netnsPath(ns);
      try {
        const target = readlinkSync(link);
        return /^\/proc\/\d+\/ns\/net$/.test(target) && existsSync(target);
      } catch {
        return false;
      }
    });
}

async function dockerEndpoints(r: LabRun): Promise<void> {
  const taken = linksTaken(r.plan);
  if (taken.length > 0) {
    throw new LabError(
      `the namespace link(s) ${taken.map((n) => `/var/run/netns/${n}`).join(", ")} belong to ` +
        "running containers of another lab (or host) with endpoints of the same names: " +
        "bring that lab down first (npm run lab -- down --stack <its stack>)",
    );
  }
  const host = r.st.docker!.host;
  const offsets = agentLogOffsets(r.state, r.plan);
  // Created, its script rendered for its id, then started: the agent finds the script.
  const failures = await poolSettled(r.plan.endpoints, r.concurrency, async (e) => {
    if (e.workload.attach) {
      // Someone else's running container: found, its script written and run here
      // (it is already running: no start for the agent to see).
      e.id = await attachedContainerId(modelOf(r, e), r.plan, e, host);
      e.tap = tapName(e.id);
      await runEndpointScript(modelOf(r, e), r.state, r.plan, e, "add", host);
      return;
    }
    e.id = await createEndpointContainer(host, e, r.plan.prefix);
    e.tap = tapName(e.id);
    await writeFile(r.state.endpointScript(e.name), renderEndpointScript(modelOf(r, e), e.id), {
      mode: 0o755,
    });
    await docker(host, ["start", e.id]);
  });
  r.save(); // the containers' ids and taps
  if (failures.length > 0) {
    throw new LabError(
      `endpoint container failed: ${failures.map((f) => f.item.name).join(", ")}:\n` +
        failures[0]!.error.message,
    );
  }
  const failed = await waitForAgents(
    r.state,
    r.plan,
    r.plan.endpoints.filter((e) => !e.workload.attach),
    60_000 + 200 * r.plan.endpoints.length,
    offsets,
  );
  if (failed.length > 0) {
    throw new LabError(
      `the host agents could not wire ${failed.length} endpoint(s):\n    ` +
        failed
          .slice(0, 8)
          .map((f) => f.line)
          .join("\n    "),
    );
  }
}

async function netnsEndpoints(r: LabRun): Promise<void> {
  const failures = await poolSettled(r.plan.endpoints, r.concurrency, (e) =>
    runEndpointScript(modelOf(r, e), r.state, r.plan, e, "add"),
  );
  if (failures.length > 0) {
    throw new LabError(
      `endpoint script failed for ${failures.map((f) => f.item.name).join(", ")}:\n` +
        failures[0]!.error.message,
    );
  }
}

/**
 * The id of an attached endpoint's running container: the production lookup script, run in
 * its host's namespace against the lab's daemon. It fails naming the endpoint's key.
 */
async function attachedContainerId(
  endpoint: EndpointModel,
  plan: LabPlan,
  e: EndpointPlan,
  dockerHost: string,
): Promise<string> {
  const host = plan.hosts.find((h) => h.name === e.host)!;
  const r = await runIn(host.ns, "sh", ["-c", attachLookupScript(endpoint)], {
    env: { ...process.env, DOCKER_HOST: dockerHost },
    okCodes: [1],
  });
  if (r.code !== 0) throw new LabError(r.stderr.trim());
  return r.stdout.trim().split("\n").pop()!.trim();
}

export async function runEndpointScript(
  endpoint: EndpointModel,
  state: StateDir,
  plan: LabPlan,
  e: EndpointPlan,
  action: "add" | "remove",
  dockerHost?: string,
): Promise<string> {
  const host = plan.hosts.find((h) => h.name === e.host)!;
  const file = state.endpointScript(e.name);
  // Docker mode: rendered for the container's id (a new container gets a new script).
  if (dockerHost !== undefined || !existsSync(file)) {
    await writeFile(file, renderEndpointScript(endpoint, e.id), { mode: 0o755 });
  }
  return scriptIn(host.ns, file, action, e, dockerHost);
}

/** The endpoint script in its host: Docker mode finds the container, netns mode names it. */
export async function scriptIn(
  ns: string,
  file: string,
  action: "add" | "remove",
  e: EndpointPlan,
  dockerHost: string | undefined,
): Promise<string> {
  const { stdout, stderr } =
    dockerHost !== undefined
      ? await runIn(ns, "bash", [file, action], {
          env: { ...process.env, DOCKER_HOST: dockerHost },
        })
      : await runIn(ns, "bash", [file, action, "--netns", e.ns]);
  return stdout + stderr;
}
