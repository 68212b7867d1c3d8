/**
 * How the health probes reach a host: a transport runs one command on one host and returns
 * what it printed and its exit code. Two of them: the lab's network namespaces (a command
 * runs in the host's namespace with `nsenter`), and SSH (the OpenSSH client as a subprocess,
 * with host key checking, for live stacks and for the lab's own sshd).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { shQuote } from "../components/render/index.js";

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** The command's exit code (a transport failure is thrown as Unreachable instead). */
  code: number;
  /** It printed more than `maxBytes`: the output is cut there and the command was killed. */
  truncated?: boolean;
}

export interface ExecOptions {
  /** Kill the command after this long (default 30 s). */
  timeoutMs?: number;
  /** Read at most this many bytes of its output, stdout and stderr together (default 16 MiB). */
  maxBytes?: number;
}

/** What is read of one command's output at most, unless the caller says otherwise. */
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;

/** The host could not be reached at all (connection refused, timeout, authentication). */
export class Unreachable extends Error {
  constructor(
    public readonly host: string,
    reason: string,
  ) {
    super(reason);
    this.name = "Unreachable";
  }
}

export interface Transport {
  /** `namespaces` or `ssh`: said in the report. */
  readonly kind: "namespaces" | "ssh";
  /** Run argv on a host (by its stack name); stdin is empty. */
  exec(host: string, argv: string[], opts?: ExecOptions): Promise<ExecResult>;
}

interface SpawnResult extends ExecResult {
  timedOut: boolean;
}

/**
 * Run a process, collecting its output; never rejects for a non-zero exit. At most maxBytes
 * of output (stdout and stderr together) are kept: past that the process is killed and the
 * result says `truncated`, so a command that prints without end costs maxBytes, no more.
 * Its stdin is `input`, or /dev/null: never an open socket, which is what Node gives a child
 * for a pipe, and which makes bash read ~/.bashrc when SHLVL is unset (as under `sudo`).
 */
export function spawnCollect(
  cmd: string,
  args: string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
  maxBytes = DEFAULT_MAX_BYTES,
  input?: string,
): Promise<SpawnResult> {
  return new Promise((resolve, reject) => {
    const stdin = input === undefined ? "ignore" : "pipe";
    const child = spawn(cmd, args, { stdio: [stdin, "pipe", "pipe"], env });
    if (input !== undefined) {
      // A command that exits without reading all of it closes the pipe: not an error here.
      child.stdin!.on("error", () => {});
      child.stdin!.end(input);
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let kept = 0;
    let truncated = false;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    const keep = (into: Buffer[]) => (b: Buffer) => {
      if (truncated) return;
      const room = maxBytes - kept;
      if (b.length > room) {
        into.push(b.subarray(0, room));
        kept = maxBytes;
        truncated = true;
        child.kill("SIGKILL");
        return;
      }
      into.push(b);
      kept += b.length;
    };
    child.stdout!.on("data", keep(out));
    child.stderr!.on("data", keep(err));
    child.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === "ENOENT" ? new Error(`\`${cmd}\` is not installed (or not on PATH)`) : e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        code: code ?? -1,
        timedOut,
        ...(truncated ? { truncated } : {}),
      });
    });
  });
}

/** The lab: each host is a network namespace on this machine. */
export function namespaceTransport(nsOf: (host: string) => string): Transport {
  return {
    kind: "namespaces",
    async exec(host, argv, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 30_000;
      const r = await spawnCollect(
        "nsenter",
        [`--net=/var/run/netns/${nsOf(host)}`, "--", ...argv],
        timeoutMs,
        process.env,
        opts.maxBytes,
      );
      if (r.truncated) return r;
      if (r.timedOut) throw new Unreachable(host, `no answer within ${timeoutMs / 1000} s`);
      return r;
    },
  };
}

export interface SshHost {
  name: string;
  address: string;
  user: string;
  port?: number;
}

export interface SshOptions {
  hosts: SshHost[];
  /** A private key file (0600, in a private directory: see PrivateKeyFile). */
  keyFile: string;
  /** known_hosts holding every host's key: StrictHostKeyChecking=yes. */
  knownHostsFile: string;
  /** ssh's ConnectTimeout, seconds (default 5). */
  connectTimeoutS?: number;
  /** Prefix for the ssh client's argv, e.g. `ip netns exec <ns>` (the lab's operator). */
  wrap?: string[];
}

/** ssh's argv for one host and one remote command (argv quoted into one shell line). */
export function sshArgv(o: SshOptions, h: SshHost, argv: string[]): string[] {
  return [
    ...(o.wrap ?? []),
    "ssh",
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${o.knownHostsFile}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    `ConnectTimeout=${o.connectTimeoutS ?? 5}`,
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=2",
    "-o",
    "LogLevel=ERROR",
    "-i",
    o.keyFile,
    "-p",
    String(h.port ?? 22),
    "-l",
    h.user,
    "--",
    h.address,
    argv.map(shQuote).join(" "),
  ];
}

/** SSH: exit code 255 is ssh's own failure (the host is unreachable for us). */
export function sshTransport(o: SshOptions): Transport {
  const byName = new Map(o.hosts.map((h) => [h.name, h]));
  return {
    kind: "ssh",
    async exec(host, argv, opts = {}) {
      const h = byName.get(host);
      if (h === undefined) throw new Unreachable(host, "no SSH address for this host");
      const timeoutMs = opts.timeoutMs ?? 30_000;
      const args = sshArgv(o, h, argv);
      const r = await spawnCollect(args[0]!, args.slice(1), timeoutMs, process.env, opts.maxBytes);
      if (r.truncated) return r;
      if (r.timedOut) throw new Unreachable(host, `no answer within ${timeoutMs / 1000} s`);
      if (r.code === 255) {
        const why = r.stderr.trim().split("\n").slice(-1)[0] ?? "";
        throw new Unreachable(host, `ssh ${h.user}@${h.address}: ${why || "failed (exit 255)"}`);
      }
      return r;
    },
  };
}

/**
 * A private key in a file only we can read: a fresh 0700 directory from mkdtemp (an
 * unpredictable name, created atomically, so no other user can plant or read anything in
 * it), the key 0600 inside, both removed by `remove()` and at process exit.
 */
export class PrivateKeyFile {
  readonly dir: string;
  readonly file: string;
  private readonly cleanup = () => this.remove();

  constructor(key: string) {
    this.dir = mkdtempSync(path.join(tmpdir(), "calico-status-"));
    this.file = path.join(this.dir, "id_key");
    writeFileSync(this.file, key.endsWith("\n") ? key : `${key}\n`, { mode: 0o600, flag: "wx" });
    process.once("exit", this.cleanup);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
    process.removeListener("exit", this.cleanup);
  }
}
