/**
 * `npm run status -- [--stack S] [--json] [--host H] [--lab]`: the health of a deployed stack,
 * host by host, over SSH, with the very probes the lab's `check` runs. Exit 0 only when all
 * is well, 1 when a problem is found, 2 when status itself could not run.
 */
import { homedir } from "node:os";
import path from "node:path";
import { Command, Option } from "commander";
import { ConfigError } from "../components/config.js";
import { buildModel } from "../components/model.js";
import { loadStackFile, stackFilePath } from "../components/stackfile.js";
import { LabError } from "../lab/context.js";
import { labSshTransport, labTarget } from "../lab/probes.js";
import { REPO_ROOT } from "../lab/state.js";
import { runStatus, type StatusReport, type StatusTarget } from "./engine.js";
import { formatStatus } from "./report.js";
import { readOutputs, stackTarget, StatusError } from "./stack.js";
import { PrivateKeyFile, sshTransport, type Transport } from "./transport.js";
import { readFileSync } from "node:fs";

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
}

const program = new Command()
  .name("npm run status --")
  .description(
    "The health of a deployed stack, host by host, over SSH: system containers and restarts,\n" +
      "the host agent, BGP sessions, a route for every remote endpoint, every local endpoint\n" +
      "wired, Felix's chains, the SNAT rule and the plugin's data. Exit 0 only when all is well.",
  )
  .option("-s, --stack <name>", "stack: Pulumi.<name>.yaml and its outputs", "dev")
  .option("--json", "print the report as JSON (progress goes to stderr either way)")
  .option("--host <name...>", "report on these hosts only (all are still probed)")
  .option("--lab", "check the lab of the stack (npm run lab -- up), over SSH to its hosts' sshd")
  .addOption(new Option("--state-dir <dir>", "with --lab: where lab state folders live"))
  .option(
    "--outputs <file>",
    "the stack's outputs as `pulumi stack output --json --show-secrets` prints them\n" +
      "(default: that command is run when the Pulumi CLI is on PATH)",
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
  .showHelpAfterError();

function seconds(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new StatusError(
      `--${name} must be a positive number of seconds, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

async function main(o: Opts): Promise<number> {
  const progress = (l: string) => process.stderr.write(l + "\n");
  const connectTimeoutS = seconds("connect-timeout", o.connectTimeout);
  const hostTimeoutMs = seconds("timeout", o.timeout) * 1000;
  let target: StatusTarget;
  let transport: Transport;
  let key: PrivateKeyFile | undefined;
  if (o.lab) {
    const lab = labTarget({ stack: o.stack, ...(o.stateDir ? { stateRoot: o.stateDir } : {}) });
    target = lab.target;
    transport = labSshTransport(lab.plan, lab.state, connectTimeoutS);
  } else {
    const model = buildModel(loadStackFile(stackFilePath(o.stack, REPO_ROOT)));
    const outputs = await readOutputs(o.stack, o.outputs);
    const st = stackTarget(o.stack, model, outputs, o.user ? { user: o.user } : {});
    target = st.target;
    let keyText: string;
    if (o.key !== undefined) {
      keyText = readFileSync(o.key, "utf8");
    } else if (outputs.sshPrivateKey !== undefined) {
      keyText = outputs.sshPrivateKey;
    } else {
      throw new StatusError("no SSH key: the outputs hold no sshPrivateKey; give --key FILE");
    }
    key = new PrivateKeyFile(keyText);
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.once(sig, () => {
        key?.remove();
        process.exit(2);
      });
    }
    transport = sshTransport({
      hosts: st.hosts,
      keyFile: key.file,
      knownHostsFile: o.knownHosts,
      connectTimeoutS,
    });
  }
  const unknown = (o.host ?? []).filter((h) => !target.model.hosts.some((x) => x.name === h));
  if (unknown.length > 0) {
    throw new StatusError(
      `--host: no host ${unknown.join(", ")} in stack ${o.stack} (hosts: ${target.model.hosts.map((h) => h.name).join(", ")})`,
    );
  }
  progress(
    `status of ${target.kind} ${o.stack}: ${target.model.hosts.length} host(s) over ${transport.kind} ...`,
  );
  let report: StatusReport;
  try {
    report = await runStatus(target, transport, {
      ...(o.host ? { only: o.host } : {}),
      hostTimeoutMs,
      progress,
    });
  } finally {
    key?.remove();
  }
  process.stdout.write((o.json ? JSON.stringify(report, null, 2) : formatStatus(report)) + "\n");
  return report.ok ? 0 : 1;
}

program.action(async (o: Opts) => {
  try {
    process.exitCode = await main(o);
  } catch (e) {
    const known = e instanceof StatusError || e instanceof LabError || e instanceof ConfigError;
    process.stderr.write(
      `status: ${known ? (e as Error).message : ((e as Error).stack ?? String(e))}\n`,
    );
    process.exitCode = 2;
  }
});

await program.parseAsync(process.argv);
