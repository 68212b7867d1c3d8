/** Test helpers: temporary data dirs, data-file text, a logger that records its lines. */
import { createHash } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino, { type Logger } from "pino";
import type { Endpoint } from "../src/parse.js";

export async function tmpDir(
  prefix: string,
): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `plugin-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A deterministic 64-hex endpoint id. */
export function endpointId(seed: string): string {
  return createHash("sha256").update(seed).digest("hex");
}

/** A deterministic MAC from a number. */
export function macOf(n: number): string {
  const b = [0xee, 0xee, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff, 0x01];
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** An endpoint as a data file declares it (the parsed `Endpoint` less what parsing adds). */
export type EndpointSpec = Omit<Endpoint, "state" | "file">;

export function endpointText(e: EndpointSpec): string {
  return `[endpoint ${e.name}]\nid=${e.id}\nip=${e.ip}\nmac=${e.mac}\nhost=${e.host}\ngroup=${e.group}\n`;
}

export function felixText(hosts: ReadonlyArray<{ host: string; ip: string }>): string {
  return hosts.map((h) => `[felix ${h.host}]\nip=${h.ip}\nhost=${h.host}\n`).join("\n");
}

/** Writes a file atomically (write + rename), as a careful renderer would. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

export interface CapturedLogger {
  readonly logger: Logger;
  readonly lines: Array<Record<string, unknown>>;
}

/** A pino logger whose lines are kept (parsed) for assertions. */
export function captureLogger(level = "info"): CapturedLogger {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line.trim() !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

/** Waits until `check` returns true, polling. */
export async function until(
  check: () => boolean,
  timeoutMs = 3000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
