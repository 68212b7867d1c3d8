/**
 * A private Docker daemon for tests, and a busybox image made without a registry.
 *
 *   canRunDockerd()               -> string | undefined   why dockerd tests must skip
 *   startDockerd(opts)            -> Dockerd               its own data root, exec root,
 *                                    pidfile and unix socket under a temp dir; no iptables,
 *                                    no bridge. `stop()` ends it and removes everything.
 *   importBusybox(dockerd, tag)   the image from Debian's busybox-static: a rootfs tar with
 *                                    /bin/busybox and its applet links, `docker import`ed.
 *
 * Every test that starts a daemon must run under the test lock (see docs on testing), and
 * must call `stop()` in `finally`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasCommand, run, type RunResult } from "./tools.js";

export const BUSYBOX_BIN = "/bin/busybox";

/** Undefined when this process can start its own dockerd; else the reason it cannot. */
export function canRunDockerd(): string | undefined {
  if (process.platform !== "linux") return "dockerd needs Linux";
  if (process.getuid?.() !== 0) return "dockerd needs root";
  for (const tool of ["dockerd", "docker", "containerd", "runc"]) {
    if (!hasCommand(tool)) return `${tool} is not installed (Debian package docker.io)`;
  }
  if (!existsSync(BUSYBOX_BIN)) return `${BUSYBOX_BIN} is missing (Debian package busybox-static)`;
  return undefined;
}

export interface Dockerd {
  /** `unix:///.../docker.sock`, for DOCKER_HOST. */
  host: string;
  /** The temp dir holding the daemon's state. */
  dir: string;
  /** Environment for the docker CLI (and anything that runs it). */
  env: NodeJS.ProcessEnv;
  /** `docker ARGS` against this daemon. */
  docker(args: readonly string[]): RunResult;
  /** Like `docker`, throwing with the output unless it exits 0; returns stdout trimmed. */
  dockerOk(args: readonly string[]): string;
  /**
   * Like `dockerOk`, without blocking the event loop (so output of other processes, such as
   * an agent's log lines, is read, and timed, while the command runs).
   */
  dockerAsync(args: readonly string[]): Promise<string>;
  /** Stop the daemon (SIGTERM, then SIGKILL) and start it again with the same state. */
  restart(): Promise<void>;
  /** Stop the daemon, remove its containers' leftovers and its temp dir. */
  stop(): Promise<void>;
}

function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 100);
    };
    tick();
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Start a private dockerd and wait until it answers. */
export async function startDockerd(opts: { prefix?: string } = {}): Promise<Dockerd> {
  // Short paths: containerd's sockets live under the exec root (108-byte socket limit).
  const dir = mkdtempSync(join(tmpdir(), opts.prefix ?? "cdd-"));
  const dataRoot = join(dir, "data");
  const execRoot = join(dir, "exec");
  mkdirSync(dataRoot);
  mkdirSync(execRoot);
  const sock = join(dir, "docker.sock");
  const host = `unix://${sock}`;
  const env = { ...process.env, DOCKER_HOST: host };
  const logFile = join(dir, "dockerd.log");
  const docker = (args: readonly string[]) => run("docker", args, { env, timeout: 120_000 });
  const dockerOk = (args: readonly string[]) => {
    const r = docker(args);
    if (r.status !== 0) throw new Error(`docker ${args.join(" ")} failed:\n${r.output}`);
    return r.stdout.trim();
  };
  let child: ChildProcess | undefined;
  const dockerAsync = (args: readonly string[]) =>
    new Promise<string>((resolve, reject) => {
      const c = spawn("docker", args, { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      c.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
      c.stderr.setEncoding("utf8").on("data", (t: string) => (err += t));
      c.on("error", reject);
      c.on("close", (status) => {
        if (status === 0) resolve(out.trim());
        else
          reject(
            new Error(`docker ${args.join(" ")} failed (exit ${String(status)}):\n${out}${err}`),
          );
      });
    });

  const launch = async () => {
    const { openSync, closeSync } = await import("node:fs");
    const log = openSync(logFile, "a");
    child = spawn(
      "dockerd",
      [
        "--data-root",
        dataRoot,
        "--exec-root",
        execRoot,
        "--pidfile",
        join(dir, "dockerd.pid"),
        "-H",
        host,
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--ip-masq=false",
        "--storage-driver=vfs",
      ],
      { stdio: ["ignore", log, log] },
    );
    closeSync(log);
    const me = child;
    try {
      await waitFor(
        () =>
          me.exitCode === null &&
          docker(["version", "--format", "{{.Server.Version}}"]).status === 0,
        60_000,
        "dockerd to answer",
      );
    } catch (err) {
      throw new Error(
        `${String(err)}\n--- dockerd log:\n${readFileSync(logFile, "utf8").slice(-4000)}`,
      );
    }
  };

  const halt = async () => {
    const c = child;
    if (c === undefined) return;
    child = undefined;
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGTERM");
      const timer = setTimeout(() => c.kill("SIGKILL"), 20_000);
      await exited(c);
      clearTimeout(timer);
    }
  };

  await launch();
  return {
    host,
    dir,
    env,
    docker,
    dockerOk,
    dockerAsync,
    restart: async () => {
      await halt();
      await launch();
    },
    stop: async () => {
      try {
        if (child !== undefined) {
          const ids = docker(["ps", "-aq"]).stdout.split("\n").filter(Boolean);
          if (ids.length > 0) docker(["rm", "-f", "-v", ...ids]);
        }
      } finally {
        await halt();
        // Mounts the daemon or its containerd may leave under the temp dir.
        const mounts = readFileSync("/proc/self/mounts", "utf8")
          .split("\n")
          .map((l) => l.split(" ")[1] ?? "")
          .filter((m) => m.startsWith(dir))
          .sort()
          .reverse();
        for (const m of mounts) run("umount", ["-l", m]);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * `tag` made from Debian's busybox-static: /bin/busybox plus a link per applet, in a rootfs
 * tar that `docker import` turns into an image (no registry involved).
 */
export function importBusybox(d: Dockerd, tag: string): void {
  const root = mkdtempSync(join(d.dir, "rootfs-"));
  try {
    const script = [
      "set -eu",
      'mkdir -p "$1/bin" "$1/sbin" "$1/usr/bin" "$1/usr/sbin" "$1/tmp" "$1/etc" "$1/proc" "$1/sys" "$1/dev"',
      `cp ${BUSYBOX_BIN} "$1/bin/busybox"`,
      '"$1/bin/busybox" --install -s "$1/bin"',
      // --install writes absolute links into $1; make them relative to the image's root.
      'for l in "$1"/bin/*; do [ -L "$l" ] && ln -sf busybox "$l"; done',
      'echo "root:x:0:0:root:/root:/bin/sh" > "$1/etc/passwd"',
      'tar -C "$1" -cf "$1.tar" .',
    ].join("\n");
    const r = run("sh", ["-c", script, "sh", root]);
    if (r.status !== 0) throw new Error(`busybox rootfs: ${r.output}`);
    d.dockerOk(["import", "--change", 'CMD ["/bin/sh"]', `${root}.tar`, tag]);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(`${root}.tar`, { force: true });
  }
}
