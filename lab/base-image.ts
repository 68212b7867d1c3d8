/**
 * The lab's Python 2.7 base images: Debian bullseye roots made by `mmdebstrap` from Debian's
 * mirror, the only package source the lab needs (it fetches with apt, several packages at
 * once, and unpacks them in one dpkg run: about twice as fast as `debootstrap`). One per stage
 * of images/felix/Dockerfile: the build stage's holds every package that stage installs, the
 * runtime stage's only the runtime's, so that building the recipe needs no network and the
 * image holds what a production build's holds (no compiler, no headers). Each root is kept as
 * a tarball in the lab's shared cache, named by a hash of what went into it (suite, mirror,
 * variant, stage, packages), and `docker import`ed into a daemon that lacks it.
 */
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { cacheKey, labCacheDir, withCacheLock } from "./cache.js";
import { LabError, step } from "./context.js";
import { docker, mountsUnder } from "./docker.js";
import { run } from "./exec.js";
import { installMissing } from "./stages/preflight.js";

/** Repository of the imported base image; its tag is the base key. */
export const BASE_REPOSITORY = "calico-lab/bullseye-py27";
export const DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian";

/** The stages of images/felix/Dockerfile, each built on a base of its own. */
export const BASE_STAGES = ["build", "runtime"] as const;
export type BaseStage = (typeof BASE_STAGES)[number];

/**
 * What each stage of images/felix/Dockerfile installs when its base lacks it
 * (test/felix-image.test.ts checks these lists against the recipe's).
 */
export const BASE_PACKAGES: Readonly<Record<BaseStage, readonly string[]>> = {
  build: [
    "python2.7",
    "python2-dev",
    "python-setuptools",
    "gcc",
    "libc6-dev",
    "libzmq3-dev",
    "libxtables-dev",
    "libip4tc-dev",
    "git",
    "ca-certificates",
  ],
  runtime: ["python2.7", "libzmq5", "iptables", "ipset", "net-tools", "iproute2"],
};

export interface BaseImageSpec {
  stage: BaseStage;
  suite: string;
  mirror: string;
  variant: string;
  packages: readonly string[];
}

export interface BaseImageOptions {
  /** The shared cache folder (default: labCacheDir()). */
  cacheDir?: string;
  /** Debian mirror (default `$CALICO_DEBIAN_MIRROR`, else deb.debian.org). */
  mirror?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface BaseImage {
  /** `calico-lab/bullseye-py27:<key>`: the stage's base image build argument. */
  tag: string;
  key: string;
  /** The cached root filesystem tarball. */
  tarball: string;
  /** True when the root was bootstrapped in this call (no cached tarball). */
  bootstrapped: boolean;
  /** True when the tarball was imported into the daemon in this call. */
  imported: boolean;
}

export const stderrLog = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/** The base of a stage that this lab builds with the given options. */
export function baseImageSpec(stage: BaseStage, opts: BaseImageOptions = {}): BaseImageSpec {
  const mirror = opts.mirror ?? process.env.CALICO_DEBIAN_MIRROR?.trim() ?? "";
  const chosen = mirror === "" ? DEFAULT_DEBIAN_MIRROR : mirror;
  if (!/^https?:\/\/[A-Za-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._~/-]*)?$/.test(chosen)) {
    throw new LabError(
      `CALICO_DEBIAN_MIRROR=${JSON.stringify(chosen)}: a Debian mirror must be an http(s) URL`,
    );
  }
  return {
    stage,
    suite: "bullseye",
    mirror: chosen,
    variant: "minbase",
    packages: BASE_PACKAGES[stage],
  };
}

/** The hash of what goes into the base: its cache file name and image tag. */
export function baseImageKey(spec: BaseImageSpec): string {
  const { stage, suite, mirror, variant, packages } = spec;
  return cacheKey(["mmdebstrap", stage, suite, mirror, variant, ...packages]);
}

export function baseImageTag(key: string): string {
  return `${BASE_REPOSITORY}:${key}`;
}

/** The cached tarball of the base root (made by mmdebstrap when missing). */
export async function ensureBaseTarball(
  spec: BaseImageSpec,
  cacheDir: string,
  log: (line: string) => void,
): Promise<{ file: string; bootstrapped: boolean }> {
  const key = baseImageKey(spec);
  const file = path.join(cacheDir, `${spec.suite}-py27-${spec.stage}-${key}.tar`);
  if (existsSync(file)) return { file, bootstrapped: false };
  mkdirSync(cacheDir, { recursive: true });
  return withCacheLock(
    file,
    async () => {
      if (existsSync(file)) return { file, bootstrapped: false }; // made while we waited
      const root = path.join(cacheDir, `rootfs-${key}-${process.pid}`);
      await rm(root, { recursive: true, force: true });
      try {
        await step(
          log,
          `mmdebstrap ${spec.suite} for the ${spec.stage} stage (${spec.variant}, ${spec.packages.length} packages)`,
          () => bootstrap(spec, root, log),
        );
        await step(log, `tar the base root into ${file}`, async () => {
          const tmp = `${file}.${process.pid}.tmp`;
          const args = ["--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*"];
          args.push("--exclude=./sys/*", "-C", root, "-cf", tmp, ".");
          try {
            await run("tar", args, { timeoutMs: 600_000 });
            renameSync(tmp, file);
          } finally {
            await rm(tmp, { force: true });
          }
        });
      } finally {
        // mmdebstrap mounts /proc, /sys and /dev in the root, and may leave them after a failure.
        for (const m of mountsUnder([root])) await run("umount", ["-l", m], { okCodes: [32] });
        await rm(root, { recursive: true, force: true });
      }
      return { file, bootstrapped: true };
    },
    log,
  );
}

async function bootstrap(
  spec: BaseImageSpec,
  root: string,
  log: (line: string) => void,
): Promise<void> {
  await installMissing(["mmdebstrap"], log);
  try {
    await run(
      "mmdebstrap",
      [
        `--variant=${spec.variant}`,
        `--include=${spec.packages.join(",")}`,
        spec.suite,
        root,
        spec.mirror,
      ],
      { timeoutMs: 30 * 60_000 },
    );
  } catch (e) {
    const why = (e as Error).message;
    throw new LabError(
      `cannot make the Python 2.7 base (mmdebstrap ${spec.suite} from ${spec.mirror}): ${why}`,
    );
  }
  // The image carries no package cache and no package lists (as Debian's own images).
  await run("sh", [
    "-c",
    'rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/var/log/*.log',
    "sh",
    root,
  ]);
}

/** A stage's base image in the daemon at dockerHost: imported from the cache, made if needed. */
export async function ensureBaseImage(
  dockerHost: string,
  stage: BaseStage,
  opts: BaseImageOptions = {},
): Promise<BaseImage> {
  const spec = baseImageSpec(stage, opts);
  const key = baseImageKey(spec);
  const tag = baseImageTag(key);
  const log = opts.log ?? stderrLog;
  const cacheDir = opts.cacheDir ?? labCacheDir();
  const have = await docker(dockerHost, ["image", "inspect", "-f", "{{.Id}}", tag], {
    okCodes: [1],
  });
  const { file, bootstrapped } = await ensureBaseTarball(spec, cacheDir, log);
  if (have.code === 0) return { tag, key, tarball: file, bootstrapped, imported: false };
  const size = statSync(file).size;
  await step(log, `docker import ${tag} (${(size / 1e6).toFixed(0)} MB)`, () =>
    docker(
      dockerHost,
      [
        "import",
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        'CMD ["/bin/bash"]',
        file,
        tag,
      ],
      { timeoutMs: 600_000 },
    ),
  );
  return { tag, key, tarball: file, bootstrapped, imported: true };
}
