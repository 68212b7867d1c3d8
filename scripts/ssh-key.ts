/**
 * `npm run ssh-key -- --stack <name> [--from-stack-output [--optional]]`
 *
 * Puts a stack's SSH private key where its docker providers look for it,
 * `~/.calico-docker/ssh/<project>/<stack>/id_key` (0600, in 0700 directories; a symbolic
 * link or a directory another user could write is refused). `pulumi refresh` and `pulumi
 * destroy` do not run the program: they dial the hosts with the providers' stored settings,
 * which name the key at that place. Run this first on a machine that has not run `pulumi up`
 * for the stack (a fresh runner, a colleague's laptop).
 *
 * The key comes from stdin, or with --from-stack-output from `pulumi stack output
 * sshPrivateKey --show-secrets --stack <name>` (run here, its output never printed).
 * --optional: a stack that has no such output yet (never deployed) is not an error.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { parse } from "yaml";
import { sshDirFor, writePrivateKey } from "../components/ssh.js";

class UsageError extends Error {}

function projectName(): string {
  const file = new URL("../Pulumi.yaml", import.meta.url);
  const doc = parse(readFileSync(file, "utf8")) as { name?: unknown };
  if (typeof doc.name !== "string") throw new UsageError("Pulumi.yaml has no project name");
  return doc.name;
}

function keyFromStackOutput(stack: string): string | undefined {
  const res = spawnSync(
    "pulumi",
    ["stack", "output", "sshPrivateKey", "--show-secrets", "--non-interactive", "--stack", stack],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 20 },
  );
  if (res.error) throw new UsageError(`cannot run pulumi: ${res.error.message}`);
  if (res.status !== 0) {
    if (/does not have output property|no output property/i.test(res.stderr)) return undefined;
    throw new UsageError(`pulumi stack output failed: ${res.stderr.trim()}`);
  }
  return res.stdout;
}

/**
 * Why `text` is not one private key, or undefined: exactly one PEM block (`-----BEGIN …
 * PRIVATE KEY-----` to the matching END line), nothing else. Two keys pasted one after the
 * other would be written as one file that `ssh` reads as the first key or refuses.
 */
function keyProblem(text: string): string | undefined {
  const blocks = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]*)-----/g)].map((m) => m[1]!);
  if (blocks.length > 1) {
    return `holds ${blocks.length} PEM blocks (${blocks.join(", ")}); give exactly one private key`;
  }
  const one = /^-----BEGIN ([A-Z ]*)PRIVATE KEY-----\n[\s\S]+\n-----END \1PRIVATE KEY-----\n$/;
  if (!one.test(text.trim() + "\n")) return "is not one PEM or OpenSSH private key";
  return undefined;
}

function main(argv: string[]): number {
  const program = new Command()
    .name("ssh-key")
    .requiredOption("--stack <name>", "the stack whose key to put in place")
    .option("--project <name>", "the Pulumi project (default: the name in Pulumi.yaml)")
    .option("--from-stack-output", "read the key from the stack's sshPrivateKey output")
    .option("--optional", "with --from-stack-output: no such output yet is not an error")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: "user" });
  } catch (err) {
    return (err as { exitCode?: number }).exitCode ?? 2;
  }
  const opts = program.opts<{
    stack: string;
    project?: string;
    fromStackOutput?: boolean;
    optional?: boolean;
  }>();
  try {
    const dir = sshDirFor(opts.project ?? projectName(), opts.stack);
    const key = opts.fromStackOutput ? keyFromStackOutput(opts.stack) : readFileSync(0, "utf8");
    if (key === undefined) {
      if (opts.optional) {
        process.stderr.write(`ssh-key: stack ${opts.stack} has no sshPrivateKey output yet\n`);
        return 0;
      }
      throw new UsageError(`stack ${opts.stack} has no sshPrivateKey output (never deployed?)`);
    }
    const problem = keyProblem(key);
    if (problem !== undefined) {
      const source = opts.fromStackOutput ? "the stack output sshPrivateKey" : "the input (stdin)";
      throw new UsageError(`${source} ${problem}`);
    }
    const path = writePrivateKey(key, dir);
    process.stderr.write(`ssh-key: the key of stack ${opts.stack} is at ${path}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`ssh-key: ${(err as Error).message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

process.exitCode = main(process.argv.slice(2));
