/**
 * `npm run status -- [--stack S] [--json] [--host H] [--lab]`: the health of a deployed stack,
 * host by host, over SSH, with the very probes the lab's `check` runs. Exit 0 only when all
 * is well, 1 when a problem is found, 2 when status itself could not run.
 *
 * The command itself, without its entry point (`scripts/status.ts`): the lab is handed in as
 * a function that gives its target and transport, so nothing here depends on `lab/`.
 */
import { homedir } from "node:os";
import path from "node:path";
import { Command, CommanderError, Option } from "commander";
import { ConfigError } from "../components/config.js";
import { buildModel } from "../components/model.js";
import { loadStackFile, stackFilePath, StackFileError } from "../components/stackfile.js";
import { runStatus, type StatusReport, type StatusTarget } from "./engine.js";
import { StatusError } from "./errors.js";
import { readRegularFile } from "./read.js";
import { formatStatus } from "./report.js";
import { readOutputs, stackTarget } from "./stack.js";
import { PrivateKeyFile, sshTransport, type Transport } from "./transport.js";

/** Where `--lab` comes from: the lab's target and transport for a stack (the lab is up). */
export type LabSource = (o: { stack: string; stateRoot?: string; connectTimeoutS: number }) => {
  target: StatusTarget;
  transport: Transport;
};

export interface StatusCliOptions {
  /** Where `Pulumi.<stack>.yaml` files are. */
  repoRoot: string;
  /** The lab, for `--lab` (without it, `--lab` is refused). */
  lab?: LabSource;
  /** Where the report and the progress go (default: stdout and stderr). */
  io?: { out: (text: string) => void; err: (text: string) => void };
}

const STD_IO = {
  out: (text: string) => void process.stdout.write(text),
  err: (text: string) => void process.stderr.write(text),
};

interface Opts {
  stack: string;
  json?: boolean;
  host?: string[];
  lab?: boolean;
  stateDir?: string;
  outputs?: string;
  key?: string;
  user?: string;
  knownHosts: string;
  connectTimeout: string;
  timeout: string;
  maxReply: string;
}

function program(): Command {
  return new Command()
    .name("npm run status --")
    .description(
      "The health of a deployed stack, host by host, over SSH: system containers and restarts,\n" +
        "the host agent, BGP sessions, a route for every remote endpoint, every local endpoint\n" +
        "wired, Felix's chains, the SNAT rule and the plugin's data. Exit 0 only when all is well,\n" +
        "1 when a problem is found, 2 when status could not run.",
    )
    .option("-s, --stack <name>", "stack: Pulumi.<name>.yaml and its outputs", "dev")
    .option("--json", "print the report as JSON (progress goes to stderr either way)")
    .option("--host <name...>", "report on these hosts only (all are still probed)")
    .option("--lab", "check the lab of the stack (npm run lab -- up), over SSH to its hosts' sshd")
    .addOption(new Option("--state-dir <dir>", "with --lab: where lab state folders live"))
    .option(
      "--outputs <file>",
      "the stack's outputs as `pulumi stack output --json --show-secrets` prints them\n" +
        "(a regular file; default: that command is run when the Pulumi CLI is on PATH)",
    )
    .option("--key <file>", "SSH private key (default: the stack's sshPrivateKey output)")
    .option("--user <name>", "SSH user for every host (default: each host's sshUser output)")
    .option(
      "--known-hosts <file>",
      "the hosts' keys; host keys are checked strictly",
      path.join(homedir(), ".ssh", "known_hosts"),
    )
    .option("--connect-timeout <seconds>", "SSH connect timeout", "5")
    .option("--timeout <seconds>", "time a host may take in all", "30")
    .option("--max-reply <MiB>", "what is read of one host's reply at most", "16")
    .addHelpText(
      "after",
      "\nWhere things come from:\n" +
        "  the model        Pulumi.<stack>.yaml (hosts, endpoints, BGP, the controller)\n" +
        "  addresses/users  the stack's outputs `hosts` (externalAddress, sshUser), or --user\n" +
        "  container ids    the stack's outputs `endpoints` (taps and plugin data follow them)\n" +
        "  SSH key          the stack's secret output `sshPrivateKey`, or --key; it is written\n" +
        "                   only to a 0600 file in a private temporary folder, removed at exit\n" +
        "  host keys        --known-hosts (StrictHostKeyChecking=yes: ssh to each host once first)\n" +
        "  --lab            the lab's state: its hosts' sshd, its own key and known_hosts,\n" +
        "                   reached from the lab's operator namespace\n",
    )
    .showHelpAfterError()
    .exitOverride();
}

function positive(name: string, value: string, unit: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new StatusError(
      `--${name} must be a positive number of ${unit}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

interface Reached {
  target: StatusTarget;
  transport: Transport;
  key?: PrivateKeyFile;
}

/** A live stack: its model, its outputs, its key, SSH to its hosts. */
async function liveStack(o: Opts, repoRoot: string, connectTimeoutS: number): Promise<Reached> {
  const model = buildModel(loadStackFile(stackFilePath(o.stack, repoRoot)));
  const outputs = await readOutputs(o.stack, o.outputs);
  const st = stackTarget(o.stack, model, outputs, o.user ? { user: o.user } : {});
  let keyText: string;
  if (o.key !== undefined) keyText = readRegularFile(o.key, "--key");
  else if (outputs.sshPrivateKey !== undefined) keyText = outputs.sshPrivateKey;
  else throw new StatusError("no SSH key: the outputs hold no sshPrivateKey; give --key FILE");
  const key = new PrivateKeyFile(keyText);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      key.remove();
      process.exit(2);
    });
  }
  const transport = sshTransport({
    hosts: st.hosts,
    keyFile: key.file,
    knownHostsFile: o.knownHosts,
    connectTimeoutS,
  });
  return { target: st.target, transport, key };
}

async function main(o: Opts, c: StatusCliOptions): Promise<number> {
  const io = c.io ?? STD_IO;
  const progress = (l: string) => io.err(l + "\n");
  const connectTimeoutS = positive("connect-timeout", o.connectTimeout, "seconds");
  const hostTimeoutMs = positive("timeout", o.timeout, "seconds") * 1000;
  const maxReplyBytes = Math.round(positive("max-reply", o.maxReply, "MiB") * 1024 * 1024);
  let reached: Reached;
  if (o.lab) {
    if (c.lab === undefined) throw new StatusError("--lab: this entry point has no lab");
    const stateRoot = o.stateDir ? { stateRoot: o.stateDir } : {};
    reached = c.lab({ stack: o.stack, ...stateRoot, connectTimeoutS });
  } else {
    reached = await liveStack(o, c.repoRoot, connectTimeoutS);
  }
  const { target, transport, key } = reached;
  try {
    const hosts = target.model.hosts.map((h) => h.name);
    const unknown = (o.host ?? []).filter((h) => !hosts.includes(h));
    if (unknown.length > 0) {
      throw new StatusError(
        `--host: no host ${unknown.join(", ")} in stack ${o.stack} (hosts: ${hosts.join(", ")})`,
      );
    }
    progress(
      `status of ${target.kind} ${o.stack}: ${hosts.length} host(s) over ${transport.kind} ...`,
    );
    const report: StatusReport = await runStatus(target, transport, {
      ...(o.host ? { only: o.host } : {}),
      hostTimeoutMs,
      maxReplyBytes,
      progress,
    });
    io.out((o.json ? JSON.stringify(report, null, 2) : formatStatus(report)) + "\n");
    return report.ok ? 0 : 1;
  } finally {
    key?.remove();
  }
}

const isOperatorError = (e: unknown) =>
  e instanceof StatusError || e instanceof ConfigError || e instanceof StackFileError;

/** Run the command on argv (`process.argv`); the exit code: 0 healthy, 1 problems, 2 no run. */
export async function statusCli(argv: string[], c: StatusCliOptions): Promise<number> {
  let code = 2;
  const io = c.io ?? STD_IO;
  const p = program()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .action(async (o: Opts) => {
      code = await main(o, c);
    });
  try {
    await p.parseAsync(argv);
    return code;
  } catch (e) {
    // Commander has printed its own message (a bad option); help and --version are not errors.
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    const message = isOperatorError(e) ? (e as Error).message : ((e as Error).stack ?? String(e));
    io.err(`status: ${message}\n`);
    return 2;
  }
}
