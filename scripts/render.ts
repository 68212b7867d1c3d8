/**
 * `npm run render -- --stack <name> [--out <dir>] [--dir <dir>]`
 *
 * Validates `Pulumi.<name>.yaml` and writes every rendered file into `out/<name>/` (one
 * folder per host), for review without a cloud account. Files of a previous render of the
 * same output folder are removed first (only those it wrote, listed in its manifest), in an
 * --out no other user can change, never through a symbolic link (`render-out.ts`). A bad
 * stack file, manifest or --out is one line on stderr naming it, and exit 1.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { ConfigError, loadConfig } from "../components/config.js";
import { buildModel, type ClusterModel } from "../components/model.js";
import {
  renderAll,
  STAND_IN_SSH_KEY,
  RenderError,
  type RenderedFile,
} from "../components/render/index.js";
import { rawFromStackConfig } from "../components/stack-keys.js";
import { readStackEntries, stackFilePath, StackFileError } from "../components/stackfile.js";
import { OutError, writeOut } from "./render-out.js";

class UsageError extends Error {}

function summary(
  stack: string,
  model: ClusterModel,
  files: readonly RenderedFile[],
  outDir: string,
  removed: number,
  keyStandIn: boolean,
): string {
  const c = model.config;
  const sessions = model.hosts.reduce((n, h) => n + h.peers.length, 0) / 2;
  const bytes = files.reduce((n, f) => n + Buffer.byteLength(f.content), 0);
  const lines = [
    `stack ${stack}: platform ${c.platform}, pool ${c.endpointPool}, controller ${model.controller.name}`,
    `hosts (${model.hosts.length}):`,
    ...model.hosts.map((h) => {
      const roles = [
        h.isController ? "controller" : "",
        h.isRouteReflector ? "route reflector" : "",
      ]
        .filter(Boolean)
        .join(", ");
      return `  ${h.name.padEnd(16)} ${h.internalAddress.padEnd(15)} ${String(h.endpoints.length).padStart(3)} endpoint(s), ${h.peers.length} BGP peer(s)${roles ? ` [${roles}]` : ""}`;
    }),
    `endpoints: ${model.endpoints.length} in ${model.groups.length} group(s) (${model.groups.filter((g) => g.explicit).length} with explicit rules)`,
    c.platform === "gce"
      ? `GCE routes: ${model.routes.length} (${c.gce.routeGranularity})`
      : "GCE routes: none (platform existing)",
    c.bgp.enabled
      ? `BGP: AS ${c.bgp.asNumber}, ${c.bgp.peering}, ${c.bgp.session}, ${sessions} session(s)`
      : "BGP: off (no bird.conf)",
    `files: ${files.length} written to ${outDir} (${bytes} bytes)${removed > 0 ? `, ${removed} from the previous render removed` : ""}`,
  ];
  if (c.platform === "gce") {
    lines.push(
      `note: ignition.json holds a stand-in SSH key "${STAND_IN_SSH_KEY}"; the real key is generated at deploy`,
    );
  }
  if (keyStandIn) {
    lines.push(
      "note: the stack sets no sshPrivateKey; rendering needs none, deploying needs it " +
        "(pulumi config set --secret sshPrivateKey < <private key file>)",
    );
  }
  lines.push("note: endpoint ids are synthetic here; at deploy they are the containers' ids");
  return lines.join("\n");
}

export function main(argv: readonly string[]): number {
  const program = new Command()
    .name("npm run render --")
    .description("Write every rendered file of a stack into a folder, for review.")
    .requiredOption("-s, --stack <name>", "stack name: reads Pulumi.<name>.yaml")
    .option("-o, --out <dir>", "output folder (default: out/<stack>)")
    .option("-d, --dir <dir>", "folder holding Pulumi.<stack>.yaml", process.cwd())
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: "user" });
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : 2;
  }
  const opts = program.opts<{ stack: string; out?: string; dir: string }>();
  try {
    let file: string;
    try {
      file = stackFilePath(opts.stack, opts.dir);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (!existsSync(file)) {
      throw new UsageError(
        `no stack file ${file} (create it, or pass --dir to the folder holding it)`,
      );
    }
    const raw = rawFromStackConfig(readStackEntries(file));
    // Rendering reads no key: on platform existing a stack without its secret key (an
    // example, a fresh copy) renders with a stand-in for it, as GCE renders a stand-in
    // public key. Deploying still requires the real one.
    const keyStandIn = raw.platform === "existing" && raw.sshPrivateKey === undefined;
    if (keyStandIn) raw.sshPrivateKey = { secret: true };
    const model = buildModel(loadConfig(raw));
    const files = renderAll(model);
    const outDir = resolve(opts.out ?? join("out", opts.stack));
    const removed = writeOut(outDir, files);
    console.log(summary(opts.stack, model, files, outDir, removed, keyStandIn));
    return 0;
  } catch (error) {
    if (
      error instanceof ConfigError ||
      error instanceof RenderError ||
      error instanceof UsageError ||
      error instanceof OutError ||
      error instanceof StackFileError
    ) {
      console.error(`render: ${error.message}`);
      return 1;
    }
    const errno = error as NodeJS.ErrnoException;
    if (typeof errno.code === "string" && typeof errno.syscall === "string") {
      // The file system refused (permissions, a full disk): its message names the path.
      console.error(`render: ${errno.message}`);
      return 1;
    }
    throw error;
  }
}

process.exitCode = main(process.argv.slice(2));
