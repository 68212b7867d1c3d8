/**
 * The lab: a stack's hosts and endpoints as network namespaces on this machine, wired by the
 * very scripts production runs, with real BIRD, the real Felix and ACL Manager from the
 * felix image, and the project's plugin. This file only sequences the stages of `up` (each in
 * lab/stages/, with its undo beside it) and the undo of `down`.
 *
 *   up     namespaces, fabric (+ the GCE firewall), host preparation, Docker, plugin, Felix +
 *          ACL Manager (or the stand-in), host agents, endpoints, plugin data, BIRD, sshd
 *   check  see check.ts: BGP, routes, wiring, and the policy matrix both ways
 *   down   everything `up` made, found from the state folder and by name prefix
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { buildModel, type ClusterModel } from "../components/model.js";
import { loadStackFile, stackFilePath } from "../components/stackfile.js";
import { stopAgents } from "./agent.js";
import { labBirdPids } from "./bird.js";
import { cmdline, killAll } from "./processes.js";
import { fmtSeconds, LabError, resolveContext, step, type LabOptions } from "./context.js";
import { dockerHostFromEnv, labDockerPids } from "./docker.js";
import { poolSettled, run } from "./exec.js";
import { restoreNeighbourCapacity } from "./neigh.js";
import { buildPlan, isLabNamespace, LAB_PREFIX, labPrefix, type LabPlan } from "./plan.js";
import { stopLabSshd } from "./sshd.js";
import { DEFAULT_STATE_ROOT, REPO_ROOT, type LabState, type StateDir } from "./state.js";
import { agentsStage } from "./stages/agents.js";
import { birdStage } from "./stages/bird.js";
import { daemonDown, daemonStage, needsDocker, startDaemon } from "./stages/daemon.js";
import { endpointsStage } from "./stages/endpoints.js";
import {
  fabricFirewallStage,
  fabricRoutesStage,
  fabricStage,
  namespacesStage,
} from "./stages/fabric.js";
import { felixStage, standInStage } from "./stages/felix.js";
import { hostPrepStage, hostScriptAction, neighbourStage } from "./stages/host-prep.js";
import { pluginDataStage, pluginStage, stopLabPlugins } from "./stages/plugin.js";
import { preflight } from "./stages/preflight.js";
import type { LabRun, Stage } from "./stages/run.js";
import { sshdStage } from "./stages/sshd.js";

export {
  endpointScriptAction,
  hostScriptActionFor,
  labDockerHost,
  restartLabDocker,
  restartLabPlugin,
  startHostAgent,
  stopHostAgent,
} from "./actions.js";
export { hostLinkCommands } from "./stages/fabric.js";
export { felixStandIn } from "./stages/felix.js";
export { preflight } from "./stages/preflight.js";

/** The stages of `up`, in order. */
export const UP_STAGES: readonly Stage[] = [
  namespacesStage,
  fabricStage,
  fabricRoutesStage,
  fabricFirewallStage,
  hostPrepStage,
  neighbourStage,
  daemonStage,
  pluginStage,
  felixStage,
  agentsStage,
  endpointsStage,
  pluginDataStage,
  standInStage,
  birdStage,
  sshdStage,
];

export function loadLabModel(opts: LabOptions): ClusterModel {
  const { stack } = resolveContext(opts);
  const config = opts.config ?? loadStackFile(opts.stackFile ?? stackFilePath(stack, REPO_ROOT));
  return buildModel(config);
}

export interface UpResult {
  plan: LabPlan;
  stateDir: string;
  durationMs: number;
  /** Epoch ms when the first BIRD started (BGP on). */
  birdStartedAt?: number;
}

/** The run of `up`: model, plan, state record and choices, before anything is made. */
function newRun(opts: LabOptions): LabRun {
  const { stack, state, log, concurrency } = resolveContext(opts);
  const model = loadLabModel(opts);
  const plan = buildPlan(model, stack, opts.endpoints ?? "docker");
  const st: LabState = {
    version: 1,
    stack,
    prefix: plan.prefix,
    createdAt: new Date().toISOString(),
    config: model.config,
    plan,
    namespaces: [],
    birds: [],
  };
  const external = dockerHostFromEnv();
  return {
    stack,
    opts,
    model,
    plan,
    state,
    st,
    log,
    concurrency,
    felix: opts.felix ?? "real",
    ...(external !== undefined ? { externalDocker: external } : {}),
    save: () => state.write(st),
  };
}

function describe(r: LabRun): string {
  const { plan, model } = r;
  const docker = r.externalDocker ? `DOCKER_HOST=${r.externalDocker}` : "the lab's own dockerd";
  return (
    `lab ${r.stack}: ${plan.hosts.length} host(s), ${plan.endpoints.length} endpoint(s), ` +
    `${plan.fabric === "router" ? "GCE-like routed fabric" : "one LAN"}, BGP ${
      plan.bgp ? `on (${model.config.bgp.peering}, ${model.config.bgp.session})` : "off"
    }; endpoints ${
      plan.endpointMode === "docker" ? `as Docker containers (${docker})` : "as bare namespaces"
    }; Felix ${r.felix === "real" ? "real (felix image)" : "STAND-IN (no policy)"}; names ${
      plan.prefix
    }-*; state ${r.state.dir}`
  );
}

export async function labUp(opts: LabOptions = {}): Promise<UpResult> {
  const t0 = performance.now();
  const r = newRun(opts);
  await preflight(
    {
      bird: r.plan.bgp,
      ...(needsDocker(r) ? { docker: r.externalDocker ? "cli" : "daemon" } : {}),
    },
    r.log,
  );
  r.log(describe(r));
  if (
    r.state.exists() ||
    (await labNamespaces(r.plan.prefix)).length > 0 ||
    labDockerPids(r.state, r.plan.prefix).length > 0
  ) {
    await step(r.log, "replacing the existing lab", () => labDown({ ...opts, log: () => {} }));
  }
  r.save();
  startDaemon(r);
  for (const stage of UP_STAGES) {
    if (stage.applies !== undefined && !stage.applies(r)) continue;
    await step(r.log, stage.title(r), () => stage.up(r));
  }
  r.st.upDoneAt = Date.now();
  r.save();
  const durationMs = performance.now() - t0;
  r.log(
    `lab ${r.stack} is up (${fmtSeconds(durationMs)}); next: npm run lab -- check --stack ${r.stack}`,
  );
  const birdStartedAt = r.st.birds[0]?.startedAt;
  return {
    plan: r.plan,
    stateDir: r.state.dir,
    durationMs,
    ...(birdStartedAt !== undefined ? { birdStartedAt } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// down

export interface DownResult {
  namespaces: string[];
  processes: number[];
  durationMs: number;
}

/** Named namespaces with this prefix (any lab: `cl<6 hex>-`, when no prefix is given). */
export async function labNamespaces(prefix?: string): Promise<string[]> {
  const { stdout } = await run("ip", ["netns", "list"]);
  const any = new RegExp(`^${LAB_PREFIX}[0-9a-f]{6}-`);
  return stdout
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((ns) => ns !== "" && (prefix ? isLabNamespace({ prefix }, ns) : any.test(ns)));
}

export async function labDown(opts: LabOptions = {}): Promise<DownResult> {
  const { stack, state, log, concurrency } = resolveContext(opts);
  const t0 = performance.now();
  await preflight({ bird: false }, log);
  const prefix = labPrefix(stack);
  let st: LabState | undefined;
  try {
    st = state.read();
  } catch (e) {
    log(`  (ignoring unreadable state: ${(e as Error).message})`);
  }
  const pids = await step(log, "stop the host agents", () => stopAgents(state, st));
  pids.push(...(await step(log, "stop the plugin", () => stopLabPlugins(state))));
  pids.push(
    ...(await step(log, "stop BIRD", async () => {
      const found = new Set([
        ...(st?.birds ?? [])
          .map((b) => b.pid)
          .filter((p) => cmdline(p).some((a) => a.startsWith(state.dir))),
        ...labBirdPids(state),
      ]);
      await killAll([...found]);
      return [...found];
    })),
  );
  pids.push(...(await step(log, "stop sshd", () => stopLabSshd(state))));
  // Felix, the ACL Manager and the endpoints are containers: they go with the daemon stage.
  pids.push(...(await daemonDown(state, st, prefix, log)));
  const present = await labNamespaces(prefix);
  await hostScriptsDown(st, present, log, concurrency, state);
  const namespaces = await namespacesDown(st, present, prefix, concurrency, log);
  if (st?.neighbour !== undefined) {
    const others = (await labNamespaces()).some((ns) => !ns.startsWith(`${prefix}-`));
    log(`- ${restoreNeighbourCapacity(st.neighbour, others)}`);
  }
  await step(log, "remove the state folder", async () => {
    rmSync(state.dir, { recursive: true, force: true });
    try {
      // The default `.lab` goes when it holds nothing but the shared cache of images.
      if (state.root === DEFAULT_STATE_ROOT && readdirSync(state.root).length === 0) {
        rmSync(state.root, { recursive: true });
      }
    } catch {
      // root already gone
    }
  });
  const durationMs = performance.now() - t0;
  log(`lab ${stack} is down (${fmtSeconds(durationMs)})`);
  return { namespaces, processes: pids, durationMs };
}

async function hostScriptsDown(
  st: LabState | undefined,
  present: string[],
  log: (l: string) => void,
  concurrency: number,
  state: StateDir,
): Promise<void> {
  const plan = st?.plan;
  if (plan === undefined) return;
  await step(log, "host preparation script (remove) in each host", async () => {
    const failures = await poolSettled(
      plan.hosts.filter((h) => present.includes(h.ns) && existsSync(state.hostScript(h.index))),
      concurrency,
      (h) => hostScriptAction(state, h, "remove"),
    );
    for (const f of failures) log(`    ${f.item.name}: ${f.error.message}`);
  });
}

async function namespacesDown(
  st: LabState | undefined,
  present: string[],
  prefix: string,
  concurrency: number,
  log: (l: string) => void,
): Promise<string[]> {
  const namespaces = [...new Set([...(st?.namespaces ?? []), ...present])].filter((ns) =>
    present.includes(ns),
  );
  await step(log, `delete ${namespaces.length} network namespaces`, async () => {
    // Endpoints first, so their taps go before the hosts (either way all of it goes).
    const order = [...namespaces].sort((a, b) => rank(b, prefix) - rank(a, prefix));
    const failures = await poolSettled(order, concurrency, (ns) => run("ip", ["netns", "del", ns]));
    const left = await labNamespaces(prefix);
    if (left.length > 0) {
      throw new LabError(
        `could not delete ${left.join(", ")}: ${failures.map((f) => f.error.message).join("; ")}`,
      );
    }
  });
  return namespaces;
}

function rank(ns: string, prefix: string): number {
  if (ns.startsWith(`${prefix}-e-`) || ns.startsWith(`${prefix}-x`)) return 2;
  if (ns.startsWith(`${prefix}-h-`)) return 1;
  return 0;
}
