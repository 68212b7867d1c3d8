// npm run status reads files the operator names (--outputs, --key) only when they are regular
// files of a bounded size: a FIFO (which would block forever), /dev/zero (which never ends),
// a file past the bound are refused with the path named, exit 2. The command runs for real
// (scripts/status.ts, a subprocess), each bounded by a time limit of its own.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { buildModel } from "../components/model.js";
import { loadStackFile, stackFilePath } from "../components/stackfile.js";
import { StatusError } from "../status/errors.js";
import { MAX_INPUT_BYTES, readRegularFile } from "../status/read.js";
import { readOutputs } from "../status/stack.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** scripts/status.ts with these arguments: exit code and stderr, killed after 20 s. */
function status(args: string[]) {
  return new Promise<{ code: number | null; stderr: string; ms: number }>((resolve) => {
    const t0 = Date.now();
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join(root, "scripts/status.ts"), ...args],
      { cwd: root, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, ms: Date.now() - t0 });
    });
  });
}

describe("status: --outputs and --key must be regular files", { timeout: 60_000 }, () => {
  let dir = "";
  let fifo = "";
  let outputs = "";
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "status-files-"));
    fifo = path.join(dir, "outputs.fifo");
    execFileSync("mkfifo", [fifo]);
    outputs = path.join(dir, "outputs.json");
    // The dev stack's outputs, without the key: --key is then read.
    const model = buildModel(loadStackFile(stackFilePath("dev", root)));
    const hosts = model.hosts.map((h) => ({ name: h.name, externalAddress: "198.51.100.7" }));
    const endpoints = model.endpoints.map((e) => ({ name: e.name, containerId: "a".repeat(64) }));
    writeFileSync(outputs, JSON.stringify({ hosts, endpoints }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a FIFO and /dev/zero as --outputs, a FIFO as --key: refused at once, exit 2", async () => {
    const [f, z, k] = await Promise.all([
      status(["--outputs", fifo]),
      status(["--outputs", "/dev/zero"]),
      status(["--outputs", outputs, "--key", fifo]),
    ]);
    assert.equal(f.code, 2, f.stderr);
    assert.equal(
      f.stderr.trim(),
      `status: --outputs ${fifo}: a FIFO, not a regular file (refused: it could block or never end)`,
    );
    assert.equal(z.code, 2, z.stderr);
    assert.match(
      z.stderr,
      /^status: --outputs \/dev\/zero: a character device, not a regular file/,
    );
    assert.equal(k.code, 2, k.stderr);
    assert.match(k.stderr, /^status: --key \S+outputs\.fifo: a FIFO, not a regular file/);
    assert.ok(Math.max(f.ms, z.ms, k.ms) < 20_000, "none waited for the time limit");
  });

  it("--key is read the same way", () => {
    assert.throws(
      () => readRegularFile(fifo, "--key"),
      (e: Error) => e instanceof StatusError && e.message.startsWith(`--key ${fifo}: a FIFO`),
    );
    assert.throws(() => readRegularFile(dir, "--key"), /a directory, not a regular file/);
  });

  it("a regular file is read; one past the bound is refused with its size", async () => {
    const ok = await readOutputs("dev", outputs);
    assert.deepEqual(
      ok.hosts.map((h) => h.name),
      ["host-1", "host-2"],
    );
    const big = path.join(dir, "big.json");
    writeFileSync(big, "");
    truncateSync(big, MAX_INPUT_BYTES + 1);
    await assert.rejects(
      () => readOutputs("dev", big),
      (e: Error) =>
        e instanceof StatusError &&
        e.message ===
          `--outputs ${big}: ${MAX_INPUT_BYTES + 1} bytes, more than the ${MAX_INPUT_BYTES} status reads (refused)`,
    );
  });
});
