/**
 * The felix image for the lab: built from images/felix/Dockerfile in the lab's daemon (a
 * Python 2.7 base from Debian bullseye, sources from the mirror `--sources DIR` /
 * CALICO_SOURCES or upstream at the pinned commits), or loaded from the lab's cache.
 * When it cannot be built, `up` stops and says why (unless `--felix stand-in`).
 */
import { LabError } from "../context.js";
import { ensureFelixImage } from "../felix-image.js";
import type { LabRun } from "./run.js";

/** The source mirror: `--sources DIR`, else CALICO_SOURCES, else none (upstream). */
export function sourcesDir(r: Pick<LabRun, "opts">, env = process.env): string | undefined {
  const dir = r.opts.sources ?? env.CALICO_SOURCES;
  return dir === undefined || dir === "" ? undefined : dir;
}

export async function ensureLabFelixImage(r: LabRun, dockerHost: string): Promise<string> {
  const sources = sourcesDir(r);
  try {
    const image = await ensureFelixImage(dockerHost, {
      ...(sources !== undefined ? { sources } : {}),
      stateRoot: r.state.root,
      log: (l) => r.log(`    ${l}`),
    });
    return image.tag;
  } catch (e) {
    throw new LabError(
      `the felix image cannot be built: ${(e as Error).message}\n` +
        "  (to bring the lab up without Felix, and so without any policy, give --felix stand-in)",
    );
  }
}
