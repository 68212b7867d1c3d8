/**
 * The data directory under hostile or careless writers: damaged headers, links and other
 * non-regular files, oversized files, writers that rewrite in place, a directory swapped
 * with `mv`, SIGHUP's re-read. Ports 27100-27199.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  mkdir,
  open,
  rename,
  rm,
  stat,
  symlink,
  truncate,
  utimes,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { DataStore, MAX_FILE_BYTES } from "../src/index.js";
import { captureLogger, endpointText, felixText, tmpDir, until, writeAtomic } from "./helpers.js";
import { endpointRig, ep, networkRig } from "./fixture.js";
import { sleep } from "./peers.js";

const H1 = { host: "host1", ip: "127.0.0.2" };
const run = promisify(execFile);

async function storeIn(
  t: import("node:test").TestContext,
  opts: { maxFileBytes?: number } = {},
): Promise<{ dir: string; store: DataStore; lines: Array<Record<string, unknown>> }> {
  const dir = await tmpDir("store");
  t.after(() => dir.remove());
  const log = captureLogger("info");
  const store = new DataStore({
    dir: dir.path,
    logger: log.logger,
    watch: false,
    settleMs: 0,
    ...opts,
  });
  t.after(() => store.stop());
  return { dir: dir.path, store, lines: log.lines };
}

test("a damaged section header keeps the file's last good state: no destroy", async (t) => {
  const a = ep(1, "host1");
  const rig = await endpointRig(t, { basePort: 27100, hosts: [H1], endpoints: [a] });
  const [felix] = rig.felixes;
  assert.ok(felix);
  await until(() => felix.endpoints.has(a.id), 5000, "felix has the endpoint");
  const file = join(rig.dir, `${a.name}.txt`);
  for (const header of [`[endpoint ${a.name}\u0000]`, `[endp\u0000oint ${a.name}]`]) {
    const before = rig.log.lines.length;
    await writeFile(file, endpointText(a).replace(`[endpoint ${a.name}]`, header));
    await until(
      () =>
        rig.log.lines
          .slice(before)
          .some((l) => /damaged section header/.test(String(l["message"] ?? l["msg"]))),
      5000,
      "the damaged header is reported",
    );
  }
  await sleep(200);
  assert.equal(
    felix.received.items.filter((i) => i.value["type"] === "ENDPOINTDESTROYED").length,
    0,
  );
  assert.ok(felix.endpoints.has(a.id));
  assert.ok(
    rig.log.lines.every((l) => !JSON.stringify(l).includes("\\u0000")),
    "the NUL is not logged raw",
  );
  assert.deepEqual(felix.violations, []);
});

test("links, FIFOs and directories in the data directory are refused, once each", async (t) => {
  const { dir, store, lines } = await storeIn(t);
  const outside = await tmpDir("outside");
  t.after(() => outside.remove());
  const e = ep(1, "host1");
  await writeFile(join(outside.path, "ep.txt"), endpointText(e));
  await writeFile(join(dir, "felix.txt"), felixText([H1]));
  await symlink("/etc/passwd", join(dir, "passwd.txt"));
  await symlink(join(outside.path, "ep.txt"), join(dir, "ep1.txt"));
  await symlink("felix.txt", join(dir, "inside-link.txt"));
  await run("mkfifo", [join(dir, "fifo.txt")]);
  await mkdir(join(dir, "dir.txt"));
  await store.start();
  for (let i = 0; i < 3; i++) await store.rescan();
  assert.equal(store.state.endpoints.size, 0, "nothing read through the link");
  assert.equal(store.state.felix.size, 1);
  const refusals = lines.filter((l) => String(l["msg"]).startsWith("refused: not a regular file"));
  assert.deepEqual(refusals.map((l) => l["file"]).sort(), [
    "dir.txt",
    "ep1.txt",
    "fifo.txt",
    "inside-link.txt",
    "passwd.txt",
  ]);
  assert.equal(refusals.find((l) => l["file"] === "fifo.txt")?.["kind"], "a FIFO");
  assert.equal(refusals.find((l) => l["file"] === "passwd.txt")?.["kind"], "a symbolic link");
  assert.ok(!JSON.stringify(lines).includes("root:"), "nothing of /etc/passwd is logged");
});

test(`a data file over the size limit is refused and not read again until it changes (default ${MAX_FILE_BYTES} bytes)`, async (t) => {
  assert.equal(MAX_FILE_BYTES, 8 * 1024 * 1024);
  const { dir, store, lines } = await storeIn(t, { maxFileBytes: 4096 });
  const endpoints = Array.from({ length: 40 }, (_, i) => ep(i + 1, "host1"));
  const file = join(dir, "all.txt");
  await writeFile(join(dir, "felix.txt"), felixText([H1]));
  await writeFile(file, endpointText(endpoints[0] ?? ep(1, "host1")));
  await store.start();
  assert.equal(store.state.endpoints.size, 1);
  // It grows over the limit: refused, its last good content stays.
  await writeFile(file, endpoints.map(endpointText).join("\n"));
  assert.ok((await stat(file)).size > 4096);
  for (let i = 0; i < 3; i++) await store.rescan();
  const tooLarge = (): Array<Record<string, unknown>> =>
    lines.filter((l) => String(l["msg"]).startsWith("data file is too large"));
  assert.equal(tooLarge().length, 1, "said once, not read at every rescan");
  assert.equal(tooLarge()[0]?.["limit"], 4096);
  assert.equal(store.state.endpoints.size, 1, "the last good content stays");
  // Changed (smaller): read again.
  await writeFile(file, endpoints.slice(0, 3).map(endpointText).join("\n"));
  await store.rescan();
  assert.equal(store.state.endpoints.size, 3);
});

test("a huge sparse data file is refused without being read", async (t) => {
  const { dir, store, lines } = await storeIn(t);
  await writeFile(join(dir, "felix.txt"), felixText([H1]));
  const huge = join(dir, "huge.txt");
  await writeFile(huge, "");
  await truncate(huge, 64 * 1024 * 1024);
  const rss = process.memoryUsage().rss;
  await store.start();
  await store.rescan();
  assert.ok(process.memoryUsage().rss - rss < 32 * 1024 * 1024, "not read into memory");
  assert.equal(
    lines.filter((l) => String(l["msg"]).startsWith("data file is too large")).length,
    1,
  );
  assert.equal(store.state.felix.size, 1);
});

test("SIGHUP's reload reads every file again, even one whose size and mtime did not change", async (t) => {
  const { dir, store } = await storeIn(t);
  const file = join(dir, "felix.txt");
  await writeFile(file, felixText([{ host: "host1", ip: "10.0.0.1" }]));
  const stamp = 1_700_000_000; // whole seconds: set back exactly
  await utimes(file, stamp, stamp);
  await store.start();
  await writeFile(file, felixText([{ host: "host1", ip: "10.0.0.2" }])); // same size
  await utimes(file, stamp, stamp);
  await store.rescan();
  assert.equal(store.state.felix.get("host1")?.ip, "10.0.0.1", "the stamp did not change");
  await store.reload();
  assert.equal(store.state.felix.get("host1")?.ip, "10.0.0.2");
});

test("a writer that pauses inside `group=webservers` never publishes a cut group name", async (t) => {
  const rig = await networkRig(t, { basePort: 27110, endpoints: [ep(1, "h1", "db")] });
  await rig.acl.getGroups();
  await rig.acl.waitForGroup("db");
  const e = ep(2, "h1", "webservers");
  const text = endpointText(e);
  const cut = text.indexOf("group=web") + "group=web".length;
  const fh = await open(join(rig.dir, `${e.name}.txt`), "w");
  await fh.write(text.slice(0, cut));
  await sleep(300); // far longer than the old 30 ms debounce
  await fh.write(text.slice(cut));
  await fh.close();
  await rig.acl.waitForGroup("webservers", undefined, { timeoutMs: 5000 });
  await sleep(200);
  const names = new Set(rig.acl.received.items.map((i) => i.value.msg["group"]));
  assert.deepEqual([...names].sort(), ["db", "webservers"]);
  assert.deepEqual(rig.acl.violations, []);
});

test("a file rewritten in place in slow pieces is read once it is quiet: no drop, no duplicate", async (t) => {
  const endpoints = Array.from({ length: 5 }, (_, i) => ep(i + 1, "host1"));
  const rig = await endpointRig(t, { basePort: 27120, hosts: [H1], plugin: { settleMs: 400 } });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const all = join(rig.dir, "data.txt");
  const text = endpoints.map(endpointText).join("\n") + "\n" + felixText([H1]);
  await writeFile(all, text);
  await until(() => felix.endpoints.size === 5, 5000, "felix has all five");
  const since = felix.received.length;
  // Rewrite it in place, cutting at line ends too, pausing longer than the old debounce.
  const fh = await open(all, "w");
  const lines = text.split(/(?<=\n)/);
  for (let i = 0; i < lines.length; i += 3) {
    await fh.write(lines.slice(i, i + 3).join(""));
    await sleep(50);
  }
  await fh.close();
  await sleep(600);
  const after = felix.received.items.slice(since).map((i) => i.value["type"]);
  assert.deepEqual(
    after.filter((x) => x !== "HEARTBEAT"),
    [],
  );
  assert.equal(rig.plugin.felixConnections.get("host1")?.socketGeneration, 1, "not reconnected");
});

test("an atomic rename-in is acted on at once, without waiting for the quiet time", async (t) => {
  const rig = await endpointRig(t, { basePort: 27130, hosts: [H1], plugin: { settleMs: 20_000 } });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const e = ep(1, "host1");
  await writeAtomic(join(rig.dir, `${e.name}.txt`), endpointText(e));
  await felix.received.waitFor((m) => m["endpoint_id"] === e.id, { timeoutMs: 5000 });
  // Removal needs no quiet time either.
  await rm(join(rig.dir, `${e.name}.txt`));
  await felix.received.waitFor((m) => m["type"] === "ENDPOINTDESTROYED", { timeoutMs: 5000 });
  assert.deepEqual(felix.violations, []);
});

test("a data directory swapped with mv is noticed at once", async (t) => {
  const a = ep(1, "host1");
  const b = ep(2, "host1");
  const rig = await endpointRig(t, {
    basePort: 27140,
    hosts: [H1],
    endpoints: [a],
    plugin: { pollMs: 60_000 }, // polling for a missing directory cannot be what notices
  });
  const [felix] = rig.felixes;
  assert.ok(felix);
  await until(() => felix.endpoints.has(a.id), 5000, "felix has a");
  const fresh = `${rig.dir}.new`;
  const old = `${rig.dir}.old`;
  t.after(() =>
    Promise.all([
      rm(fresh, { recursive: true, force: true }),
      rm(old, { recursive: true, force: true }),
    ]),
  );
  await mkdir(fresh);
  await writeFile(join(fresh, "felix.txt"), felixText([H1]));
  await writeFile(join(fresh, `${b.name}.txt`), endpointText(b));
  await rename(rig.dir, old);
  await rename(fresh, rig.dir);
  // The periodic rescan is off in the rig: only the swap itself can make this happen.
  await until(
    () => felix.endpoints.has(b.id) && !felix.endpoints.has(a.id),
    5000,
    "felix has b and not a",
  );
  // And the new directory is watched.
  const c = ep(3, "host1");
  await writeAtomic(join(rig.dir, `${c.name}.txt`), endpointText(c));
  await until(() => felix.endpoints.has(c.id), 5000, "felix has c");
  assert.deepEqual(felix.violations, []);
});
