/**
 * `npm run lab -- up|check|apply|down|image|env [--stack <name>] [--json]`: the stack's hosts
 * as network namespaces on this machine, its endpoints as Docker containers (or bare
 * namespaces), with real BIRD, Felix and the ACL Manager, checked with the policy matrix.
 */
import { Command, Option } from "commander";
import { ConfigError } from "../components/config.js";
import { loadStackFile, stackFilePath, StackFileError } from "../components/stackfile.js";
import { applyPolicy } from "./apply.js";
import { REPO_ROOT } from "./state.js";
import { labCheck } from "./check.js";
import { CommandError } from "./exec.js";
import { LabError } from "./context.js";
import { labDockerHost, labDown, labUp } from "./lab.js";
import { prepareFelixImage } from "./prepare-image.js";
import { formatReport } from "./report.js";

const program = new Command()
  .name("npm run lab --")
  .description(
    "Build a stack's hosts as network namespaces on this machine (root, Linux), its endpoints as " +
      "Docker containers on the lab's own dockerd (or the one DOCKER_HOST names), wired by the " +
      "rendered scripts, with BIRD, Felix and the ACL Manager, and prove the routes and the " +
      "stack's policy both ways (allowed pairs connect, denied pairs are dropped). " +
      "`up --endpoints netns` makes the endpoints bare network namespaces instead (no Docker: " +
      "for very large labs).",
  )
  .showHelpAfterError();

interface Common {
  stack: string;
  json?: boolean;
  stateDir?: string;
}

const common = (cmd: Command) =>
  cmd
    .option("-s, --stack <name>", "stack: reads Pulumi.<name>.yaml", "dev")
    .option("--json", "print the result as JSON (progress goes to stderr)")
    .addOption(new Option("--state-dir <dir>", "where state folders live (default <repo>/.lab)"));

/** `--sources DIR` of `up` and `image`. */
const sourcesOption = () =>
  new Option(
    "--sources <dir>",
    "Felix's source mirror (laid out like shared/sources, hashes verified); " +
      "default $CALICO_SOURCES, else upstream at the pinned commits",
  );

function progress(json: boolean | undefined) {
  return (line: string) => (json ? process.stderr : process.stdout).write(line + "\n");
}

async function main(action: () => Promise<number>) {
  try {
    process.exitCode = await action();
  } catch (e) {
    if (
      e instanceof LabError ||
      e instanceof ConfigError ||
      e instanceof StackFileError ||
      e instanceof CommandError
    ) {
      process.stderr.write(`lab: ${e.message}\n`);
    } else {
      process.stderr.write(`lab: ${(e as Error).stack ?? String(e)}\n`);
    }
    process.exitCode = 1;
  }
}

common(program.command("up").description("build the lab (replaces an existing one)"))
  .addOption(
    new Option("--stack-file <file>", "read this stack file instead of Pulumi.<stack>.yaml"),
  )
  .addOption(
    new Option(
      "--endpoints <mode>",
      "docker: containers (--net=none) wired by the endpoint script; netns: bare namespaces, " +
        "no Docker (very large labs)",
    )
      .choices(["docker", "netns"])
      .default("docker"),
  )
  .addOption(
    new Option(
      "--felix <mode>",
      "real: Felix and the ACL Manager from the felix image, enforcing the stack's policy; " +
        "stand-in: the lab does Felix's routing itself and tests NO policy",
    )
      .choices(["real", "stand-in"])
      .default("real"),
  )
  .addOption(sourcesOption())
  .action(
    (
      o: Common & {
        stackFile?: string;
        endpoints: "docker" | "netns";
        felix: "real" | "stand-in";
        sources?: string;
      },
    ) =>
      main(async () => {
        const r = await labUp({
          stack: o.stack,
          endpoints: o.endpoints,
          felix: o.felix,
          ...(o.sources ? { sources: o.sources } : {}),
          log: progress(o.json),
          ...(o.stateDir ? { stateRoot: o.stateDir } : {}),
          ...(o.stackFile ? { stackFile: o.stackFile } : {}),
        });
        if (o.json) {
          process.stdout.write(
            JSON.stringify(
              {
                stack: o.stack,
                stateDir: r.stateDir,
                durationMs: Math.round(r.durationMs),
                plan: r.plan,
              },
              null,
              2,
            ) + "\n",
          );
        }
        return 0;
      }),
  );

common(
  program
    .command("check")
    .description(
      "health, BGP sessions, routes, and the policy matrix (or, with the stand-in, a ping matrix)",
    ),
)
  .option("--timeout <seconds>", "how long to wait for convergence", "60")
  .addOption(
    new Option("--pinger <tool>", "ping tool (default: fping if installed)").choices([
      "fping",
      "ping",
    ]),
  )
  .action((o: Common & { timeout: string; pinger?: "fping" | "ping" }) =>
    main(async () => {
      const timeout = Number(o.timeout);
      if (!Number.isFinite(timeout) || timeout <= 0) {
        throw new LabError(
          `--timeout must be a positive number of seconds, got ${JSON.stringify(o.timeout)}`,
        );
      }
      const report = await labCheck({
        stack: o.stack,
        log: progress(o.json),
        timeoutMs: timeout * 1000,
        ...(o.pinger ? { pinger: o.pinger } : {}),
        ...(o.stateDir ? { stateRoot: o.stateDir } : {}),
      });
      process.stdout.write(
        (o.json ? JSON.stringify(report, null, 2) : "\n" + formatReport(report)) + "\n",
      );
      return report.ok ? 0 : 1;
    }),
  );

common(
  program
    .command("apply")
    .description(
      "re-render the controller's plugin data from the (edited) stack file into the running " +
        "lab, as pulumi up does: a policy change, enforced by the running Felix",
    ),
)
  .addOption(
    new Option("--stack-file <file>", "read this stack file instead of Pulumi.<stack>.yaml"),
  )
  .action((o: Common & { stackFile?: string }) =>
    main(async () => {
      const opts = { stack: o.stack, ...(o.stateDir ? { stateRoot: o.stateDir } : {}) };
      const config = loadStackFile(o.stackFile ?? stackFilePath(o.stack, REPO_ROOT));
      const r = applyPolicy(opts, config);
      const said = o.json
        ? JSON.stringify(r, null, 2)
        : r.written.length + r.removed.length === 0
          ? "nothing changed"
          : [...r.written.map((f) => `wrote ${f}`), ...r.removed.map((f) => `removed ${f}`)].join(
              "\n",
            );
      process.stdout.write(said + "\n");
      return 0;
    }),
  );

common(program.command("down").description("remove everything up made")).action((o: Common) =>
  main(async () => {
    const r = await labDown({
      stack: o.stack,
      log: progress(o.json),
      ...(o.stateDir ? { stateRoot: o.stateDir } : {}),
    });
    if (o.json) {
      process.stdout.write(
        JSON.stringify({ stack: o.stack, ...r, durationMs: Math.round(r.durationMs) }, null, 2) +
          "\n",
      );
    }
    return 0;
  }),
);

program
  .command("image")
  .description(
    "build the felix image (or find it) in the lab's cache, with no lab, and keep a Docker root holding it: a later `up` has it at once",
  )
  .addOption(sourcesOption())
  .action((o: { sources?: string }) =>
    main(async () => {
      const img = await prepareFelixImage({
        ...(o.sources ? { sources: o.sources } : {}),
        log: progress(false),
      });
      process.stdout.write(
        `felix image ${img.tag} (${img.how}, sources: ${img.sources}) in ${(img.ms / 1000).toFixed(1)} s\n`,
      );
      return 0;
    }),
  );

program
  .command("env")
  .description("print DOCKER_HOST=... for the lab's Docker daemon (eval it to use docker)")
  .option("-s, --stack <name>", "stack: reads Pulumi.<name>.yaml", "dev")
  .addOption(new Option("--state-dir <dir>", "where state folders live (default <repo>/.lab)"))
  .action((o: { stack: string; stateDir?: string }) =>
    main(async () => {
      const host = labDockerHost({
        stack: o.stack,
        ...(o.stateDir ? { stateRoot: o.stateDir } : {}),
      });
      process.stdout.write(`DOCKER_HOST=${host}\n`);
      return 0;
    }),
  );

await program.parseAsync(process.argv);
