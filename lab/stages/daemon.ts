/**
 * Stage `docker`: the lab's own dockerd (or the daemon DOCKER_HOST names), with the util
 * image and no container names taken. It starts at the beginning of `up`, while the
 * namespaces are made (it needs none of them); the stage waits for it. With the real Felix
 * its data root is first seeded from the kept Docker root that holds the felix image
 * (daemon-root.ts), so the image is there when it answers. Undo (`down`): the
 * lab's containers, its daemon and what it mounted, and the namespace links of endpoints.
 */
import {
  checkImages,
  checkNamesFree,
  daemonAnswers,
  dockerHostFromEnv,
  ensureUtilImage,
  labDockerPids,
  removeLabContainers,
  removeNetnsLinks,
  startDockerd,
  stopDockerd,
  UTIL_IMAGE,
  waitForDaemon,
} from "../docker.js";
import { step } from "../context.js";
import { ensureFelixDaemonRoot, seedDaemonRoot } from "../daemon-root.js";
import type { LabPlan } from "../plan.js";
import type { DockerRecord, LabState, StateDir } from "../state.js";
import type { LabRun, Stage } from "./run.js";

/** True when this lab needs a Docker daemon: container endpoints, or the real Felix. */
export function needsDocker(r: Pick<LabRun, "plan" | "felix">): boolean {
  return r.plan.endpointMode === "docker" || r.felix === "real";
}

/**
 * Real Felix in the lab's own daemon (not one DOCKER_HOST names): start it from the cached
 * Docker root that holds the felix image (daemon-root.ts), made once when the image is
 * cached. Any trouble here only means the Felix stage loads (or builds) the image and says
 * what is wrong.
 */
async function seedFelixRoot(r: LabRun, notes: string[]): Promise<void> {
  if (r.felix !== "real") return;
  try {
    const root = await ensureFelixDaemonRoot(
      r.opts.sources !== undefined ? { sources: r.opts.sources } : {},
      (l) => notes.push(l),
    );
    if (root !== undefined && (await seedDaemonRoot(root, r.state.dockerDataRoot))) {
      notes.push(`    started from the kept Docker root ${root}: the felix image is there`);
    }
  } catch (e) {
    notes.push(`    (the felix image is loaded instead: ${(e as Error).message.split("\n")[0]})`);
  }
}

/** Start (or reach) the daemon in the background; the `docker` stage awaits it. */
export function startDaemon(r: LabRun): void {
  if (!needsDocker(r)) return;
  const notes: string[] = [];
  r.daemonNotes = notes;
  const ready = (async () => {
    if (!r.externalDocker) await seedFelixRoot(r, notes);
    const rec: DockerRecord = r.externalDocker
      ? (await waitForDaemon(r.externalDocker, 5000), { host: r.externalDocker, own: false })
      : await startDockerd(r.state, r.plan.prefix);
    if (r.plan.endpointMode === "docker") {
      await ensureUtilImage(rec.host, r.state);
      await checkImages(rec.host, r.plan);
    }
    await checkNamesFree(rec.host, r.plan);
    return rec;
  })();
  // Handled where it is awaited; not an unhandled rejection meanwhile.
  ready.catch(() => {});
  r.docker = ready;
}

export const daemonStage: Stage = {
  title: (r) =>
    r.externalDocker
      ? `Docker at ${r.externalDocker}, util image ${UTIL_IMAGE}`
      : `the lab's dockerd (unix://${r.state.dockerSocket(r.plan.prefix)})` +
        (r.plan.endpointMode === "docker" ? `, util image ${UTIL_IMAGE}` : ""),
  applies: needsDocker,
  async up(r: LabRun) {
    try {
      r.st.docker = await r.docker!;
    } finally {
      for (const l of r.daemonNotes ?? []) r.log(l);
    }
    r.save();
  },
};

/** Undo: this lab's containers, then its own daemon, then the endpoints' namespace links. */
export async function daemonDown(
  state: StateDir,
  st: LabState | undefined,
  prefix: string,
  log: (l: string) => void,
): Promise<number[]> {
  const pids: number[] = [];
  const ownDaemon = st?.docker?.own === true || labDockerPids(state, prefix).length > 0;
  const host = st?.docker?.host ?? (ownDaemon ? undefined : dockerHostFromEnv());
  if (host !== undefined || ownDaemon) {
    await step(log, "remove the lab's containers", async () => {
      const at = host ?? `unix://${state.dockerSocket(prefix)}`;
      if (await daemonAnswers(at)) await removeLabContainers(at, prefix);
    });
  }
  if (ownDaemon) {
    pids.push(...(await step(log, "stop the lab's dockerd", () => stopDockerd(state, prefix))));
  }
  const plan: LabPlan | undefined = st?.plan;
  if (plan?.endpointMode === "docker" || ownDaemon) {
    await step(log, "remove the endpoints' namespace links", () =>
      removeNetnsLinks((plan?.endpointMode === "docker" ? plan.endpoints : []).map((e) => e.ns)),
    );
  }
  return pids;
}
