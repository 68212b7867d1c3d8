/**
 * Removals in the data directory: `rm -r` of the whole directory, at any speed, keeps the
 * last good state (no endpoint is destroyed); one file removed on its own still counts at
 * once. Ports 27500-27599.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { promisify } from "node:util";
import { DataStore } from "../src/index.js";
import { captureLogger, endpointText, felixText, tmpDir, until } from "./helpers.js";
import { endpointRig, ep } from "./fixture.js";
import { sleep } from "./peers.js";

const run = promisify(execFile);
const H1 = { host: "host1", ip: "127.0.0.2" };
const FILES = 5000;
/** A recursive delete that takes its time: 10 ms of pause after every 50 unlinks. */
const PACED_RM = `
  const fs = require("fs"), path = require("path"), dir = process.argv[1];
  const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  fs.readdirSync(dir).forEach((f, i) => { fs.unlinkSync(path.join(dir, f)); if (i % 50 === 49) pause(10); });
  fs.rmdirSync(dir);`;

/** A watched store over FILES endpoint files, and every endpoint count it emitted. */
async function bigStore(
  t: TestContext,
): Promise<{ dir: string; store: DataStore; sizes: number[] }> {
  const dir = await tmpDir("removal");
  t.after(() => dir.remove());
  await writeFile(join(dir.path, "felix.txt"), felixText([H1]));
  for (let i = 1; i <= FILES; i++) {
    const e = ep(i, "host1");
    writeFileSync(join(dir.path, `${e.name}.txt`), endpointText(e));
  }
  const store = new DataStore({ dir: dir.path, logger: captureLogger("info").logger });
  t.after(() => store.stop());
  await store.start();
  assert.equal(store.state.endpoints.size, FILES);
  const sizes: number[] = [];
  store.on("change", (state) => sizes.push(state.endpoints.size));
  return { dir: dir.path, store, sizes };
}

for (const [how, remove] of [
  ["by rm -r", (dir: string) => run("rm", ["-r", dir])],
  [
    "by a Node process that pauses 10 ms every 50 files",
    (dir: string) => run(process.execPath, ["-e", PACED_RM, dir]),
  ],
] as const) {
  test(`rm -r of a ${FILES}-file data directory ${how} removes nothing; made again, it is read`, async (t) => {
    const { dir, store, sizes } = await bigStore(t);
    await remove(dir);
    await sleep(1000);
    assert.deepEqual(
      sizes.length === 0 ? [] : [sizes.length, sizes.at(-1)],
      [],
      "no change emitted",
    );
    assert.equal(store.state.endpoints.size, FILES);
    // The directory made again under the same name is read, and its removals count.
    await mkdir(dir);
    const e = ep(1, "host1");
    await writeFile(join(dir, "felix.txt"), felixText([H1]));
    await writeFile(join(dir, `${e.name}.txt`), endpointText(e));
    await until(() => store.state.endpoints.size === 1, 30_000, "the new directory's one endpoint");
    assert.ok(store.state.endpoints.has(e.name));
  });
}

test("a directory emptied slowly (an unlink every 120 ms) and then removed removes nothing", async (t) => {
  const dir = await tmpDir("slow-rm");
  t.after(() => dir.remove());
  const endpoints = Array.from({ length: 30 }, (_, i) => ep(i + 1, "host1"));
  await writeFile(join(dir.path, "felix.txt"), felixText([H1]));
  for (const e of endpoints) await writeFile(join(dir.path, `${e.name}.txt`), endpointText(e));
  const store = new DataStore({ dir: dir.path, logger: captureLogger("info").logger });
  t.after(() => store.stop());
  await store.start();
  const sizes: number[] = [];
  store.on("change", (state) => sizes.push(state.endpoints.size));
  const script = `
    const fs = require("fs"), path = require("path"), dir = process.argv[1];
    const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    for (const f of fs.readdirSync(dir)) { fs.unlinkSync(path.join(dir, f)); sleep(120); }
    fs.rmdirSync(dir);`;
  await run(process.execPath, ["-e", script, dir.path]);
  await sleep(500);
  assert.deepEqual(sizes, [], "no change emitted");
  assert.equal(store.state.endpoints.size, endpoints.length);
});

test(`rm -r of a ${FILES}-file data directory destroys no endpoint at Felix; one removed file does, promptly`, async (t) => {
  const endpoints = Array.from({ length: FILES }, (_, i) => ep(i + 1, "host1"));
  const rig = await endpointRig(t, { basePort: 27500, hosts: [H1], endpoints });
  const [felix] = rig.felixes;
  assert.ok(felix);
  await until(() => felix.endpoints.size === FILES, 60_000, "felix has every endpoint");
  const destroyed = (): number =>
    felix.received.items.filter((i) => i.value["type"] === "ENDPOINTDESTROYED").length;
  // One file removed on its own counts, within a second.
  const one = endpoints[0];
  assert.ok(one);
  const removedAt = Date.now();
  await rm(join(rig.dir, `${one.name}.txt`));
  await felix.received.waitFor((m) => m["type"] === "ENDPOINTDESTROYED", { timeoutMs: 5000 });
  const tookMs = Date.now() - removedAt;
  assert.ok(tookMs < 1000, `the removal reached Felix in ${tookMs} ms`);
  assert.equal(destroyed(), 1);
  // The whole directory, removed as fast as Node removes it, by another process.
  await run(process.execPath, [
    "-e",
    "require('fs').rmSync(process.argv[1], { recursive: true })",
    rig.dir,
  ]);
  await sleep(1500);
  assert.equal(destroyed(), 1, "no ENDPOINTDESTROYED after rm -r");
  assert.equal(felix.endpoints.size, FILES - 1);
  assert.deepEqual(felix.violations, []);
});
