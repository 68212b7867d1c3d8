/**
 * Image build contexts, as Docker would send them: the files of a context folder that its
 * `.dockerignore` lets through (Docker's own matching rules, by `@balena/dockerignore`), in
 * a deterministic tar (`tar-stream`: sorted, mtime 0, owned by root 0:0), and its hash.
 * Reads files; no Pulumi.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import tar from "tar-stream";

// A CommonJS module whose types declare an ES default export: loaded by require, so that the
// factory it exports is what we call under tsx and Node alike.
const ignore = createRequire(import.meta.url)(
  "@balena/dockerignore",
) as (typeof import("@balena/dockerignore"))["default"];

export type ImageKind = "felix" | "bird" | "plugin" | "util";

/** Where each image is built from (paths relative to the repository root). */
export const IMAGE_BUILDS: Record<ImageKind, { context: string; dockerfile: string }> = {
  felix: { context: "images/felix", dockerfile: "images/felix/Dockerfile" },
  bird: { context: "images/bird", dockerfile: "images/bird/Dockerfile" },
  // The plugin's image needs the workspace's lockfile, so its context is the repository root.
  plugin: { context: ".", dockerfile: "images/plugin/Dockerfile" },
  util: { context: "images/util", dockerfile: "images/util/Dockerfile" },
};

export interface BuildContext {
  /** The Dockerfile's path inside the context. */
  dockerfile: string;
  /** Context-relative paths, sorted. */
  files: string[];
  /** A deterministic tar of the files (mtime 0, owned by root 0:0, sorted). */
  tar: Buffer;
  /** SHA-256 of the tar. */
  hash: string;
}

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The Dockerfile's path inside the context of `kind`. */
export function contextDockerfile(kind: ImageKind, root: string = REPO_ROOT): string {
  const spec = IMAGE_BUILDS[kind];
  return relative(join(root, spec.context), join(root, spec.dockerfile)).split(sep).join("/");
}

/**
 * The build context of an image: every file of its context folder that the Dockerfile's own
 * `<Dockerfile>.dockerignore` (else the context's `.dockerignore`) does not exclude, plus
 * the Dockerfile, in a deterministic tar.
 */
export async function buildContext(
  kind: ImageKind,
  root: string = REPO_ROOT,
): Promise<BuildContext> {
  const spec = IMAGE_BUILDS[kind];
  const contextDir = join(root, spec.context);
  const dockerfile = contextDockerfile(kind, root);
  const files = contextFiles(contextDir, dockerignoreText(contextDir, join(root, spec.dockerfile)));
  if (!files.includes(dockerfile)) files.push(dockerfile); // Docker always sends it
  files.sort();
  const data = await deterministicTar(contextDir, files);
  return { dockerfile, files, tar: data, hash: createHash("sha256").update(data).digest("hex") };
}

/** The ignore file Docker reads for this Dockerfile and context, or "" when there is none. */
function dockerignoreText(contextDir: string, dockerfilePath: string): string {
  for (const file of [`${dockerfilePath}.dockerignore`, join(contextDir, ".dockerignore")]) {
    if (existsSync(file)) return readFileSync(file, "utf8");
  }
  return "";
}

/**
 * The files under `contextDir` that `dockerignore` lets through (context-relative, `/`
 * separated). An excluded folder is not walked unless an exception (`!pattern`) could
 * reach inside it, as Docker does.
 */
export function contextFiles(contextDir: string, dockerignore: string): string[] {
  const ig = ignore().add(dockerignore);
  const exceptions = dockerignore
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("!"))
    .map((l) => l.slice(1).replace(/^\/+/, ""));
  const mayReach = (dir: string) =>
    exceptions.some((p) => p.startsWith(`${dir}/`) || /^[^/]*[*?[]/.test(p));
  const out: string[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!ig.ignores(rel) || mayReach(rel)) walk(join(dir, entry.name), rel);
      } else if (entry.isFile() && !ig.ignores(rel)) {
        out.push(rel);
      }
    }
  };
  walk(contextDir, "");
  return out;
}

/** A tar of `files` (context-relative, in the given order): regular files, 0644 or 0755. */
export async function deterministicTar(
  contextDir: string,
  files: readonly string[],
): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on("data", (chunk: unknown) => chunks.push(chunk as Buffer));
    pack.on("end", () => resolve(Buffer.concat(chunks)));
    pack.on("error", reject);
  });
  for (const f of files) {
    const full = join(contextDir, f);
    pack.entry(
      {
        name: f,
        type: "file",
        mode: statSync(full).mode & 0o111 ? 0o755 : 0o644,
        mtime: new Date(0),
        uid: 0,
        gid: 0,
        uname: "root",
        gname: "root",
      },
      readFileSync(full),
    );
  }
  pack.finalize();
  return done;
}
