/**
 * The lab's build cache, shared by every lab stack and every test on this machine: the
 * Python 2.7 base root filesystem and the saved felix image, as tarballs named by a hash of
 * what went into them. One builder at a time per entry (a lock file holding its pid; a lock
 * whose process is gone is taken over); entries appear whole (written aside, then renamed).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync, unlinkSync } from "node:fs";
import path from "node:path";
import { sleep } from "./exec.js";
import { alive } from "./processes.js";
import { DEFAULT_STATE_ROOT } from "./state.js";

/** `$CALICO_LAB_CACHE`, else `<repo>/.lab/cache` (beside the stacks' state folders). */
export function labCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const given = env.CALICO_LAB_CACHE?.trim();
  return given !== undefined && given !== ""
    ? path.resolve(given)
    : path.join(DEFAULT_STATE_ROOT, "cache");
}

/** The first 16 hex digits of the SHA-256 of the parts, each length-prefixed. */
export function cacheKey(parts: readonly string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(`${Buffer.byteLength(p)}:${p}\n`);
  return h.digest("hex").slice(0, 16);
}

/** SHA-256 of a file, in hex. */
export function sha256File(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/**
 * Run fn holding `<file>.lock`; waits (up to timeoutMs) while another live process holds it,
 * saying so once through `log` (and how long it waited, when it gets the lock).
 */
export async function withCacheLock<T>(
  file: string,
  fn: () => Promise<T>,
  log: (line: string) => void = () => {},
  timeoutMs = 30 * 60_000,
): Promise<T> {
  const lock = `${file}.lock`;
  mkdirSync(path.dirname(lock), { recursive: true });
  const t0 = Date.now();
  const deadline = t0 + timeoutMs;
  let waitedFor = 0;
  for (;;) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: "wx" });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const holder = Number(readFileSafe(lock).trim());
    if (!Number.isInteger(holder) || holder <= 0 || !alive(holder)) {
      try {
        unlinkSync(lock); // its holder died: take it over
      } catch {
        // someone else took it over first
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`${lock} is still held by process ${holder} after ${timeoutMs / 1000} s`);
    }
    if (waitedFor !== holder) {
      log(`  waiting for process ${holder}, which is making ${path.basename(file)}`);
      waitedFor = holder;
    }
    await sleep(500);
  }
  if (waitedFor !== 0) log(`  waited ${((Date.now() - t0) / 1000).toFixed(1)} s for it`);
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      // already gone
    }
  }
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}
