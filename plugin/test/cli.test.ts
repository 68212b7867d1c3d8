/**
 * The CLI as a process (spawned with tsx, as `npm run plugin` does): it serves, logs JSON to
 * stdout and to <log-dir>/plugin-<role>.log, rejects bad options by name, and exits 0 on
 * SIGTERM/SIGINT. Ports 24000-24099.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { CommanderError } from "commander";
import { buildCommand, parseCli } from "../src/options.js";
import { endpointText, tmpDir } from "./helpers.js";
import { ep, oneEndpointProcessRig } from "./fixture.js";
import { FakeAclManager } from "./peers.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const TSX = join(ROOT, "node_modules/.bin/tsx");
const CLI = join(ROOT, "plugin/src/cli.ts");

interface Running {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs the CLI with tsx's CLI (as `npm run plugin` does), or with `direct` in this node
 * process's binary with tsx as a loader, so that every signal reaches the plugin itself
 * (tsx's CLI relays only some).
 */
function run(args: string[], direct = false): Running {
  const child = direct
    ? spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      })
    : spawn(TSX, [CLI, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on("exit", (code, signal) => res({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitForOutput(r: Running, text: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!r.stdout().includes(text)) {
    if (Date.now() > deadline || r.child.exitCode !== null) {
      throw new Error(`no "${text}" in output:\n${r.stdout()}\n${r.stderr()}`);
    }
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`${what}: timed out`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

test("endpoint role: serves Felix, logs to stdout and file, exits 0 on SIGTERM", async (t) => {
  const {
    data,
    logs,
    endpoint: e,
    felix,
  } = await oneEndpointProcessRig(t, "cli", {
    plugin: 24001,
    felix: 24002,
  });

  const r = run([
    "endpoint",
    "--data-dir",
    data,
    "--log-dir",
    join(logs, "sub"),
    "--bind",
    "127.0.0.1",
    "--endpoint-port",
    "24001",
    "--felix-port",
    "24002",
    "--resync-delay-ms",
    "50",
  ]);
  t.after(() => {
    if (r.child.exitCode === null) r.child.kill("SIGKILL");
  });
  await waitForOutput(r, "plugin started");
  await felix.received.waitFor((m) => m["endpoint_id"] === e.id, { timeoutMs: 5000 });
  const res = await felix.resyncState();
  assert.equal(res.reply["endpoint_count"], 1);
  assert.deepEqual(felix.violations, []);

  r.child.kill("SIGTERM");
  const { code } = await withTimeout(r.exited, 10_000, "exit after SIGTERM");
  assert.equal(code, 0, r.stderr());
  const stdoutLines = r
    .stdout()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(stdoutLines.every((l) => l["role"] === "endpoint" && typeof l["level"] === "number"));
  assert.ok(stdoutLines.some((l) => l["msg"] === "resync requested" && l["hostname"] === "host1"));
  const fileText = await readFile(join(logs, "sub", "plugin-endpoint.log"), "utf8");
  const fileLines = fileText
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(fileLines.some((l) => l["msg"] === "endpoint API listening"));
  assert.equal(fileLines.at(-1)?.["msg"], "stopped", "the last line is flushed before exit");
});

test("network role: GETGROUPS answered, exits 0 on SIGINT", async (t) => {
  const data = await tmpDir("cli-net");
  const logs = await tmpDir("cli-netlogs");
  t.after(() => Promise.all([data.remove(), logs.remove()]));
  await writeFile(join(data.path, "ep1.txt"), endpointText(ep(1, "host1", "web")));
  const r = run([
    "network",
    "--data-dir",
    data.path,
    "--log-dir",
    logs.path,
    "--bind",
    "127.0.0.1",
    "--groups-port",
    "24013",
    "--publish-port",
    "24014",
  ]);
  t.after(() => {
    if (r.child.exitCode === null) r.child.kill("SIGKILL");
  });
  await waitForOutput(r, "plugin started");
  const acl = new FakeAclManager({
    groups: "tcp://127.0.0.1:24013",
    publish: "tcp://127.0.0.1:24014",
  });
  await acl.start();
  t.after(() => acl.stop());
  await new Promise((res) => setTimeout(res, 100)); // let the SUB join
  assert.deepEqual(await acl.getGroups(), { type: "GETGROUPS", rc: "SUCCESS", message: "" });
  const web = await acl.waitForGroup("web", undefined, { timeoutMs: 5000 });
  assert.deepEqual(Object.keys(web.value.msg["members"] as object), [ep(1, "host1").id]);
  r.child.kill("SIGINT");
  const { code } = await withTimeout(r.exited, 10_000, "exit after SIGINT");
  assert.equal(code, 0, r.stderr());
  const fileText = await readFile(join(logs.path, "plugin-network.log"), "utf8");
  assert.match(fileText, /"msg":"network API listening"/);
});

test("bad options are rejected with the option and the value named", () => {
  const base = ["endpoint", "--data-dir", "/x", "--log-dir", "/tmp"];
  const cases: Array<[string[], RegExp]> = [
    [[...base, "--bind", "999.1.1.1"], /--bind must be an IPv4 address.*"999\.1\.1\.1"/],
    [[...base, "--endpoint-port", "http"], /--endpoint-port must be an integer.*"http"/],
    [
      [...base, "--felix-port", "70000"],
      /--felix-port must be an integer from 1 to 65535.*"70000"/,
    ],
    [[...base, "--felix-timeout-ms", "0"], /--felix-timeout-ms must be an integer.*"0"/],
    [
      [...base, "--group-update-interval-ms", "-5"],
      /--group-update-interval-ms must be an integer from 0 to 600000.*"-5"/,
    ],
    [[...base, "--log-level", "loud"], /'loud' is invalid.*fatal, error, warn, info, debug, trace/],
    [
      ["router", "--data-dir", "/x", "--log-dir", "/tmp"],
      /'router' is invalid for argument 'role'.*endpoint, network/,
    ],
    [["endpoint", "--log-dir", "/tmp"], /required option '--data-dir <dir>' not specified/],
  ];
  for (const [args, message] of cases) {
    let stderr = "";
    const command = buildCommand().configureOutput({ writeErr: (s) => (stderr += s) });
    assert.throws(() => parseCli(args, command), CommanderError, args.join(" "));
    assert.match(stderr, message, args.join(" "));
  }
  const ok = parseCli([...base, "--resync-delay-ms", "0"]);
  assert.deepEqual(ok, {
    role: "endpoint",
    dataDir: "/x",
    logDir: "/tmp",
    bind: "0.0.0.0",
    endpointPort: 9901,
    felixPort: 9902,
    groupsPort: 9903,
    publishPort: 9904,
    resyncDelayMs: 0,
    felixTimeoutMs: 10000,
    heartbeatIntervalMs: 10000,
    republishIntervalMs: 600000,
    networkHeartbeatMs: 10000,
    groupUpdateIntervalMs: 2000,
    logLevel: "info",
    logFileBytes: 10 * 1024 * 1024,
    logFiles: 4,
  });
});

test("the process exits non-zero on a bad option, naming it", async () => {
  const r = run(["endpoint", "--data-dir", "/x", "--log-dir", "/tmp", "--bind", "not-an-ip"]);
  const { code } = await withTimeout(r.exited, 15_000, "bad option");
  assert.notEqual(code, 0);
  assert.match(r.stderr(), /--bind must be an IPv4 address such as 0\.0\.0\.0, got "not-an-ip"/);
});

test("SIGHUP re-reads the data, SIGUSR2 logs a status line, SIGQUIT stops cleanly", async (t) => {
  const { data, logs, felix } = await oneEndpointProcessRig(t, "cli-sig", {
    plugin: 24021,
    felix: 24022,
  });
  const r = run(
    [
      "endpoint",
      "--data-dir",
      data,
      "--log-dir",
      logs,
      "--bind",
      "127.0.0.1",
      "--endpoint-port",
      "24021",
      "--felix-port",
      "24022",
    ],
    true,
  );
  t.after(() => {
    if (r.child.exitCode === null) r.child.kill("SIGKILL");
  });
  await waitForOutput(r, "plugin started");
  r.child.kill("SIGHUP");
  await waitForOutput(r, "SIGHUP: re-reading the data directory");
  await waitForOutput(r, '"msg":"re-reading the data directory"');
  r.child.kill("SIGUSR2");
  await waitForOutput(r, "SIGUSR2: status");
  const status = r
    .stdout()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l["msg"] === "SIGUSR2: status");
  assert.equal(status?.["endpoints"], 1);
  assert.equal(r.child.exitCode, null, "still running after SIGHUP and SIGUSR2");
  assert.equal((await felix.heartbeat())["rc"], "SUCCESS");
  r.child.kill("SIGQUIT");
  const { code } = await withTimeout(r.exited, 10_000, "exit after SIGQUIT");
  assert.equal(code, 0, r.stderr());
  assert.match(r.stdout(), /"signal":"SIGQUIT".*"msg":"stopping"/);
});

test("--log-dir pointing at a file: one clear error, no stack trace", async (t) => {
  const dir = await tmpDir("cli-logfile");
  t.after(() => dir.remove());
  const file = join(dir.path, "not-a-dir");
  await writeFile(file, "");
  const r = run(["endpoint", "--data-dir", dir.path, "--log-dir", file]);
  const { code } = await withTimeout(r.exited, 15_000, "bad --log-dir");
  assert.equal(code, 2);
  assert.equal(r.stderr().trim(), `plugin: --log-dir ${JSON.stringify(file)} is not a directory`);
  assert.doesNotMatch(r.stderr(), /\n\s+at /);
});
