/**
 * The lab: a stack's hosts and endpoints as network namespaces on this machine, wired by the
 * very scripts production runs, with real BIRD, and checked with a full ping matrix.
 *
 *   up     fabric + host namespaces, host preparation script, endpoints (Docker containers on
 *          the lab's own dockerd, or bare namespaces) wired by the endpoint script, Felix's
 *          routing part (host route + proxy ARP per tap), BIRD per host (BGP on) or the GCE
 *          fabric's static routes (BGP off)
 *   check  BGP sessions, routes for remote endpoints, endpoint-to-endpoint ping matrix
 *   down   everything `up` made, found from the state folder and by name prefix
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { buildModel, tapName, type ClusterModel, type EndpointModel } from "../components/model.js";
import {
  attachLookupScript,
  renderBirdConf,
  renderEndpointScript,
  renderHostScript,
  renderPluginData,
} from "../components/render/index.js";
import { loadStackFile, stackFilePath } from "../components/stackfile.js";
import { agentLogOffsets, startAgent, stopAgent, stopAgents, waitForAgents } from "./agent.js";
import { cmdline, killAll, labBirdPids, startBirdProcess } from "./bird.js";
import {
  FELIX_STAND_IN,
  fmtSeconds,
  hostOf,
  LabError,
  requireState,
  resolveContext,
  step,
  type LabOptions,
} from "./context.js";
import {
  checkImages,
  checkNamesFree,
  daemonAnswers,
  dockerHostFromEnv,
  ensureUtilImage,
  labDockerPids,
  removeLabContainers,
  removeNetnsLinks,
  restartDockerd,
  createEndpointContainer,
  docker,
  startDockerd,
  stopDockerd,
  UTIL_IMAGE,
  waitForDaemon,
} from "./docker.js";
import { ipBatch, missingTools, pool, poolSettled, run, runIn } from "./exec.js";
import { ensureNeighbourCapacity, restoreNeighbourCapacity } from "./neigh.js";
import { startLabSshd, stopLabSshd } from "./sshd.js";
import {
  buildPlan,
  isLabNamespace,
  LAB_PREFIX,
  labPrefix,
  planNamespaces,
  type EndpointMode,
  type EndpointPlan,
  type HostPlan,
  type LabPlan,
} from "./plan.js";
import {
  DEFAULT_STATE_ROOT,
  REPO_ROOT,
  StateDir,
  type DockerRecord,
  type LabState,
} from "./state.js";

// ---------------------------------------------------------------------------------------------
// Preflight: Linux, root, the tools.

const TOOL_PACKAGES: Record<string, string> = {
  dockerd: "docker.io",
  docker: "docker.io",
  busybox: "busybox-static",
  tar: "tar",
  ip: "iproute2",
  iptables: "iptables",
  nsenter: "util-linux",
  sysctl: "procps",
  ping: "iputils-ping",
  bird: "bird",
  birdc: "bird",
  sshd: "openssh-server",
  "ssh-keygen": "openssh-client",
  ssh: "openssh-client",
};

export interface Needs {
  bird: boolean;
  /** `daemon`: the lab starts its own dockerd; `cli`: DOCKER_HOST names one. */
  docker?: "daemon" | "cli";
}

export async function preflight(needs: Needs, log: (l: string) => void): Promise<void> {
  const needBird = needs.bird;
  if (process.platform !== "linux") {
    throw new LabError(`the lab needs Linux network namespaces (this is ${process.platform})`);
  }
  if (process.getuid?.() !== 0) {
    throw new LabError(
      "the lab needs root (it creates network namespaces and runs BIRD): " +
        "run `sudo npm run lab -- up|check|down`",
    );
  }
  const tools = [
    "ip",
    "iptables",
    "nsenter",
    "sysctl",
    "ping",
    "sshd",
    "ssh-keygen",
    "ssh",
    ...(needBird ? ["bird", "birdc"] : []),
    ...(needs.docker === "daemon" ? ["dockerd"] : []),
    ...(needs.docker !== undefined ? ["docker", "busybox", "tar"] : []),
  ];
  let missing = await missingTools(tools);
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((t) => TOOL_PACKAGES[t]!))];
    const apt = (await missingTools(["apt-get"])).length === 0;
    if (!apt) {
      throw new LabError(
        `missing ${missing.join(", ")}: install ${packages.join(" ")} (BIRD must be 1.x) and retry`,
      );
    }
    log(`- installing ${packages.join(" ")} with apt-get (missing: ${missing.join(", ")})`);
    const aptEnv = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const install = () =>
      run("apt-get", ["install", "-y", "--no-install-recommends", ...packages], {
        env: aptEnv,
        timeoutMs: 600_000,
      });
    try {
      // A fresh machine may have no package lists yet: update once, then try again.
      await install().catch(async () => {
        log("- apt-get update (the first install failed)");
        await run("apt-get", ["update", "-qq"], { env: aptEnv, timeoutMs: 600_000 });
        await install();
      });
    } catch (e) {
      throw new LabError(
        `could not install ${packages.join(" ")} with apt-get (try \`apt-get update\` first): ${
          (e as Error).message
        }`,
      );
    }
    missing = await missingTools(tools);
    if (missing.length > 0)
      throw new LabError(`still missing after apt-get: ${missing.join(", ")}`);
  }
  if (needBird) {
    const { stdout, stderr } = await run("bird", ["--version"]);
    const version = /BIRD version (\S+)/.exec(stderr + stdout)?.[1];
    if (version === undefined || !version.startsWith("1.")) {
      throw new LabError(
        `the lab needs BIRD 1.x (the rendered bird.conf is BIRD 1 syntax), found ${
          version ?? "an unknown version"
        }: install Debian's \`bird\` package, not \`bird2\``,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Loading the stack.

export function loadLabModel(opts: LabOptions): ClusterModel {
  const { stack } = resolveContext(opts);
  const config = opts.config ?? loadStackFile(opts.stackFile ?? stackFilePath(stack, REPO_ROOT));
  return buildModel(config);
}

// ---------------------------------------------------------------------------------------------
// up

export interface UpResult {
  plan: LabPlan;
  stateDir: string;
  durationMs: number;
  /** Epoch ms when the first BIRD started (BGP on). */
  birdStartedAt?: number;
}

export async function labUp(opts: LabOptions = {}): Promise<UpResult> {
  const { stack, state, log, concurrency } = resolveContext(opts);
  const t0 = performance.now();
  const model = loadLabModel(opts);
  const mode: EndpointMode = opts.endpoints ?? "docker";
  const external = mode === "docker" ? dockerHostFromEnv() : undefined;
  const plan = buildPlan(model, stack, mode);
  await preflight(
    { bird: plan.bgp, ...(mode === "docker" ? { docker: external ? "cli" : "daemon" } : {}) },
    log,
  );
  log(
    `lab ${stack}: ${plan.hosts.length} host(s), ${plan.endpoints.length} endpoint(s), ` +
      `${plan.fabric === "router" ? "GCE-like routed fabric" : "one LAN"}, BGP ${
        plan.bgp ? `on (${model.config.bgp.peering}, ${model.config.bgp.session})` : "off"
      }; endpoints ${
        mode === "docker"
          ? `as Docker containers (${external ? `DOCKER_HOST=${external}` : "the lab's own dockerd"})`
          : "as bare namespaces"
      }; names ${plan.prefix}-*; state ${state.dir}`,
  );

  if (
    state.exists() ||
    (await labNamespaces(plan.prefix)).length > 0 ||
    labDockerPids(state, plan.prefix).length > 0
  ) {
    await step(log, "replacing the existing lab", () => labDown({ ...opts, log: () => {} }));
  }

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
  state.write(st);

  // The daemon starts while the namespaces are made (it needs none of them).
  let dockerReady: Promise<DockerRecord> | undefined;
  if (mode === "docker") {
    dockerReady = (async () => {
      const rec: DockerRecord = external
        ? (await waitForDaemon(external, 5000), { host: external, own: false })
        : await startDockerd(state, plan.prefix);
      await ensureUtilImage(rec.host, state);
      await checkImages(rec.host, plan);
      await checkNamesFree(rec.host, plan);
      return rec;
    })();
    // Handled where it is awaited; not an unhandled rejection meanwhile.
    dockerReady.catch(() => {});
  }

  await step(log, `create ${planNamespaces(plan).length} network namespaces`, async () => {
    st.namespaces = planNamespaces(plan);
    state.write(st); // recorded first: a failure half-way is still cleaned up by `down`
    const failures = await poolSettled(st.namespaces, concurrency, (ns) =>
      run("ip", ["netns", "add", ns]),
    );
    if (failures.length > 0) throw failures[0]!.error;
  });

  await step(log, "fabric: bridge, host links and addresses", () => buildFabric(plan, concurrency));

  if (plan.fabricRoutes.length > 0) {
    await step(log, `fabric: ${plan.fabricRoutes.length} static route(s) of the GCE network`, () =>
      ipBatch(
        plan.fabricNs,
        plan.fabricRoutes.map((r) => `route replace ${r.dest} via ${r.via} dev ${plan.bridge}`),
      ),
    );
  }

  await step(log, "host preparation script (apply) in each host", async () => {
    const outputs = await pool(plan.hosts, concurrency, (h) =>
      runHostScript(model, state, h, "apply"),
    );
    // What the script could not do here (kernel modules), said once.
    const notes = new Set(
      outputs.flatMap((o) => o.split("\n").filter((l) => /kernel module/.test(l))),
    );
    for (const n of notes) log(`    ${n.replace(/^\[calico-host\] /, "")}`);
  });

  const neighbour = ensureNeighbourCapacity(plan.endpoints.length, plan.hosts.length);
  if (neighbour !== undefined) {
    st.neighbour = neighbour;
    state.write(st);
    log(
      `- raised the kernel's neighbour table limits (shared by all namespaces) from ` +
        `gc_thresh2/3=${neighbour.from.gc_thresh2}/${neighbour.from.gc_thresh3} to ` +
        `${neighbour.to.gc_thresh2}/${neighbour.to.gc_thresh3} for ${plan.endpoints.length} ` +
        `endpoints ARPing for each other; down puts them back`,
    );
  }

  mkdirSync(state.endpointScripts, { recursive: true });
  const endpointOf = new Map(model.endpoints.map((m) => [m.name, m]));
  if (dockerReady !== undefined) {
    const rec = await step(
      log,
      external
        ? `Docker at ${external}, util image ${UTIL_IMAGE}`
        : `the lab's dockerd (unix://${state.dockerSocket(plan.prefix)}), util image ${UTIL_IMAGE}`,
      () => dockerReady,
    );
    st.docker = rec;
    state.write(st);
    // The agents host preparation installed, run as their unit would: they wire every
    // endpoint container of their host when it starts, in up as after any restart.
    await step(log, `host agent in each of ${plan.hosts.length} host(s)`, async () => {
      st.agents = [];
      for (const h of plan.hosts) {
        st.agents.push(startAgent(state, h, rec.host));
        state.write(st);
      }
    });
    await step(
      log,
      `start ${plan.endpoints.length} endpoint container(s); the host agents wire each`,
      async () => {
        const offsets = agentLogOffsets(state, plan);
        // Created, its script rendered for its id, then started: the agent finds the script.
        const failures = await poolSettled(plan.endpoints, concurrency, async (e) => {
          if (e.workload.attach) {
            // Someone else's running container: found, its script written and run here
            // (it is already running: no start for the agent to see).
            e.id = await attachedContainerId(endpointOf.get(e.name)!, plan, e, rec.host);
            e.tap = tapName(e.id);
            await runEndpointScript(endpointOf.get(e.name)!, state, plan, e, "add", rec.host);
            return;
          }
          e.id = await createEndpointContainer(rec.host, e, plan.prefix);
          e.tap = tapName(e.id);
          await writeFile(
            state.endpointScript(e.name),
            renderEndpointScript(endpointOf.get(e.name)!, e.id),
            {
              mode: 0o755,
            },
          );
          await docker(rec.host, ["start", e.id]);
        });
        state.write(st); // the containers' ids and taps
        if (failures.length > 0) {
          throw new LabError(
            `endpoint container failed: ${failures.map((f) => f.item.name).join(", ")}:\n` +
              failures[0]!.error.message,
          );
        }
        const failed = await waitForAgents(
          state,
          plan,
          plan.endpoints.filter((e) => !e.workload.attach),
          60_000 + 200 * plan.endpoints.length,
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
      },
    );
  } else {
    await step(
      log,
      `wire ${plan.endpoints.length} endpoint(s) with the endpoint script`,
      async () => {
        const failures = await poolSettled(plan.endpoints, concurrency, (e) =>
          runEndpointScript(endpointOf.get(e.name)!, state, plan, e, "add"),
        );
        if (failures.length > 0) {
          throw new LabError(
            `endpoint script failed for ${failures.map((f) => f.item.name).join(", ")}:\n` +
              failures[0]!.error.message,
          );
        }
      },
    );
  }

  await step(log, "Felix's routing part: host route and proxy ARP per tap", () =>
    felixStandIn(plan, concurrency),
  );
  log(`    (${FELIX_STAND_IN})`);

  let birdStartedAt: number | undefined;
  if (plan.bgp) {
    await step(log, `BIRD in ${plan.hosts.length} host(s)`, async () => {
      await pool(plan.hosts, concurrency, async (h) => {
        await writeFile(state.birdConf(h.index), renderBirdConf(model, model.hosts[h.index]!));
        try {
          await run("bird", ["-p", "-c", state.birdConf(h.index)]);
        } catch (e) {
          throw new LabError(
            `BIRD rejects the rendered bird.conf of ${h.name}: ${(e as Error).message}`,
          );
        }
      });
      for (const h of plan.hosts) {
        const rec = startBirdProcess(state, h);
        st.birds.push(rec);
        state.write(st);
        birdStartedAt ??= rec.startedAt;
      }
    });
  } else if (plan.fabric === "router") {
    log("- BGP is off: the fabric's static routes carry endpoint traffic between hosts");
  } else {
    log(
      "- BGP is off on platform existing: nothing carries endpoint routes between hosts " +
        "(as in production), so only pairs on the same host can answer",
    );
  }

  await step(log, "the controller's plugin data, as render/ makes it", () =>
    writePluginData(model, state, plan),
  );

  await step(log, `sshd in ${plan.hosts.length} host(s), for npm run status -- --lab`, () =>
    startLabSshd(state, plan, concurrency),
  );

  st.upDoneAt = Date.now();
  state.write(st);
  const durationMs = performance.now() - t0;
  log(
    `lab ${stack} is up (${fmtSeconds(durationMs)}); next: npm run lab -- check --stack ${stack}`,
  );
  return {
    plan,
    stateDir: state.dir,
    durationMs,
    ...(birdStartedAt !== undefined ? { birdStartedAt } : {}),
  };
}

/** The controller's plugin data directory, file by file as render/ makes it for production. */
async function writePluginData(model: ClusterModel, state: StateDir, plan: LabPlan) {
  const dir = state.pluginDataDir(model.controller.index);
  mkdirSync(dir, { recursive: true });
  const ids = new Map(plan.endpoints.map((e) => [e.name, e.id]));
  for (const f of renderPluginData(model, ids)) await writeFile(path.join(dir, f.name), f.content);
}

async function buildFabric(plan: LabPlan, concurrency: number): Promise<void> {
  const f = plan.fabricNs;
  await ipBatch(f, [
    "link set lo up",
    `link add ${plan.bridge} type bridge`,
    ...plan.bridgeAddresses.map((a) => `addr add ${a} dev ${plan.bridge}`),
    `link set ${plan.bridge} up`,
    ...[...plan.hosts, plan.operator].flatMap((h) => [
      `link add ${h.fabricPort} type veth peer name ${h.uplink} netns ${h.ns}`,
      `link set ${h.fabricPort} master ${plan.bridge}`,
      `link set ${h.fabricPort} up`,
    ]),
  ]);
  await ipBatch(plan.operator.ns, hostLinkCommands(plan.operator));
  // The fabric routes between the regional subnets on one bridge: no redirects.
  await runIn(f, "sysctl", [
    "-q",
    "-w",
    `net.ipv4.ip_forward=${plan.fabric === "router" ? 1 : 0}`,
    "net.ipv4.conf.all.send_redirects=0",
    `net.ipv4.conf.${plan.bridge}.send_redirects=0`,
  ]);
  await pool(plan.hosts, concurrency, async (h) => {
    await ipBatch(h.ns, hostLinkCommands(h));
    // New namespaces inherit ip_forward from the root namespace: set it explicitly.
    await runIn(h.ns, "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
  });
}

/** The host's uplink as on GCE (a /32 and a gateway), or as on a LAN. */
export function hostLinkCommands(
  h: Pick<HostPlan, "address" | "prefixLength" | "gateway" | "uplink">,
): string[] {
  const lines = [
    "link set lo up",
    `addr add ${h.address}/${h.prefixLength} dev ${h.uplink}`,
    `link set ${h.uplink} up`,
  ];
  if (h.gateway !== undefined) {
    lines.push(
      `route add ${h.gateway} dev ${h.uplink} scope link`,
      `route add default via ${h.gateway} dev ${h.uplink}`,
    );
  }
  return lines;
}

async function runHostScript(
  model: ClusterModel,
  state: StateDir,
  h: HostPlan,
  action: "apply" | "remove",
): Promise<string> {
  const file = state.hostScript(h.index);
  if (!existsSync(file))
    await writeFile(file, renderHostScript(model, model.hosts[h.index]!), { mode: 0o755 });
  return hostScriptAction(state, h, action);
}

async function hostScriptAction(
  state: StateDir,
  h: HostPlan,
  action: "apply" | "remove",
): Promise<string> {
  const env = { ...process.env, CALICO_ROOT: state.hostRoot(h.index) };
  const { stdout, stderr } = await runIn(h.ns, "bash", [state.hostScript(h.index), action], {
    env,
  });
  await writeFile(path.join(state.dir, `host-prepare-h${h.index}.${action}.log`), stdout + stderr);
  return stdout + stderr;
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

async function runEndpointScript(
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
async function scriptIn(
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

/** Run a rendered endpoint script of a lab that is up (fault checks, tests). */
export async function endpointScriptAction(
  opts: LabOptions,
  endpoint: string,
  action: "add" | "remove",
): Promise<string> {
  const { state } = resolveContext(opts);
  const st = requireState(state);
  const plan = st.plan!;
  const e = plan.endpoints.find((x) => x.name === endpoint);
  if (e === undefined) throw new LabError(`no endpoint ${endpoint} in lab ${plan.stack}`);
  const host = plan.hosts.find((h) => h.name === e.host)!;
  return scriptIn(host.ns, state.endpointScript(e.name), action, e, st.docker?.host);
}

/** DOCKER_HOST of a lab that is up with Docker endpoints. */
export function labDockerHost(opts: LabOptions): string {
  const { state } = resolveContext(opts);
  const st = requireState(state);
  if (st.docker === undefined) {
    throw new LabError(
      `lab ${state.stack} has bare-namespace endpoints (up --endpoints netns): no Docker daemon`,
    );
  }
  return st.docker.host;
}

function dockerState(opts: LabOptions) {
  const { state } = resolveContext(opts);
  const st = requireState(state);
  if (st.docker === undefined) {
    throw new LabError(`lab ${state.stack} has bare-namespace endpoints: no Docker, no agents`);
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

/** Run a host's rendered preparation script of a lab that is up. */
export async function hostScriptActionFor(
  opts: LabOptions,
  hostName: string,
  action: "apply" | "remove",
): Promise<string> {
  const { state } = resolveContext(opts);
  const plan = requireState(state).plan!;
  return hostScriptAction(state, hostOf(plan, hostName), action);
}

/** Felix's routing part, per host: `<ip> dev <tap>` and proxy ARP with no delay on each tap. */
export async function felixStandIn(plan: LabPlan, concurrency: number, only?: string[]) {
  await pool(plan.hosts, concurrency, async (h) => {
    const eps = plan.endpoints.filter(
      (e) => e.host === h.name && (only === undefined || only.includes(e.name)),
    );
    if (eps.length === 0) return;
    await ipBatch(
      h.ns,
      eps.map((e) => `route replace ${e.ip}/32 dev ${e.tap}`),
    );
    // A fresh tap answers ARP only after proxy_delay (~0.8 s): set it to 0.
    for (let i = 0; i < eps.length; i += 100) {
      await runIn(h.ns, "sysctl", [
        "-q",
        "-w",
        ...eps
          .slice(i, i + 100)
          .flatMap((e) => [
            `net.ipv4.conf.${e.tap}.proxy_arp=1`,
            `net.ipv4.neigh.${e.tap}.proxy_delay=0`,
          ]),
      ]);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// down

export interface DownResult {
  namespaces: string[];
  processes: number[];
  durationMs: number;
}

/** Named namespaces with this prefix. */
export async function labNamespaces(prefix: string): Promise<string[]> {
  const { stdout } = await run("ip", ["netns", "list"]);
  return stdout
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((ns) => ns !== "" && isLabNamespace({ prefix }, ns));
}

/** Namespaces of any lab (any stack). */
async function allLabNamespaces(): Promise<string[]> {
  const { stdout } = await run("ip", ["netns", "list"]);
  return stdout
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((ns) => new RegExp(`^${LAB_PREFIX}[0-9a-f]{6}-`).test(ns));
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

  const agentPids = await step(log, "stop the host agents", () => stopAgents(state, st));

  const pids = await step(log, "stop BIRD", async () => {
    const found = new Set([
      ...(st?.birds ?? [])
        .map((b) => b.pid)
        .filter((p) => cmdline(p).some((a) => a.startsWith(state.dir))),
      ...labBirdPids(state),
    ]);
    await killAll([...found]);
    return [...found];
  });

  const sshd = await step(log, "stop sshd", () => stopLabSshd(state));
  pids.push(...sshd);

  // Docker: this lab's containers, then its own daemon and what it mounted, then the
  // namespace links the endpoint script made.
  const ownDaemon = st?.docker?.own === true || labDockerPids(state, prefix).length > 0;
  const host = st?.docker?.host ?? (ownDaemon ? undefined : dockerHostFromEnv());
  if (host !== undefined || ownDaemon) {
    await step(log, "remove the endpoint containers", async () => {
      const at = host ?? `unix://${state.dockerSocket(prefix)}`;
      if (await daemonAnswers(at)) await removeLabContainers(at, prefix);
    });
  }
  if (ownDaemon) {
    const stopped = await step(log, "stop the lab's dockerd", () => stopDockerd(state, prefix));
    pids.push(...stopped);
  }
  if (st?.plan?.endpointMode === "docker" || ownDaemon) {
    await step(log, "remove the endpoints' namespace links", () =>
      removeNetnsLinks(
        (st?.plan?.endpointMode === "docker" ? st.plan.endpoints : []).map((e) => e.ns),
      ),
    );
  }

  const present = await labNamespaces(prefix);
  if (st?.plan !== undefined && existsSync(state.dir)) {
    const plan = st.plan;
    await step(log, "host preparation script (remove) in each host", async () => {
      const failures = await poolSettled(
        plan.hosts.filter((h) => present.includes(h.ns) && existsSync(state.hostScript(h.index))),
        concurrency,
        (h) => hostScriptAction(state, h, "remove"),
      );
      for (const f of failures) log(`    ${f.item.name}: ${f.error.message}`);
    });
  }

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

  if (st?.neighbour !== undefined) {
    const others = (await allLabNamespaces()).some((ns) => !ns.startsWith(`${prefix}-`));
    log(`- ${restoreNeighbourCapacity(st.neighbour, others)}`);
  }

  await step(log, "remove the state folder", async () => {
    rmSync(state.dir, { recursive: true, force: true });
    try {
      // The default `.lab` goes when empty; a folder the caller named stays.
      if (state.root === DEFAULT_STATE_ROOT && readdirSync(state.root).length === 0) {
        rmSync(state.root, { recursive: true });
      }
    } catch {
      // root already gone
    }
  });
  const durationMs = performance.now() - t0;
  log(`lab ${stack} is down (${fmtSeconds(durationMs)})`);
  return { namespaces, processes: [...agentPids, ...pids], durationMs };
}

function rank(ns: string, prefix: string): number {
  if (ns.startsWith(`${prefix}-e-`) || ns.startsWith(`${prefix}-x`)) return 2;
  if (ns.startsWith(`${prefix}-h-`)) return 1;
  return 0;
}
