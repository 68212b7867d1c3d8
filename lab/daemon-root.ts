/**
 * A Docker data root that already holds the felix image, kept in the lab's shared cache, so
 * that a new lab daemon starts with the image instead of `docker load`ing 200 MB (5–10 s per
 * `up`). Made once per felix image and dockerd version: a daemon of its own loads the cached
 * image tarball, stops, and its image store is kept (`image/`, `overlay2/`). A lab's daemon
 * root is then seeded from it before its dockerd starts: the layers' files as hard links
 * (`cp -al`: no copy, and layers are never written in place, a container's changes go to its
 * own upper layer), the image metadata as a real copy (small, and the daemon rewrites some
 * of it). Everything else (networks, volumes, containers) the daemon makes afresh. Where
 * hard links cannot be made (the state on another filesystem than the cache), nothing is
 * seeded and the image is loaded as before.
 */
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import { cacheKey, labCacheDir, withCacheLock } from "./cache.js";
import { docker, startDockerd, stopDockerd } from "./docker.js";
import { felixImageFiles, PRODUCT_FELIX_IMAGE, type FelixImageOptions } from "./felix-image.js";
import { run } from "./exec.js";
import { StateDir } from "./state.js";

/** The parts of a data root that hold images (both needed, nothing else). */
const IMAGE_STORE = ["image", "overlay2"] as const;

export interface DaemonRootImage {
  /** The cached image tarball (`docker save`). */
  tarball: string;
  /** Tags the image must carry in the root (the lab's and the product's). */
  tags: readonly string[];
  /** The felix image key. */
  key: string;
}

/** `dockerd --version`: a root made by one version is not handed to another. */
export async function dockerdVersion(): Promise<string> {
  return (await run("dockerd", ["--version"])).stdout.trim();
}

export function daemonRootDir(cacheDir: string, key: string, version: string): string {
  return path.join(cacheDir, `dockerd-root-${cacheKey(["dockerd-root", key, version])}`);
}

/**
 * The cached data root holding the image: made now (under the cache's lock) when missing and
 * the tarball is cached; undefined when there is no tarball yet.
 */
export async function ensureDaemonRoot(
  cacheDir: string,
  image: DaemonRootImage,
  log: (line: string) => void,
): Promise<string | undefined> {
  const dir = daemonRootDir(cacheDir, image.key, await dockerdVersion());
  if (existsSync(dir)) return dir;
  if (!existsSync(image.tarball)) return undefined;
  return withCacheLock(
    dir,
    async () => {
      if (existsSync(dir)) return dir; // made while we waited
      const t0 = performance.now();
      const work = await mkdtemp(path.join(cacheDir, "dockerd-root-tmp-"));
      const state = new StateDir(work, "root");
      const prefix = `clroot${process.pid % 100000}`;
      try {
        const { host } = await startDockerd(state, prefix);
        await docker(host, ["load", "-q", "-i", image.tarball], { timeoutMs: 600_000 });
        for (const t of image.tags.slice(1)) await docker(host, ["tag", image.tags[0]!, t]);
        await stopDockerd(state, prefix, async () => {
          const keep = path.join(work, "keep");
          mkdirSync(keep);
          for (const part of IMAGE_STORE) {
            renameSync(path.join(state.dockerDataRoot, part), path.join(keep, part));
          }
          renameSync(keep, dir);
        });
      } finally {
        await stopDockerd(state, prefix).catch(() => []);
        await rm(work, { recursive: true, force: true });
      }
      log(
        `    kept a Docker root holding the felix image for new lab daemons (${dir}, ` +
          `${((performance.now() - t0) / 1000).toFixed(1)} s, once)`,
      );
      return dir;
    },
    log,
  );
}

/** The kept root holding the felix image these options make (see ensureDaemonRoot). */
export function ensureFelixDaemonRoot(
  opts: FelixImageOptions,
  log: (line: string) => void,
): Promise<string | undefined> {
  const files = felixImageFiles(opts);
  return ensureDaemonRoot(
    opts.cacheDir ?? labCacheDir(opts.env),
    { tarball: files.tarball, tags: [files.tag, PRODUCT_FELIX_IMAGE], key: files.key },
    log,
  );
}

/**
 * Seed a daemon's data root (not yet made) from the cached root: layers hard-linked, image
 * metadata copied. False (and nothing left) when it cannot be done here.
 */
export async function seedDaemonRoot(root: string, dataRoot: string): Promise<boolean> {
  if (existsSync(dataRoot)) return false;
  // Made aside and renamed into place: a seed cut short is never taken for a data root.
  const aside = `${dataRoot}.seed`;
  await rm(aside, { recursive: true, force: true });
  mkdirSync(aside, { recursive: true });
  try {
    await copyDying(["-al", path.join(root, "overlay2"), path.join(aside, "overlay2")]);
    await copyDying(["-a", path.join(root, "image"), path.join(aside, "image")]);
    renameSync(aside, dataRoot);
    return true;
  } catch {
    await rm(aside, { recursive: true, force: true });
    return false;
  }
}

/**
 * `cp` that dies with this process (`setpriv --pdeathsig KILL`): an `up` killed half-way
 * leaves no copy running on into what `down` removes.
 */
function copyDying(args: string[]) {
  return run("setpriv", ["--pdeathsig", "KILL", "--", "cp", ...args]);
}
