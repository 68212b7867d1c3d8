/**
 * The lab's Docker: its own dockerd from Debian's docker.io (data root, exec root, pid file and
 * unix socket under the state folder, no iptables, no bridge), or the daemon DOCKER_HOST names;
 * the util image made without a registry (Debian's busybox-static in a root filesystem tar,
 * `docker import`); the endpoint containers, labelled as production labels them.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync } from "node:fs";
import { lstat, readlink, rm, symlink, unlink, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { alive, cmdline, killAll } from "./processes.js";
import { LabError } from "./context.js";
import { run, sleep, spawnDetached, type RunOptions } from "./exec.js";
import type { EndpointPlan, LabPlan } from "./plan.js";
import type { DockerRecord, StateDir } from "./state.js";

export const UTIL_IMAGE = "calico-lab/util:latest";
/** Which lab a container belongs to (a DOCKER_HOST daemon may hold other containers). */
export const LAB_LABEL = "calico-lab.prefix";
/** The busybox applets the util image carries. */
const APPLETS = ["sh", "ping", "httpd", "wget", "nc", "sleep", "ip", "ifconfig", "cat", "ls"];

/** The daemon named by DOCKER_HOST, or undefined when it is not set. */
export function dockerHostFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env.DOCKER_HOST?.trim();
  if (value === undefined || value === "") return undefined;
  if (!value.startsWith("unix://")) {
    throw new LabError(
      `DOCKER_HOST=${JSON.stringify(value)}: the lab needs a daemon on this machine ` +
        "(unix://<socket>): the endpoint script enters the container's namespace by its pid",
    );
  }
  return value;
}

/** `docker ...` against the lab's daemon. */
export function docker(host: string, args: string[], opts: RunOptions = {}) {
  return run("docker", args, { ...opts, env: { ...(opts.env ?? process.env), DOCKER_HOST: host } });
}

/** GET /_ping over the daemon's unix socket: true when it answers. */
export function daemonAnswers(host: string): Promise<boolean> {
  const socket = host.replace(/^unix:\/\//, "");
  return new Promise((resolve) => {
    const req = http.get({ socketPath: socket, path: "/_ping", timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
  });
}

export async function waitForDaemon(host: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await daemonAnswers(host))) {
    if (Date.now() > deadline) {
      throw new LabError(
        `the Docker daemon at ${host} does not answer after ${timeoutMs / 1000} s`,
      );
    }
    await sleep(50);
  }
}

export function dockerdArgs(state: StateDir, prefix: string): string[] {
  return [
    "--data-root",
    state.dockerDataRoot,
    "--exec-root",
    state.dockerExecRoot(prefix),
    "--pidfile",
    state.dockerPid,
    "-H",
    `unix://${state.dockerSocket(prefix)}`,
    // Where a system containerd runs, dockerd uses it: keep the lab's containers in
    // containerd namespaces of its own, apart from the system Docker's.
    "--containerd-namespace",
    `${prefix}-lab`,
    "--containerd-plugins-namespace",
    `${prefix}-lab-plugins`,
    "--iptables=false",
    "--ip-masq=false",
    "--bridge=none",
    "--userland-proxy=false",
  ];
}

/** Start the lab's own dockerd and wait until it answers. */
export async function startDockerd(state: StateDir, prefix: string): Promise<DockerRecord> {
  mkdirSync(state.dockerDataRoot, { recursive: true });
  mkdirSync(path.dirname(state.dockerSocket(prefix)), { recursive: true });
  mkdirSync(state.dockerExecRoot(prefix), { recursive: true });
  const host = `unix://${state.dockerSocket(prefix)}`;
  const fd = openSync(state.dockerLog, "a");
  let pid: number;
  try {
    pid = spawnDetached("dockerd", dockerdArgs(state, prefix), fd);
  } finally {
    closeSync(fd);
  }
  try {
    await waitForDaemon(host);
  } catch (e) {
    const tail = existsSync(state.dockerLog)
      ? readFileSync(state.dockerLog, "utf8").trim().split("\n").slice(-5).join("\n    ")
      : "";
    throw new LabError(`${(e as Error).message}; dockerd's log (${state.dockerLog}):\n    ${tail}`);
  }
  return { host, own: true, pid };
}

/** Processes of the lab's own Docker: dockerd, its containerd and the container shims. */
export function labDockerPids(state: StateDir, prefix: string): number[] {
  const markers = [state.dockerDataRoot, state.dockerExecRoot(prefix), state.dockerSocket(prefix)];
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = cmdline(Number(entry));
    if (argv.length === 0 || !/(^|\/)(dockerd|containerd[a-z0-9-]*)$/.test(argv[0]!)) continue;
    if (argv.some((a) => markers.some((m) => a.includes(m)))) pids.push(Number(entry));
  }
  return pids;
}

/** Mount points at or under any of `roots` (deepest first). */
export function mountsUnder(roots: string[]): string[] {
  const points = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\040/g, " "))
    .filter((p) => roots.some((r) => p === r || p.startsWith(`${r}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Stop the lab's own dockerd (it stops its containers first), then whatever of it is left:
 * processes, mounts (overlay layers, container namespaces), its folders.
 */
export async function stopDockerd(
  state: StateDir,
  prefix: string,
  /** Runs once the daemon is gone and unmounted, before its folders are removed. */
  beforeRemove?: () => Promise<void>,
): Promise<number[]> {
  const daemons = labDockerPids(state, prefix).filter((p) => /dockerd$/.test(cmdline(p)[0]!));
  await killAll(daemons, 20_000);
  const rest = labDockerPids(state, prefix);
  await killAll(rest, 3000);
  const roots = [state.dockerDataRoot, state.dockerExecRoot(prefix), state.runDir(prefix)];
  for (const m of mountsUnder(roots)) {
    await run("umount", ["-l", m], { okCodes: [32] });
  }
  await beforeRemove?.();
  for (const r of [...roots, state.dockerSocket(prefix)]) {
    await rm(r, { recursive: true, force: true });
  }
  return [...daemons, ...rest];
}

/** Restart the lab's own dockerd in place (fault checks): same folders, same socket. */
export async function restartDockerd(state: StateDir, prefix: string): Promise<DockerRecord> {
  const daemons = labDockerPids(state, prefix).filter((p) => /dockerd$/.test(cmdline(p)[0]!));
  await killAll(daemons, 20_000);
  // Its containerd goes with it; shims of stopped containers exit.
  const deadline = Date.now() + 10_000;
  while (labDockerPids(state, prefix).some(alive) && Date.now() < deadline) await sleep(50);
  return startDockerd(state, prefix);
}

// ---------------------------------------------------------------------------------------------
// The util image

/** True when the ELF file has no program interpreter (a static binary). */
export function isStaticElf(file: string): boolean {
  const b = readFileSync(file);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (b.readUInt32LE(phoff + i * phentsize) === 3) return false; // PT_INTERP
  }
  return true;
}

/** Make `calico-lab/util:latest` from busybox-static unless the daemon has it. */
export async function ensureUtilImage(host: string, state: StateDir): Promise<boolean> {
  const have = await docker(host, ["image", "inspect", "-f", "{{.Id}}", UTIL_IMAGE], {
    okCodes: [1],
  });
  if (have.code === 0) return false;
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find(existsSync);
  if (busybox === undefined || !isStaticElf(busybox)) {
    throw new LabError(
      `the util image needs a static busybox (${busybox ?? "none found"} is not): ` +
        "install Debian's busybox-static",
    );
  }
  const root = state.imageRoot;
  await rm(root, { recursive: true, force: true });
  for (const d of ["bin", "tmp", "proc", "sys", "dev", "etc", "www"]) {
    mkdirSync(path.join(root, d), { recursive: true });
  }
  await run("cp", [busybox, path.join(root, "bin", "busybox")]);
  for (const a of APPLETS) await symlink("busybox", path.join(root, "bin", a));
  await writeFile(path.join(root, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\n");
  await writeFile(path.join(root, "etc", "group"), "root:x:0:\n");
  await writeFile(path.join(root, "www", "index.html"), "calico-lab\n");
  await run(
    "sh",
    [
      "-c",
      'tar --owner=0 --group=0 --numeric-owner -C "$1" -c . | docker import ' +
        '--change "$2" --change "$3" - "$4" >/dev/null',
      "sh",
      root,
      'CMD ["/bin/sleep", "2147483647"]',
      "ENV PATH=/bin",
      UTIL_IMAGE,
    ],
    { env: { ...process.env, DOCKER_HOST: host } },
  );
  await rm(root, { recursive: true, force: true });
  return true;
}

// ---------------------------------------------------------------------------------------------
// Endpoint containers

/** The labels production gives an endpoint container, and which lab it belongs to. */
export function endpointLabels(e: EndpointPlan, prefix: string): Record<string, string> {
  return {
    "calico-docker.role": "endpoint",
    "calico-docker.host": e.host,
    "calico-docker.endpoint": e.name,
    "calico-docker.ip": e.ip,
    "calico-docker.group": e.group,
    [LAB_LABEL]: prefix,
  };
}

/** `docker create` arguments of an endpoint container (`run -d` takes the same). */
export function endpointCreateArgs(e: EndpointPlan, prefix: string): string[] {
  return [
    "create",
    "--name",
    e.container,
    "--net=none",
    "--restart",
    "unless-stopped",
    // As the util image's STOPSIGNAL: sleep as pid 1 ignores SIGTERM; nothing to lose.
    "--stop-signal",
    "SIGKILL",
    ...Object.entries(endpointLabels(e, prefix)).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
    ...Object.entries(e.workload.env ?? {}).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
    ...(e.workload.workingDir !== undefined ? ["--workdir", e.workload.workingDir] : []),
    ...(e.workload.user !== undefined ? ["--user", e.workload.user] : []),
    e.workload.image ?? UTIL_IMAGE,
    ...(e.workload.command ?? []),
  ];
}

/**
 * Refuse, before any container starts, an endpoint whose image the daemon does not have: the
 * lab pulls nothing (there is no registry), so the message names the endpoint's key.
 */
export async function checkImages(host: string, plan: LabPlan): Promise<void> {
  const problems: string[] = [];
  const checked = new Map<string, boolean>();
  for (const e of plan.endpoints) {
    const image = e.workload.image;
    if (e.workload.attach || image === undefined) continue;
    if (!checked.has(image)) {
      const r = await docker(host, ["image", "inspect", "-f", "{{.Id}}", image], {
        okCodes: [1],
      });
      checked.set(image, r.code === 0);
    }
    if (!checked.get(image)) {
      problems.push(
        `${e.configPath}.image: ${image} (endpoint ${e.name}) is not on the lab's Docker ` +
          `daemon at ${host}, and the lab pulls nothing (no registry): load it first ` +
          `(docker load, or docker import a root filesystem), or use ${UTIL_IMAGE}`,
      );
    }
  }
  if (problems.length > 0) throw new LabError(problems.join("\n"));
}

/** Create (not start) an endpoint container; its id. */
export async function createEndpointContainer(
  host: string,
  e: EndpointPlan,
  prefix: string,
): Promise<string> {
  const { stdout } = await docker(host, endpointCreateArgs(e, prefix));
  const id = stdout.trim().split("\n").pop()!;
  if (!/^[0-9a-f]{64}$/.test(id)) {
    throw new LabError(`docker create ${e.container} said: ${stdout}`);
  }
  return id;
}

/** Containers of this lab in the daemon (any state). */
export async function labContainers(host: string, prefix: string): Promise<string[]> {
  const { stdout } = await docker(host, [
    "ps",
    "-aq",
    "--no-trunc",
    "--filter",
    `label=${LAB_LABEL}=${prefix}`,
  ]);
  return stdout.split("\n").filter(Boolean);
}

/** Refuse containers named like ours that belong to something else (a shared daemon). */
export async function checkNamesFree(host: string, plan: LabPlan): Promise<void> {
  const { stdout } = await docker(host, [
    "ps",
    "-a",
    "--format",
    `{{.Names}}\t{{.Label "${LAB_LABEL}"}}`,
  ]);
  // An attached endpoint's container is someone else's by design.
  const wanted = new Set(plan.endpoints.filter((e) => !e.workload.attach).map((e) => e.container));
  const taken = stdout
    .split("\n")
    .map((l) => l.split("\t"))
    .filter(([name, owner]) => name !== undefined && wanted.has(name) && owner !== plan.prefix)
    .map(([name]) => name!);
  if (taken.length > 0) {
    throw new LabError(
      `the Docker daemon at ${host} already has containers named ${taken.join(", ")} ` +
        "that are not this lab's: remove them, or use the lab's own daemon (unset DOCKER_HOST)",
    );
  }
}

/** Remove this lab's containers from a daemon (SIGKILL, then gone). */
export async function removeLabContainers(host: string, prefix: string): Promise<number> {
  const ids = await labContainers(host, prefix);
  for (let i = 0; i < ids.length; i += 100) {
    await docker(host, ["rm", "-f", ...ids.slice(i, i + 100)], { timeoutMs: 300_000 });
  }
  return ids.length;
}

/**
 * The `/var/run/netns` links the endpoint script made for these endpoints (docker mode), and
 * any `calico-*` link whose process is gone (a lab killed before `down` could read its state).
 */
export async function removeNetnsLinks(names: string[]): Promise<string[]> {
  const dir = "/var/run/netns";
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  const wanted = new Set(names);
  for (const entry of readdirSync(dir)) {
    const file = path.join(dir, entry);
    const st = await lstat(file).catch(() => undefined);
    if (st === undefined || !st.isSymbolicLink()) continue;
    const target = await readlink(file).catch(() => "");
    const dangling = /^\/proc\/\d+\/ns\/net$/.test(target) && !existsSync(target);
    if (wanted.has(entry) || (entry.startsWith("calico-") && dangling)) {
      await unlink(file).catch(() => {});
      removed.push(entry);
    }
  }
  return removed;
}
