/**
 * SSH plumbing shared by the host and endpoint components: the connection object for
 * `@pulumi/command`, the private key file that the docker provider's `ssh` binary reads,
 * and "put this text in that file on that host" as a remote command.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  constants as fsConstants,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  type Stats,
} from "node:fs";
import { userInfo } from "node:os";
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { shQuote } from "./render/index.js";

export type Connection = command.types.input.remote.ConnectionArgs;

/** The SHA-256 of a text, hex: the content hash put in triggers and container labels. */
export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The prefix that runs a command as root for this SSH user (`sudo -n` unless root). */
export function sudoFor(user: string): string {
  return user === "root" ? "" : "sudo -n ";
}

/**
 * How many dial attempts, of how long each, before a remote command gives up on a host:
 * `patient` for the readiness gate (a fresh GCE instance takes a minute or two before its
 * SSH daemon answers), `prompt` for everything else, so that a host that is gone fails
 * `pulumi up` or `destroy` in about a minute instead of hanging for a quarter of an hour
 * (docs/day-two.md, "A host that is gone").
 */
export const DIAL_LIMITS = {
  patient: { dialErrorLimit: 60, perDialTimeout: 15 },
  prompt: { dialErrorLimit: 4, perDialTimeout: 15 },
} as const;

/**
 * How `@pulumi/command` reaches a host. The whole object is a secret (it holds the private
 * key), so neither the key nor the object ever shows in a diff, a log or the state in clear.
 */
export function connectionFor(
  address: pulumi.Input<string>,
  user: string,
  privateKey: pulumi.Input<string>,
  dial: keyof typeof DIAL_LIMITS = "prompt",
): pulumi.Output<Connection> {
  return pulumi.secret(
    pulumi.output({
      host: address,
      user,
      privateKey,
      ...DIAL_LIMITS[dial],
    }),
  );
}

/** Where, under the operator's home directory, each stack's SSH files live. */
export const SSH_HOME_SUBDIR = ".calico-docker/ssh";

/** A stack's SSH directory: the local path, and the same place as the `ssh` binary spells it. */
export interface SshDir {
  /** Absolute path on this machine (`<home>/.calico-docker/ssh/<project>/<stack>`). */
  local: string;
  /**
   * `~/.calico-docker/ssh/<project>/<stack>`: what goes into the docker providers' `sshOpts`.
   * `ssh` expands `~` to the home directory of the user running it (from the password
   * database), so the stored provider settings name no machine's temp dir or user: on any
   * machine, a `pulumi refresh` or `destroy` finds the key once it is put there.
   */
  forSsh: string;
}

const NAME_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * The SSH directory of a project's stack. `home` defaults to the user's home directory from
 * the password database (as `ssh` resolves `~`, which ignores $HOME).
 */
export function sshDirFor(
  project: string,
  stack: string,
  home: string = userInfo().homedir,
): SshDir {
  for (const [what, value] of [
    ["project", project],
    ["stack", stack],
  ] as const) {
    if (!NAME_SEGMENT.test(value)) {
      throw new Error(
        `the ${what} name ${JSON.stringify(value)} cannot name a directory ` +
          "(letters, digits, '_', '.', '-'; not starting with '.' or '-')",
      );
    }
  }
  const rel = `${SSH_HOME_SUBDIR}/${project}/${stack}`;
  return { local: join(home, rel), forSsh: `~/${rel}` };
}

/** The key file's name inside a stack's SSH directory. */
export const KEY_FILE = "id_key";

function uid(): number | undefined {
  return typeof process.getuid === "function" ? process.getuid() : undefined;
}

/**
 * Make `dir` and every missing directory between `home` and it, each 0700, refusing what
 * another user could have planted: a symbolic link, something not a directory, a
 * directory owned by someone else or writable by group or others. `home` itself must be
 * a directory that neither its group nor others can write (they could rename what is in it).
 */
export function ensurePrivateDir(home: string, dir: string): void {
  const homeStat = statSync(home);
  if (!homeStat.isDirectory()) throw new Error(`the home directory ${home} is not a directory`);
  if ((homeStat.mode & 0o022) !== 0) {
    const who = (homeStat.mode & 0o002) !== 0 ? "other users" : "the users of its group";
    throw new Error(
      `refusing to keep an SSH key under ${home}: ${who} can write to it (mode ` +
        `${(homeStat.mode & 0o7777).toString(8)}; chmod go-w ${home})`,
    );
  }
  const rel = relative(home, dir);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
    throw new Error(`${dir} is not inside the home directory ${home}`);
  }
  let path = home;
  for (const part of rel.split(sep)) {
    path = join(path, part);
    try {
      mkdirSync(path, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const st = lstatSync(path);
    if (st.isSymbolicLink()) throw new Error(`refusing ${path}: it is a symbolic link`);
    if (!st.isDirectory()) throw new Error(`refusing ${path}: it is not a directory`);
    const me = uid();
    if (me !== undefined && st.uid !== me) {
      throw new Error(`refusing ${path}: it belongs to uid ${st.uid}, not to this user (${me})`);
    }
    if ((st.mode & 0o077) !== 0) {
      throw new Error(
        `refusing ${path}: its mode is ${(st.mode & 0o777).toString(8)}, group or others ` +
          "can reach it (chmod 700 it after checking its contents)",
      );
    }
  }
}

/**
 * Write the private key to `<dir.local>/id_key` (0600, in 0700 directories made by
 * `ensurePrivateDir`) and return the path as `ssh` spells it (`~/...`). A symbolic link or
 * anything but a regular file of this user at the key's place is refused; the new content
 * goes to a fresh file made with O_CREAT|O_EXCL|O_NOFOLLOW, then renamed over the key, so a
 * reader sees the old key or the new one, never half a key. The file stays: `pulumi
 * refresh` and `destroy` reuse the docker providers' stored `sshOpts`, which name it.
 */
export function writePrivateKey(
  key: string,
  dir: SshDir,
  home: string = userInfo().homedir,
): string {
  ensurePrivateDir(home, dir.local);
  const file = join(dir.local, KEY_FILE);
  const text = key.endsWith("\n") ? key : `${key}\n`;
  let existing: Stats | undefined;
  try {
    existing = lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (existing !== undefined) {
    if (existing.isSymbolicLink()) throw new Error(`refusing ${file}: it is a symbolic link`);
    if (!existing.isFile()) throw new Error(`refusing ${file}: it is not a regular file`);
    const me = uid();
    if (me !== undefined && existing.uid !== me) {
      throw new Error(`refusing ${file}: it belongs to uid ${existing.uid}, not to this user`);
    }
    if ((existing.mode & 0o077) === 0 && readFileSync(file, "utf8") === text) {
      return `${dir.forSsh}/${KEY_FILE}`;
    }
  }
  const tmp = join(dir.local, `.${KEY_FILE}.${process.pid}.${randomBytes(6).toString("hex")}`);
  const fd = openSync(
    tmp,
    fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
    0o600,
  );
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return `${dir.forSsh}/${KEY_FILE}`;
}

/**
 * The key file for the docker providers' `ssh`, written once the key is known (inside
 * `apply`, so it never prints), as the path `ssh` reads (`~/...`, a secret Output because
 * it is derived from the key). The path is the same on every run and every machine, so
 * the providers' settings do not change from one `pulumi up` to the next.
 */
export function keyFileFor(privateKey: pulumi.Output<string>, dir: SshDir): pulumi.Output<string> {
  return privateKey.apply((key) => writePrivateKey(key, dir));
}

/**
 * The `sshOpts` of a docker provider: our key only (no agent keys), trust-on-first-use host
 * keys in a per-host known-hosts file whose name carries the machine's identity (a GCE
 * instance id), so a replaced machine gets a fresh file while a changed key on the same
 * machine is refused; keepalives so a long image build does not drop the connection.
 */
export function dockerSshOpts(
  keyFile: pulumi.Input<string>,
  knownHostsFile: pulumi.Input<string>,
): pulumi.Output<string[]> {
  return pulumi
    .all([keyFile, knownHostsFile])
    .apply(([key, known]) => [
      "-i",
      key,
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "StrictHostKeyChecking=accept-new",
      "-o",
      `UserKnownHostsFile=${known}`,
      "-o",
      "ConnectTimeout=30",
      "-o",
      "ServerAliveInterval=15",
      "-o",
      "ServerAliveCountMax=8",
      "-o",
      "BatchMode=yes",
    ]);
}

export interface RemoteFileArgs {
  /**
   * The name of the host the file is on. It is a trigger: moving the file to another host
   * (a new controller) removes it from the old one first.
   */
  host: string;
  /**
   * The machine's identity (a GCE instance id): a new machine behind the same address gets
   * the file written again.
   */
  identity: pulumi.Input<string>;
  connection: pulumi.Input<Connection>;
  /** The SSH user (decides whether `sudo -n` is needed). */
  user: string;
  /** Absolute path on the host. */
  path: string;
  content: pulumi.Input<string>;
  /** File mode, default 0o644. */
  mode?: number;
  /**
   * true: a content change replaces the resource (old file removed, new one written), for
   * files whose consumer is replaced with them. false: the file is rewritten in place.
   */
  replaceOnChange?: boolean;
}

/** The shell text that writes stdin to `path` atomically (temp file in the same dir, then mv). */
export function atomicWriteScript(user: string, path: string, mode: number): string {
  const sudo = sudoFor(user);
  const base = path.slice(path.lastIndexOf("/") + 1);
  // A dot-name without the .txt suffix: the plugin never reads it.
  const tmp = `${dirname(path)}/.${base}.tmp`;
  return [
    "set -eu",
    `${sudo}mkdir -p ${shQuote(dirname(path))}`,
    `${sudo}tee ${shQuote(tmp)} >/dev/null`,
    `${sudo}chmod ${mode.toString(8).padStart(4, "0")} ${shQuote(tmp)}`,
    `${sudo}mv -f ${shQuote(tmp)} ${shQuote(path)}`,
  ].join("\n");
}

/**
 * A script kept on a host, so that removal runs the very text that was applied: `create`
 * writes stdin to `path` atomically and runs it with `applyArg`; `delete` runs it with
 * `remove` when it is there, then deletes it.
 */
export function keptScriptCommands(
  user: string,
  path: string,
  applyArg: string,
): { create: string; delete: string } {
  const sudo = sudoFor(user);
  const p = shQuote(path);
  // The script takes its own lock (an endpoint script: one stable file per endpoint, the
  // same the host agent's runs take), so create, delete and the agent never interleave.
  return {
    create: `${atomicWriteScript(user, path, 0o755)}\n${sudo}bash ${p} ${applyArg}`,
    delete: [
      `if [ -f ${shQuote(path)} ]; then ${sudo}bash ${shQuote(path)} remove; fi`,
      `${sudo}rm -f ${shQuote(path)}`,
    ].join("\n"),
  };
}

/**
 * A file on a host, written from a string: create writes it atomically (stdin to a temp file,
 * then `mv`, so no reader ever sees half a file), delete removes it. Without
 * `replaceOnChange` a content change re-runs create (an in-place rewrite); with it the content
 * hash is in `triggers`, so the change is a replacement (old file removed, then the new one).
 * Output is not logged (the command prints nothing useful) and the connection stays secret.
 */
export function remoteFile(
  name: string,
  args: RemoteFileArgs,
  opts: pulumi.CustomResourceOptions,
): command.remote.Command {
  const mode = args.mode ?? 0o644;
  const content = pulumi.output(args.content);
  return new command.remote.Command(
    name,
    {
      connection: args.connection,
      create: atomicWriteScript(args.user, args.path, mode),
      delete: `${sudoFor(args.user)}rm -f ${shQuote(args.path)}`,
      stdin: content,
      triggers: args.replaceOnChange
        ? [args.host, args.identity, content.apply(sha256)]
        : [args.host, args.identity],
      logging: "stderr",
      addPreviousOutputInEnv: false,
    },
    pulumi.mergeOptions(opts, {
      deleteBeforeReplace: true,
      additionalSecretOutputs: ["connection"],
    }),
  );
}
