/**
 * `npm run render -- --stack <name> [--out <dir>] [--dir <dir>]`
 *
 * Validates `Pulumi.<name>.yaml` and writes every rendered file into `out/<name>/` (one
 * folder per host), for review without a cloud account. Files of a previous render of the
 * same output folder are removed first (only those it wrote, listed in its manifest).
 */
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmdirSync,
  rmSync,
  writeFileSync,
  chmodSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Command } from "commander";
import { ConfigError } from "../components/config.js";
import { buildModel, type ClusterModel } from "../components/model.js";
import {
  renderAll,
  STAND_IN_SSH_KEY,
  RenderError,
  type RenderedFile,
} from "../components/render/index.js";
import { loadStackFile, stackFilePath } from "../components/stackfile.js";

/** Lists what a render wrote, so the next render removes exactly that. */
export const MANIFEST = ".rendered-files.json";

class UsageError extends Error {}

function removePrevious(outDir: string): number {
  const manifest = join(outDir, MANIFEST);
  if (!existsSync(manifest)) {
    if (existsSync(outDir) && readdirSync(outDir).length > 0) {
      throw new UsageError(
        `${outDir} exists, is not empty and was not written by npm run render ` +
          `(no ${MANIFEST}); choose another --out or empty it`,
      );
    }
    return 0;
  }
  const listed = JSON.parse(readFileSync(manifest, "utf8")) as unknown;
  if (!Array.isArray(listed) || !listed.every((p) => typeof p === "string")) {
    throw new UsageError(`${manifest} is not a list of file names; remove it by hand`);
  }
  let removed = 0;
  const dirs = new Set<string>();
  for (const rel of listed as string[]) {
    const file = resolve(outDir, rel);
    if (!file.startsWith(resolve(outDir) + "/")) continue; // never outside the folder
    if (existsSync(file)) {
      rmSync(file);
      removed++;
    }
    for (let d = dirname(file); d.startsWith(resolve(outDir) + "/"); d = dirname(d)) dirs.add(d);
  }
  // Deepest first: remove the folders left empty.
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    if (existsSync(d) && readdirSync(d).length === 0) rmdirSync(d);
  }
  rmSync(manifest);
  return removed;
}

function writeFiles(outDir: string, files: readonly RenderedFile[]): void {
  mkdirSync(outDir, { recursive: true });
  for (const f of files) {
    const path = join(outDir, f.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, f.content, { mode: f.mode });
    chmodSync(path, f.mode);
  }
  writeFileSync(
    join(outDir, MANIFEST),
    JSON.stringify(
      files.map((f) => f.path),
      null,
      2,
    ) + "\n",
  );
}

function summary(
  stack: string,
  model: ClusterModel,
  files: readonly RenderedFile[],
  outDir: string,
  removed: number,
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
    const model = buildModel(loadStackFile(file));
    const files = renderAll(model);
    const outDir = resolve(opts.out ?? join("out", opts.stack));
    const removed = removePrevious(outDir);
    writeFiles(outDir, files);
    console.log(summary(opts.stack, model, files, outDir, removed));
    return 0;
  } catch (error) {
    if (
      error instanceof ConfigError ||
      error instanceof RenderError ||
      error instanceof UsageError
    ) {
      console.error(`render: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

process.exitCode = main(process.argv.slice(2));
