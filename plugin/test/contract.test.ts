/**
 * The data format is a contract with the renderer (components/render/plugin-data.ts). The
 * renderer's tests pin its output as snapshot files; the plugin must accept every one of
 * them without a single problem, and publish exactly what they say. Ports 25000-25099.
 */
import assert from "node:assert/strict";
import { copyFile, readdir, readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseDataFile, type FileContent } from "../src/parse.js";
import { mergeFiles } from "../src/state.js";
import { until } from "./helpers.js";
import { networkRig } from "./fixture.js";
import type { Json } from "./peers.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const SNAPSHOTS = join(ROOT, "test/__snapshots__");

/** Every rendered stack's felix.txt and plugin-data/*.txt among the renderer's snapshots. */
async function renderedStacks(): Promise<Map<string, string[]>> {
  const stacks = new Map<string, string[]>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name === "plugin-data") {
          const files = (await readdir(path)).filter((f) => f.endsWith(".txt"));
          const stack = resolve(path, "..");
          const felix = (await readdir(stack)).includes("felix.txt")
            ? [join(stack, "felix.txt")]
            : [];
          stacks.set(stack, [...felix, ...files.map((f) => join(path, f))]);
        } else {
          await walk(path);
        }
      }
    }
  };
  await walk(SNAPSHOTS);
  return stacks;
}

test("every rendered plugin data file is accepted without a problem", async () => {
  const stacks = await renderedStacks();
  assert.ok(stacks.size > 0, `no rendered plugin-data under ${SNAPSHOTS}`);
  for (const [stack, files] of stacks) {
    const contents = new Map<string, FileContent>();
    for (const file of files) {
      const r = parseDataFile(basename(file), await readFile(file, "utf8"));
      assert.deepEqual(r.problems, [], `${file}`);
      assert.ok(r.content, file);
      contents.set(basename(file), r.content);
    }
    const { state, problems } = mergeFiles(contents);
    assert.deepEqual(problems, [], stack);
    assert.ok(state.endpoints.size > 0, `${stack} has endpoints`);
    assert.ok(state.felix.size > 0, `${stack} has felix hosts`);
    for (const e of state.endpoints.values()) {
      assert.ok(
        [...state.felix.values()].some((f) => f.host === e.host),
        `endpoint ${e.name} is on a host of felix.txt`,
      );
    }
  }
});

test("rendered groups.txt rules reach the ACL Manager exactly as rendered", async (t) => {
  const stacks = await renderedStacks();
  const files = [...stacks.values()].find((fs) => fs.some((f) => basename(f) === "groups.txt"));
  assert.ok(files, "a rendered stack with groups.txt");
  const rig = await networkRig(t, { basePort: 25000 });
  for (const f of files) await copyFile(f, join(rig.dir, basename(f)));
  // The rules as the renderer wrote them, read straight from the text.
  const rendered = new Map<string, { inbound: Json[]; outbound: Json[] }>();
  let current = "";
  for (const line of (await readFile(join(rig.dir, "groups.txt"), "utf8")).split("\n")) {
    const header = /^\[group (.+)\]$/.exec(line);
    if (header?.[1]) {
      current = header[1];
      rendered.set(current, { inbound: [], outbound: [] });
    }
    const kv = /^(inbound|outbound)=(.*)$/.exec(line);
    const entry = rendered.get(current);
    if (kv?.[1] && kv[2] !== undefined && entry) {
      entry[kv[1] as "inbound" | "outbound"] = JSON.parse(kv[2]) as Json[];
    }
  }
  const groupsWithMembers = new Set<string>();
  for (const f of files) {
    const c = parseDataFile(basename(f), await readFile(f, "utf8")).content;
    for (const e of c?.endpoints ?? []) groupsWithMembers.add(e.group);
  }
  const checked = [...rendered.keys()].filter((g) => groupsWithMembers.has(g));
  assert.ok(checked.length > 0, "a rendered group with rules and members");
  // What the ACL Manager holds once the publications are done (a group may first be
  // published without the rules naming a group not yet there, then with them).
  await rig.acl.getGroups();
  await until(() => checked.every((g) => rig.acl.groups.has(g)), 5000, "every group held");
  await rig.plugin.whenSent();
  await until(
    () =>
      checked.every(
        (g) =>
          JSON.stringify(rig.acl.groups.get(g)?.rules) ===
          JSON.stringify({
            ...rendered.get(g),
            inbound_default: "deny",
            outbound_default: "deny",
          }),
      ),
    5000,
    "every group held with its rendered rules",
  ).catch(() => undefined); // the assertion below says what differs
  for (const g of checked) {
    assert.deepEqual(rig.acl.groups.get(g)?.rules, {
      ...rendered.get(g),
      inbound_default: "deny",
      outbound_default: "deny",
    });
  }
  assert.deepEqual(rig.acl.violations, []);
});
