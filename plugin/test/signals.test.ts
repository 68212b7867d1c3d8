/**
 * SIGUSR1 does not open Node's inspector in the plugin, whether it was started as
 * `npm run plugin` starts it or plainly without `--disable-sigusr1`: after the signal the
 * process is alive, still serves Felix, and listens on nothing but its own port.
 * Ports 27600-27699.
 */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { oneEndpointProcessRig } from "./fixture.js";
import { sleep } from "./peers.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const CLI = join(ROOT, "plugin/src/cli.ts");
const run = promisify(execFile);

/** TCP ports `pid` listens on (from `ss`). */
async function listeningPorts(pid: number): Promise<number[]> {
  const { stdout } = await run("ss", ["-Hltnp"]);
  return stdout
    .split("\n")
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => Number(/:(\d+)\s/.exec(l)?.[1]))
    .sort((a, b) => a - b);
}

/** The command `npm run plugin` runs (root package.json), started so that its pid is the plugin. */
async function npmScriptCommand(args: string[]): Promise<ChildProcess> {
  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
  };
  const script = pkg.scripts["plugin"];
  assert.ok(script?.startsWith("node "), `npm run plugin is one node process: ${script}`);
  const quoted = args.map((a) => `'${a}'`).join(" ");
  return spawn("sh", ["-c", `exec ${script} ${quoted}`], { cwd: ROOT, stdio: "pipe" });
}

for (const [how, start] of [
  ["as npm run plugin starts it", npmScriptCommand],
  [
    "with plain node, without --disable-sigusr1",
    (args: string[]) =>
      Promise.resolve(
        spawn(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: ROOT, stdio: "pipe" }),
      ),
  ],
] as const) {
  test(`SIGUSR1 opens no inspector: the plugin started ${how} goes on serving`, async (t) => {
    const port = how.startsWith("as") ? 27601 : 27611;
    const rig = await oneEndpointProcessRig(t, "usr1", { plugin: port, felix: port + 1 });
    const child = await start([
      "endpoint",
      "--data-dir",
      rig.data,
      "--log-dir",
      rig.logs,
      "--bind",
      "127.0.0.1",
      "--endpoint-port",
      String(port),
      "--felix-port",
      String(port + 1),
      "--resync-delay-ms",
      "50",
    ]);
    let out = "";
    let err = "";
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
    t.after(() => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    await rig.felix.received.waitFor((m) => m["endpoint_id"] === rig.endpoint.id, {
      timeoutMs: 20_000,
    });
    const pid = child.pid;
    assert.ok(pid !== undefined);
    assert.deepEqual(await listeningPorts(pid), [port]);

    for (let i = 0; i < 3; i++) {
      process.kill(pid, "SIGUSR1");
      await sleep(300);
    }
    assert.equal(child.exitCode, null, "still running");
    assert.deepEqual(await listeningPorts(pid), [port], "nothing more listens, 9229 least of all");
    assert.doesNotMatch(err, /Debugger listening/);
    assert.deepEqual(await rig.felix.heartbeat(), {
      type: "HEARTBEAT",
      rc: "SUCCESS",
      message: "",
    });
    assert.equal((await rig.felix.resyncState()).reply["endpoint_count"], 1);
    assert.match(out, /SIGUSR1 ignored/);

    child.kill("SIGTERM");
    assert.equal(await exited, 0, err);
  });
}
