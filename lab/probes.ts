/**
 * The lab as a target of the health-check engine (status/engine.ts): where BIRD's control
 * socket, the endpoints' namespaces and the controller's plugin data are in the lab, and
 * which probes need production pieces the lab does not have. The lab's `check` runs them
 * through its namespaces; `npm run status -- --lab` runs them over SSH from the operator's
 * namespace.
 */
import { buildModel, type ClusterModel } from "../components/model.js";
import type { KernelRoute, StatusTarget } from "../status/engine.js";
import { namespaceTransport, sshTransport, type Transport } from "../status/transport.js";
import { hostOf, requireState, resolveContext, type LabOptions } from "./context.js";
import { LAB_LABEL } from "./docker.js";
import { run } from "./exec.js";
import { loadLabModel } from "./lab.js";
import type { LabPlan } from "./plan.js";
import { LAB_SSH_USER, labKeyFile, labKnownHosts } from "./sshd.js";
import type { StateDir } from "./state.js";

export interface LabTarget {
  target: StatusTarget;
  plan: LabPlan;
  state: StateDir;
}

export async function fabricRoutes(plan: LabPlan): Promise<KernelRoute[]> {
  const { stdout } = await run("ip", [
    "-n",
    plan.fabricNs,
    "-j",
    "-4",
    "route",
    "show",
    "table",
    "main",
  ]);
  return stdout.trim() === "" ? [] : (JSON.parse(stdout) as KernelRoute[]);
}

/**
 * A pgrep pattern for `bash <script> run` that does not match the shell running pgrep (whose
 * command line holds the pattern): the first letter of the file name in brackets.
 */
export function agentPattern(script: string): string {
  const escaped = script.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const slash = escaped.lastIndexOf("/");
  return `${escaped.slice(0, slash + 1)}[${escaped[slash + 1]}]${escaped.slice(slash + 2)} run`;
}

/** The lab of a stack, as the engine sees it (the lab must be up). */
export function labTarget(opts: LabOptions): LabTarget {
  const { state } = resolveContext(opts);
  const st = requireState(state);
  const plan = st.plan;
  // The plan records what was built; the model gives what each host should hold.
  const model: ClusterModel =
    st.config !== undefined ? buildModel(st.config) : loadLabModel({ ...opts, stack: plan.stack });
  const ns = new Map(plan.endpoints.map((e) => [e.name, e.ns]));
  const target: StatusTarget = {
    stack: plan.stack,
    kind: "lab",
    model,
    endpointIds: new Map(plan.endpoints.map((e) => [e.name, e.id])),
    birdc: (h) => [
      "birdc",
      "-s",
      state.birdSocket(hostOf(plan, h.name).index),
      "show",
      "protocols",
    ],
    endpointNetns: (e) => ns.get(e.name)!,
    dataDir: state.pluginDataDir(model.controller.index),
    docker:
      st.docker !== undefined
        ? {
            host: st.docker.host,
            // One daemon serves every lab host: a host's containers carry its name.
            filters: (h) => [
              `label=calico-docker.host=${h.name}`,
              `label=${LAB_LABEL}=${plan.prefix}`,
            ],
          }
        : { none: "the lab's endpoints are bare network namespaces (no Docker)" },
    systemContainers:
      "the lab runs Felix and the ACL Manager as containers of its own names, BIRD and the " +
      "plugin as processes: check proves them by what they do",
    agent:
      st.agents !== undefined && st.agents.length > 0
        ? {
            name: "calico-agent",
            // The lab runs the rendered agent per host: `bash <state>/calico-agent-h<N>.sh run`.
            argv: (h) => [
              "pgrep",
              "-f",
              "--",
              agentPattern(state.agentScript(hostOf(plan, h.name).index)),
            ],
          }
        : { none: "the lab runs no host agent" },
    // The real Felix programs the host's namespace, where the probes run (legacy iptables,
    // as python-iptables); the stand-in programs no chains.
    felix:
      st.felix?.mode === "real"
        ? { argv: () => ["iptables-legacy-save", "-t", "filter"] }
        : "the lab's Felix is the stand-in (up --felix stand-in): no chains are programmed",
    ...(plan.bgp ? {} : { fabricRoutes: () => fabricRoutes(plan) }),
    sudo: () => [],
  };
  return { target, plan, state };
}

/** The lab's own transport: a command runs in the host's namespace. */
export function labNamespaceTransport(plan: LabPlan): Transport {
  return namespaceTransport((host) => hostOf(plan, host).ns);
}

/** SSH to the lab's sshd, from the operator's namespace, with the lab's key and host keys. */
export function labSshTransport(plan: LabPlan, state: StateDir, connectTimeoutS = 5): Transport {
  return sshTransport({
    hosts: plan.hosts.map((h) => ({ name: h.name, address: h.address, user: LAB_SSH_USER })),
    keyFile: labKeyFile(state),
    knownHostsFile: labKnownHosts(state),
    connectTimeoutS,
    wrap: ["ip", "netns", "exec", plan.operator.ns],
  });
}
