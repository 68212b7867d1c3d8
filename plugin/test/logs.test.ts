/**
 * The plugin's log under a flood: warnings a peer causes are rate-limited per peer (the
 * first few, then one summary naming the peer and the count), and the log file is rotated
 * at its cap, so that the log directory stays bounded. Ports 27700-27799.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Dealer } from "zeromq";
import { PeerWarnings } from "../src/peer-warnings.js";
import { captureLogger, tmpDir } from "./helpers.js";
import { oneEndpointProcessRig } from "./fixture.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const CLI = join(ROOT, "plugin/src/cli.ts");
const run = promisify(execFile);

/** Every file of the log directory, with its size. */
async function logFiles(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const name of await readdir(dir)) out.set(name, (await stat(join(dir, name))).size);
  return out;
}

test("a flood of 30,000 bad requests over ZeroMQ: a few warnings, one summary with the peer and the count", async (t) => {
  const FLOOD = 30_000;
  const CAP = 64 * 1024;
  const rig = await oneEndpointProcessRig(t, "flood", { plugin: 27701, felix: 27702 });
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      CLI,
      "endpoint",
      ...["--data-dir", rig.data, "--log-dir", rig.logs, "--bind", "127.0.0.1"],
      ...["--endpoint-port", "27701", "--felix-port", "27702"],
      ...["--log-file-bytes", String(CAP), "--log-files", "2"],
    ],
    { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] },
  );
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  await rig.felix.received.waitFor((m) => m["endpoint_id"] === rig.endpoint.id, {
    timeoutMs: 20_000,
  });

  const routingId = "flooder-1";
  const dealer = new Dealer({ routingId, linger: 0, receiveTimeout: 20_000 });
  t.after(() => dealer.close());
  dealer.connect("tcp://127.0.0.1:27701");
  const garbage = ["{not json", '{"type": 7}', '{"type":"NOPE"}', '{"type":"RESYNCSTATE"}'];
  const replies = (async () => {
    for (let i = 0; i < FLOOD; i++) await dealer.receive();
  })();
  for (let i = 0; i < FLOOD; i++) await dealer.send(["", garbage[i % garbage.length] ?? ""]);
  await replies; // every bad request was answered (INVALID)

  child.kill("SIGTERM"); // stopping says what the rate limit left out
  assert.equal(await exited, 0, err);
  const files = await logFiles(rig.logs);
  const total = [...files.values()].reduce((a, b) => a + b, 0);
  assert.ok(total < CAP, `the log stayed under its cap: ${total} bytes in ${[...files.keys()]}`);
  const lines = (await readFile(join(rig.logs, "plugin-endpoint.log"), "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const peer = Buffer.from(routingId).toString("hex");
  const warned = lines.filter((l) => l["peer"] === peer && l["suppressed"] === undefined);
  assert.equal(warned.length, 10, "the first 10 warnings of the peer are logged");
  const summary = lines.filter((l) => l["peer"] === peer && l["suppressed"] !== undefined);
  assert.equal(summary.length, 1);
  assert.equal(summary[0]?.["suppressed"], FLOOD - 10);
  assert.match(
    String(summary[0]?.["msg"]),
    new RegExp(`${FLOOD - 10} more warnings caused by peer ${peer}`),
  );
});

test("the log file is rotated at its cap and only the newest files are kept", async (t) => {
  const dir = await tmpDir("rotate");
  t.after(() => dir.remove());
  const CAP = 16 * 1024;
  // In a process of its own: the logger also writes every line to stdout.
  const script = `
    import { createLogger } from ${JSON.stringify(join(ROOT, "plugin/src/log.ts"))};
    const { logger, close } = createLogger("endpoint", process.argv[1], "info", { fileBytes: ${CAP}, files: 2 });
    for (let i = 0; i < 5000; i++) logger.warn({ i, pad: "x".repeat(100) }, "a warning");
    await close();`;
  await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, dir.path], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  const files = await logFiles(dir.path);
  assert.deepEqual([...files.keys()].sort(), [
    "plugin-endpoint.log",
    "plugin-endpoint.log.1",
    "plugin-endpoint.log.2",
  ]);
  for (const [name, size] of files) assert.ok(size <= CAP + 1024, `${name}: ${size} bytes`);
  // The newest lines are in the current file.
  const current = await readFile(join(dir.path, "plugin-endpoint.log"), "utf8");
  assert.match(current.trim().split("\n").at(-1) ?? "", /"i":4999/);
});

test("the rate limit: per peer, for all peers together, and one summary line per peer", () => {
  const { logger, lines } = captureLogger("info");
  const w = new PeerWarnings(logger, { perPeer: 3, total: 5, summaryPeers: 1 });
  for (let i = 0; i < 10; i++) w.warn("aa", { i }, "bad request");
  for (let i = 0; i < 10; i++) w.warn("bb", { i }, "bad request");
  for (let i = 0; i < 4; i++) w.warn("cc", { i }, "bad request");
  assert.deepEqual(
    lines.map((l) => l["peer"]),
    ["aa", "aa", "aa", "bb", "bb"],
    "3 of aa, then 2 of bb: 5 in all",
  );
  w.stop();
  const summaries = lines.slice(5);
  assert.deepEqual(
    summaries.map((l) => [l["peer"], l["suppressed"]]),
    [
      ["bb", 8],
      [undefined, 11],
    ],
    "the peer with most by name, the others (7 of aa, 4 of cc) together",
  );
  w.stop();
  assert.equal(lines.length, 7, "nothing more to say");
});
