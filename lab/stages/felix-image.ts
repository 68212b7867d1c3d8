/**
 * The felix image for the lab: built from images/felix/Dockerfile in the lab's daemon (a
 * Python 2.7 base from Debian bullseye, sources from the mirror `--sources DIR` /
 * CALICO_SOURCES or upstream at the pinned commits), or loaded from the lab's cache
 * (felix-image.ts). When it cannot be made, `up` stops and says why, and how to go on
 * without Felix.
 */
import { LabError } from "../context.js";
import { ensureFelixImage } from "../felix-image.js";
import type { LabRun } from "./run.js";

export async function ensureLabFelixImage(r: LabRun, dockerHost: string): Promise<string> {
  try {
    const image = await ensureFelixImage(dockerHost, {
      ...(r.opts.sources !== undefined ? { sources: r.opts.sources } : {}),
      log: (l: string) => r.log(`    ${l}`),
    });
    r.log(`    felix image ${image.tag}: ${image.how} (${(image.ms / 1000).toFixed(1)} s)`);
    return image.tag;
  } catch (e) {
    throw new LabError(
      `${(e as Error).message}\n` +
        "  (to bring the lab up without Felix, and so without testing any policy, " +
        "give --felix stand-in)",
    );
  }
}
