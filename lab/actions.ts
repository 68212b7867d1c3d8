/**
 * What tests, benches and fault checks do to a lab that is up: run an endpoint's or a host's
 * rendered script, stop and start a host agent, restart the lab's dockerd or the plugin, and
 * find the lab's Docker daemon.
 */
import { startAgent, stopAgent } from "./agent.js";
import { hostOf, LabError, requireState, resolveContext, type LabOptions } from "./context.js";
import { restartDockerd } from "./docker.js";
import { hostScriptAction } from "./stages/host-prep.js";
import { scriptIn } from "./stages/endpoints.js";
import { startPlugin, stopLabPlugins, type PluginRole } from "./stages/plugin.js";
import { buildModel } from "../components/model.js";

/** Run a rendered endpoint script of a lab that is up (fault checks, tests). */
export async function endpointScriptAction(
  opts: LabOptions,
  endpoint: string,
  action: "add" | "remove",
): Promise<string> {
  const { state } = resolveContext(opts);
  const st = requireState(state);
  const plan = st.plan;
  const e = plan.endpoints.find((x) => x.name === endpoint);
  if (e === undefined) throw new LabError(`no endpoint ${endpoint} in lab ${plan.stack}`);
  const host = plan.hosts.find((h) => h.name === e.host)!;
  const dockerHost = plan.endpointMode === "docker" ? st.docker?.host : undefined;
  return scriptIn(host.ns, state.endpointScript(e.name), action, e, dockerHost);
}

/** DOCKER_HOST of a lab that is up with a Docker daemon. */
export function labDockerHost(opts: LabOptions): string {
  const { state } = resolveContext(opts);
  const st = requireState(state);
  if (st.docker === undefined) {
    throw new LabError(
      `lab ${state.stack} has bare-namespace endpoints and no Felix (up --endpoints netns ` +
        "--felix stand-in): no Docker daemon",
    );
  }
  return st.docker.host;
}

function dockerState(opts: LabOptions) {
  const { state } = resolveContext(opts);
  const st = requireState(state);
  if (st.docker === undefined) {
    throw new LabError(`lab ${state.stack} runs no Docker daemon: no agents`);
  }
  return { state, st, docker: st.docker };
}

/** Stop one host's agent (fault checks: a host going down). */
export async function stopHostAgent(opts: LabOptions, hostName: string): Promise<void> {
  const { state, st } = dockerState(opts);
  await stopAgent(state, hostOf(st.plan, hostName));
  st.agents = (st.agents ?? []).filter((a) => a.host !== hostName);
  state.write(st);
}

/** Start one host's agent again, as its unit does at boot. */
export async function startHostAgent(opts: LabOptions, hostName: string): Promise<void> {
  const { state, st, docker: d } = dockerState(opts);
  const rec = startAgent(state, hostOf(st.plan, hostName), d.host);
  st.agents = [...(st.agents ?? []).filter((a) => a.host !== hostName), rec];
  state.write(st);
}

/** Restart the lab's own dockerd (fault checks): its containers stop, and come back. */
export async function restartLabDocker(opts: LabOptions): Promise<void> {
  const { state, st, docker: d } = dockerState(opts);
  if (!d.own) throw new LabError(`the lab uses ${d.host} (DOCKER_HOST): not restarting it`);
  st.docker = await restartDockerd(state, st.prefix);
  state.write(st);
}

/** Restart one role of the plugin (its process killed, a new one started over the same data). */
export async function restartLabPlugin(opts: LabOptions, role: PluginRole): Promise<void> {
  const { state } = resolveContext(opts);
  const st = requireState(state);
  if (st.felix?.mode !== "real") throw new LabError(`lab ${state.stack} runs no plugin`);
  await stopLabPlugins(state, role);
  const rec = startPlugin(state, st.plan, buildModel(st.config!), role);
  st.plugins = [...(st.plugins ?? []).filter((p) => p.role !== role), rec];
  state.write(st);
}

/** Run a host's rendered preparation script of a lab that is up. */
export async function hostScriptActionFor(
  opts: LabOptions,
  hostName: string,
  action: "apply" | "remove",
): Promise<string> {
  const { state } = resolveContext(opts);
  const plan = requireState(state).plan;
  return hostScriptAction(state, hostOf(plan, hostName), action);
}
