/**
 * The project's test files and where `npm test` runs each (scripts/test.ts): the quiet lane
 * or a timed one, before the felix image is ready or after, and in which order.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export type Lane = "timed" | "quiet";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const TIMED_WORDS =
  /Date\.now|performance\.now|setTimeout|setInterval|sleep\(|timeout|netns|labUp|dockerd|LAB_SKIP/i;

/**
 * A timed file that needs what is made before it runs: the felix image (a lab with the real
 * Felix, the image itself, the conformance suite) or the boot test's systemd root.
 */
const PREPARED_WORDS = /labUp|FelixImage|felixImage|DaemonRoot|\.conformance|CALICO_SYSTEMD_ROOTFS/;

/**
 * The prepared files that take longest, longest first (docs/testing.md has their times): two
 * lanes that take them in this order end close together. Any other file comes after these.
 */
export const LONGEST_FIRST = [
  "test/conformance/felix.conformance.ts",
  "test/lab-policy.test.ts",
  "test/lab-stacks.test.ts",
  "test/lab-heal.test.ts",
  "test/lab-workloads.test.ts",
  "test/status-lab.test.ts",
];

export function needsPrepared(source: string): boolean {
  return PREPARED_WORDS.test(source);
}

/** The lane of a test file, from its text. */
export function laneOf(source: string): Lane {
  return TIMED_WORDS.test(source) ? "timed" : "quiet";
}

/** Files in the order they are best started: the longest known first, then path order. */
export function longestFirst(files: readonly string[]): string[] {
  const rank = (f: string) => {
    const i = LONGEST_FIRST.indexOf(f);
    return i < 0 ? LONGEST_FIRST.length : i;
  };
  return [...files].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** Every test file of the project, in the order Node's runner would sort them. */
export function testFiles(root = ROOT): string[] {
  const found: string[] = [];
  const walk = (dir: string, keep: (name: string) => boolean) => {
    for (const d of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, d.name);
      if (d.isDirectory()) walk(rel, keep);
      else if (keep(d.name)) found.push(rel);
    }
  };
  walk("test", (n) => n.endsWith(".test.ts") || n.endsWith(".conformance.ts"));
  walk("plugin/test", (n) => n.endsWith(".test.ts"));
  return found.sort();
}
