/**
 * `npm run lab -- image`: makes the felix image once, with no lab — the Debian bases and the
 * image built (or found) in the lab's shared cache, in a Docker daemon of its own that is
 * stopped again, and the Docker root holding it kept (made once), from which every lab
 * daemon starts. `npm test` runs it in the background beside the tests that need no image;
 * any `up` that needs the image meanwhile waits on the cache's lock instead of building it
 * twice. When the image is already cached (or another process finishes it while this one
 * waits), no daemon is started to build it.
 */
import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startDockerd, stopDockerd } from "./docker.js";
import { stderrLog } from "./base-image.js";
import { ensureFelixDaemonRoot } from "./daemon-root.js";
import {
  cachedFelixImage,
  ensureFelixImage,
  type FelixImage,
  type FelixImageOptions,
} from "./felix-image.js";
import { StateDir } from "./state.js";

const PREFIX = "clprep";

export async function prepareFelixImage(opts: FelixImageOptions = {}): Promise<FelixImage> {
  const image = (await cachedFelixImage(opts)) ?? (await buildFelixImage(opts));
  // And the Docker root holding it, from which every lab daemon starts (daemon-root.ts).
  await ensureFelixDaemonRoot(opts, opts.log ?? stderrLog);
  return image;
}

async function buildFelixImage(opts: FelixImageOptions): Promise<FelixImage> {
  const root = mkdtempSync(path.join(tmpdir(), "calico-lab-image-"));
  const state = new StateDir(root, "image");
  try {
    const { host } = await startDockerd(state, PREFIX);
    return await ensureFelixImage(host, opts);
  } finally {
    await stopDockerd(state, PREFIX).catch(() => []);
    await rm(root, { recursive: true, force: true });
  }
}
