/**
 * SSH plumbing shared by the host and endpoint components: the connection object for
 * `@pulumi/command`, the private key file that the docker provider's `ssh` binary reads,
 * and "put this text in that file on that host" as a remote command.
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
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
 * How `@pulumi/command` reaches a host. The whole object is a secret (it holds the private
 * key), so neither the key nor the object ever shows in a diff, a log or the state in clear.
 *
 * Dialling is retried for several minutes (60 attempts of up to 15 s): a fresh GCE instance
 * takes a minute or two before its SSH daemon answers.
 */
export function connectionFor(
  address: pulumi.Input<string>,
  user: string,
  privateKey: pulumi.Input<string>,
): pulumi.Output<Connection> {
  return pulumi.secret(
    pulumi.output({
      host: address,
      user,
      privateKey,
      dialErrorLimit: 60,
      perDialTimeout: 15,
    }),
  );
}

/** The directory (0700) that holds this stack's SSH key file and known-hosts files. */
export function sshStateDir(project: string, stack: string): string {
  const safe = `${project}-${stack}`.replace(/[^A-Za-z0-9_.-]/g, "_");
  return join(tmpdir(), `calico-docker-ssh-${safe}`);
}

/**
 * Write the private key to `<dir>/id_key` (0600, in a 0700 directory) for the local `ssh`
 * binary that the docker provider runs, and return the path (a secret Output, because it is
 * derived from the key). The write happens inside `apply`, so it runs only once the key is
 * known and never prints it. The path is the same on every run of the stack, so the docker
 * providers' configuration does not change from one `pulumi up` to the next; the file is
 * left in place because `pulumi destroy` reuses the providers' stored `sshOpts`.
 */
export function keyFileFor(privateKey: pulumi.Output<string>, dir: string): pulumi.Output<string> {
  return privateKey.apply((key) => {
    const file = join(dir, "id_key");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    writeFileSync(file, key.endsWith("\n") ? key : `${key}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    return file;
  });
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
  return {
    create: `${atomicWriteScript(user, path, 0o755)}\n${sudo}bash ${shQuote(path)} ${applyArg}`,
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
