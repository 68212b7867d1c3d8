/**
 * The felix image in a lab's Docker daemon, built from the product's recipe,
 * images/felix/Dockerfile, with only its build arguments changed: BUILD_BASE_IMAGE and
 * BASE_IMAGE are the lab's Python 2.7 bullseye bases of the build and runtime stages
 * (base-image.ts) and SOURCES is `mirror` (a verified source mirror copied into the build
 * context) or `upstream`. Built once per machine: the image is tagged with a key (a hash of
 * the recipe's files, the base keys and the sources' pins) and saved as
 * a tarball in the lab's shared cache, so a new lab daemon only needs `docker load`.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
} from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  baseImageKey,
  BASE_STAGES,
  baseImageSpec,
  ensureBaseImage,
  stderrLog,
  type BaseImageOptions,
} from "./base-image.js";
import { cacheKey, labCacheDir, withCacheLock } from "./cache.js";
import { fmtSeconds, step } from "./context.js";
import { docker } from "./docker.js";
import {
  chooseSources,
  FELIX_RECIPE_DIR,
  FelixImageError,
  readSourcesLock,
  verifyMirror,
  type SourcesChoice,
} from "./felix-sources.js";

export { FelixImageError } from "./felix-sources.js";

/** Repository of the lab's felix image; its tag is the image key. */
export const FELIX_REPOSITORY = "calico-lab/felix";
/** The product's name of the image (the rendered scripts run this), also given to it. */
export const PRODUCT_FELIX_IMAGE = "calico:felix";

export interface FelixImageOptions extends BaseImageOptions {
  /** `--sources DIR`: a source mirror (default `$CALICO_SOURCES`, else upstream). */
  sources?: string;
  /** Where CALICO_SOURCES is read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface FelixImage {
  /** `calico-lab/felix:<key>`; the image is also tagged PRODUCT_FELIX_IMAGE. */
  tag: string;
  key: string;
  /**
   * present: the daemon had it; loaded: from the cached tarball; built: built now; cached:
   * the tarball is in the cache (`lab image`, which needs no daemon then).
   */
  how: "present" | "loaded" | "built" | "cached";
  sources: "mirror" | "upstream";
  /** How long this call took. */
  ms: number;
}

/** Files of the recipe's build context (a mirror's tarballs excepted), sorted. */
function recipeFiles(dir = FELIX_RECIPE_DIR, rel = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const name = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...recipeFiles(dir, name));
    else if (e.isFile() && !(rel === "mirror" && e.name.endsWith(".tar.gz"))) out.push(name);
  }
  return out.sort();
}

/** The key of the image these options build: recipe files, base key, sources. */
export function felixImageKey(choice: SourcesChoice, opts: BaseImageOptions = {}): string {
  const bases = BASE_STAGES.map((st) => baseImageKey(baseImageSpec(st, opts)));
  const parts = ["felix", ...bases, choice.kind];
  for (const f of recipeFiles()) {
    const full = path.join(FELIX_RECIPE_DIR, f);
    parts.push(f, (statSync(full).mode & 0o111).toString(8), readFileSync(full, "utf8"));
  }
  return cacheKey(parts);
}

async function hasImage(host: string, tag: string): Promise<boolean> {
  const r = await docker(host, ["image", "inspect", "-f", "{{.Id}}", tag], { okCodes: [1] });
  return r.code === 0;
}

/** The felix image these options make: its key and tag, and its tarball in the cache. */
export function felixImageFiles(opts: FelixImageOptions = {}): {
  key: string;
  tag: string;
  tarball: string;
  sources: SourcesChoice;
} {
  const sources = chooseSources(opts.sources, opts.env);
  const key = felixImageKey(sources, opts);
  const tarball = path.join(opts.cacheDir ?? labCacheDir(opts.env), `felix-${key}.tar`);
  return { key, tag: `${FELIX_REPOSITORY}:${key}`, tarball, sources };
}

/**
 * The felix image these options make, when its tarball is in the cache: found with no daemon,
 * after waiting while another process holds the cache's lock on it (building it). Undefined
 * when there is none.
 */
export async function cachedFelixImage(
  opts: FelixImageOptions = {},
): Promise<FelixImage | undefined> {
  const t0 = performance.now();
  const { key, tag, tarball, sources } = felixImageFiles(opts);
  const there = () => existsSync(tarball);
  if (!there()) {
    mkdirSync(path.dirname(tarball), { recursive: true });
    if (!(await withCacheLock(tarball, async () => there(), opts.log ?? stderrLog))) {
      return undefined;
    }
  }
  return { tag, key, how: "cached", sources: sources.kind, ms: performance.now() - t0 };
}

/**
 * Make sure the daemon at dockerHost has the felix image: present, loaded from the shared
 * cache, or built (the first time on this machine). Throws FelixImageError when it cannot.
 */
export async function ensureFelixImage(
  dockerHost: string,
  opts: FelixImageOptions = {},
): Promise<FelixImage> {
  try {
    return await ensure(dockerHost, opts);
  } catch (e) {
    if (e instanceof FelixImageError) throw e;
    throw new FelixImageError(`the felix image cannot be made: ${(e as Error).message}`);
  }
}

async function ensure(dockerHost: string, opts: FelixImageOptions): Promise<FelixImage> {
  const t0 = performance.now();
  const log = opts.log ?? stderrLog;
  const cacheDir = opts.cacheDir ?? labCacheDir(opts.env);
  const { key, tag, tarball, sources: choice } = felixImageFiles(opts);
  const pins = readSourcesLock();
  const files = choice.kind === "mirror" ? verifyMirror(choice, pins) : [];
  const done = async (how: FelixImage["how"]): Promise<FelixImage> => {
    await docker(dockerHost, ["tag", tag, PRODUCT_FELIX_IMAGE]);
    return { tag, key, how, sources: choice.kind, ms: performance.now() - t0 };
  };
  if (await hasImage(dockerHost, tag)) return done("present");
  if (await loadCached(dockerHost, tag, tarball, log)) return done("loaded");
  mkdirSync(cacheDir, { recursive: true });
  return withCacheLock(
    tarball,
    async () => {
      // Built by another lab while we waited?
      if (await loadCached(dockerHost, tag, tarball, log)) return done("loaded");
      log(
        `building Felix 0.10.2 from images/felix/Dockerfile (${choice.kind === "mirror" ? `sources from ${choice.dir}` : "sources from upstream"}); ` +
          "this happens once per machine, later runs load it from the cache",
      );
      const baseOpts = { ...opts, log, cacheDir };
      const [buildBase, runtimeBase] = await Promise.all([
        ensureBaseImage(dockerHost, "build", baseOpts),
        ensureBaseImage(dockerHost, "runtime", baseOpts),
      ]);
      const bases = { build: buildBase.tag, runtime: runtimeBase.tag };
      await build(dockerHost, { tag, bases, choice, files, cacheDir, log });
      await step(log, `save the felix image into ${tarball}`, async () => {
        const tmp = `${tarball}.${process.pid}.tmp`;
        try {
          await docker(dockerHost, ["save", "-o", tmp, tag], { timeoutMs: 600_000 });
          renameSync(tmp, tarball);
        } finally {
          await rm(tmp, { force: true });
        }
      });
      const image = await done("built");
      log(`built Felix in ${fmtSeconds(image.ms)}; later runs reuse it`);
      return image;
    },
    log,
  );
}

/**
 * `docker load` the cached tarball when there is one; false when there is none. A tarball that
 * does not load, or loads without the tag, is removed (and the image built again).
 */
async function loadCached(
  host: string,
  tag: string,
  tarball: string,
  log: (line: string) => void,
): Promise<boolean> {
  if (!existsSync(tarball)) return false;
  try {
    await step(log, `load the felix image ${tag} from ${tarball}`, () =>
      docker(host, ["load", "-q", "-i", tarball], { timeoutMs: 600_000 }),
    );
    if (await hasImage(host, tag)) return true;
    log(`  ${tarball} does not hold ${tag}: removed, building again`);
  } catch (e) {
    log(
      `  ${tarball} does not load (${(e as Error).message.split("\n")[0]}): removed, building again`,
    );
  }
  await rm(tarball, { force: true });
  return false;
}

interface BuildPlan {
  tag: string;
  /** The base image of each stage. */
  bases: { build: string; runtime: string };
  choice: SourcesChoice;
  files: string[];
  cacheDir: string;
  log: (line: string) => void;
}

/** `docker build` of the recipe, in a copy of its folder with the mirror's files added. */
async function build(host: string, p: BuildPlan): Promise<void> {
  const ctx = path.join(p.cacheDir, `felix-context-${process.pid}`);
  const buildLog = path.join(p.cacheDir, `felix-build-${p.tag.split(":")[1]}.log`);
  await rm(ctx, { recursive: true, force: true });
  try {
    cpSync(FELIX_RECIPE_DIR, ctx, {
      recursive: true,
      filter: (src) => !(path.basename(path.dirname(src)) === "mirror" && src.endsWith(".tar.gz")),
    });
    for (const f of p.files) cpSync(f, path.join(ctx, "mirror", path.basename(f)));
    const args = [
      "build",
      // From a mirror and the lab's base, nothing is downloaded: no network at all.
      "--network",
      p.choice.kind === "mirror" ? "none" : "host",
      "--build-arg",
      `BUILD_BASE_IMAGE=${p.bases.build}`,
      "--build-arg",
      `BASE_IMAGE=${p.bases.runtime}`,
      "--build-arg",
      `SOURCES=${p.choice.kind}`,
      "-t",
      p.tag,
      ctx,
    ];
    await step(
      p.log,
      `docker build images/felix (BUILD_BASE_IMAGE=${p.bases.build}, BASE_IMAGE=${p.bases.runtime}, SOURCES=${p.choice.kind})`,
      async () => {
        try {
          const r = await docker(host, args, {
            timeoutMs: 45 * 60_000,
            env: { ...process.env, DOCKER_BUILDKIT: "0" },
          });
          await writeFile(buildLog, r.stdout + r.stderr);
        } catch (e) {
          const err = e as Error & { stdout?: string; stderr?: string };
          await writeFile(buildLog, `${err.stdout ?? ""}${err.stderr ?? ""}\n${err.message}\n`);
          const tail = `${err.stdout ?? ""}${err.stderr ?? ""}`.trim().split("\n").slice(-12);
          throw new FelixImageError(
            `the felix image did not build (full log: ${buildLog}):\n    ${tail.join("\n    ")}`,
          );
        }
      },
    );
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}
