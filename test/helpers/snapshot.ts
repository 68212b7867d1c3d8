/**
 * Text snapshots for `node:test` (Node 20 has none): `assertSnapshot(name, text)` compares
 * `text` with `test/__snapshots__/<name>` and fails with a line diff when they differ.
 *
 * - Update (or create) snapshots: run the tests with `UPDATE_SNAPSHOTS=1`.
 * - A missing snapshot fails (so CI never passes by writing one); review and commit the
 *   files written under `test/__snapshots__/`.
 * - `name` is a relative file name such as `render/dev/host-1.bird.conf`.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const SNAPSHOT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "__snapshots__");

export function updatingSnapshots(): boolean {
  return process.env.UPDATE_SNAPSHOTS === "1";
}

function snapshotPath(name: string): string {
  const rel = normalize(name);
  if (rel.startsWith("..") || rel.startsWith("/") || name.trim() === "") {
    throw new Error(`snapshot name ${JSON.stringify(name)} must be a relative path`);
  }
  return join(SNAPSHOT_DIR, rel);
}

/** A short unified-style diff: the first lines that differ, with line numbers. */
export function lineDiff(expected: string, actual: string, max = 12): string {
  const a = expected.split("\n");
  const b = actual.split("\n");
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < max * 2; i++) {
    if (a[i] === b[i]) continue;
    if (a[i] !== undefined) out.push(`${i + 1}- ${a[i]}`);
    if (b[i] !== undefined) out.push(`${i + 1}+ ${b[i]}`);
  }
  return out.join("\n");
}

export function assertSnapshot(name: string, actual: string): void {
  const file = snapshotPath(name);
  if (updatingSnapshots()) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  if (!existsSync(file)) {
    assert.fail(`no snapshot ${name}: run the tests with UPDATE_SNAPSHOTS=1, review, commit`);
  }
  const expected = readFileSync(file, "utf8");
  if (expected !== actual) {
    assert.fail(
      `snapshot ${name} differs (UPDATE_SNAPSHOTS=1 to accept):\n${lineDiff(expected, actual)}`,
    );
  }
}
