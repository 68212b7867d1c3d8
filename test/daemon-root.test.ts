// The cached Docker root that lab daemons start from (lab/daemon-root.ts), for real (root, its
// own dockerds): made once from the cached felix image, it seeds a new daemon that has the
// image with both tags at once; what a daemon seeded from it does — a container writing and
// deleting files of the image, the image removed — leaves the cached root as it was, and a
// second daemon seeded afterwards still runs the image.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { labCacheDir } from "../lab/cache.js";
import {
  daemonRootDir,
  dockerdVersion,
  ensureDaemonRoot,
  seedDaemonRoot,
} from "../lab/daemon-root.js";
import { docker, startDockerd, stopDockerd } from "../lab/docker.js";
import { run } from "../lab/exec.js";
import { cachedFelixImage, felixImageFiles, PRODUCT_FELIX_IMAGE } from "../lab/felix-image.js";
import { StateDir } from "../lab/state.js";
import { LAB_SKIP } from "./helpers/lab.js";

/** Every file under dir (a count is enough to see that nothing was added or taken). */
async function fileCount(dir: string): Promise<number> {
  const { stdout } = await run("sh", ["-c", 'find "$1" | wc -l', "sh", dir]);
  return Number(stdout.trim());
}

describe(
  "a cached Docker root holding the felix image, for new lab daemons",
  { skip: LAB_SKIP },
  () => {
    let cache = "";
    let work = "";
    let root = "";
    let files: ReturnType<typeof felixImageFiles>;

    before(async () => {
      // In the lab's cache folder (hard links need the same filesystem as the daemons' roots).
      mkdirSync(labCacheDir(), { recursive: true });
      cache = mkdtempSync(path.join(labCacheDir(), "test-daemon-root-"));
      work = mkdtempSync(path.join(tmpdir(), "cdroot-"));
      // The felix image's tarball (made by `npm test` before the timed files, or by `lab image`).
      assert.ok(await cachedFelixImage(), "no cached felix image: run npm run lab -- image");
      files = felixImageFiles();
    });
    after(async () => {
      if (cache !== "") await rm(cache, { recursive: true, force: true });
      if (work !== "") await rm(work, { recursive: true, force: true });
    });

    async function seededDaemon(
      name: string,
    ): Promise<{ host: string; stop: () => Promise<unknown> }> {
      const state = new StateDir(work, name);
      assert.equal(await seedDaemonRoot(root, state.dockerDataRoot), true, "seeded");
      const prefix = `cdr${name}`;
      const { host } = await startDockerd(state, prefix);
      return { host, stop: () => stopDockerd(state, prefix) };
    }

    it("is made once from the cached image; a second call finds it", async () => {
      const image = {
        tarball: files.tarball,
        tags: [files.tag, PRODUCT_FELIX_IMAGE],
        key: files.key,
      };
      const lines: string[] = [];
      root = (await ensureDaemonRoot(cache, image, (l) => lines.push(l)))!;
      assert.equal(root, daemonRootDir(cache, files.key, await dockerdVersion()));
      assert.deepEqual(readdirSync(root).sort(), ["image", "overlay2"]);
      assert.ok(
        lines.some((l) => /kept a Docker root holding the felix image/.test(l)),
        lines.join("\n"),
      );
      lines.length = 0;
      assert.equal(await ensureDaemonRoot(cache, image, (l) => lines.push(l)), root);
      assert.deepEqual(lines, [], "found, not made again");
      assert.deepEqual(
        readdirSync(cache).filter((f) => f !== path.basename(root) && !f.endsWith(".lock")),
        [],
        "no work folder left",
      );
      const none = { ...image, key: "0".repeat(16), tarball: path.join(cache, "none.tar") };
      assert.equal(await ensureDaemonRoot(cache, none, () => {}), undefined, "no tarball, no root");
    });

    it("seeds a daemon that has the image at once, under both tags; its changes stay its own", async () => {
      assert.ok(root, "no root");
      const before = await fileCount(root);
      const a = await seededDaemon("a");
      try {
        for (const tag of [files.tag, PRODUCT_FELIX_IMAGE]) {
          const r = await docker(a.host, ["image", "inspect", "-f", "{{.Id}}", tag], {
            okCodes: [1],
          });
          assert.equal(r.code, 0, `${tag} is there`);
        }
        const ctr = `cdroot-${process.pid}`;
        await docker(a.host, ["run", "-d", "--net=none", "--name", ctr, files.tag, "sleep", "60"]);
        await docker(a.host, [
          "exec",
          ctr,
          "sh",
          "-c",
          "echo x >> /usr/lib/python2.7/os.py && rm /usr/bin/pydoc2.7 && touch /usr/bin/new-file",
        ]);
        await docker(a.host, ["rm", "-f", ctr]);
        await docker(a.host, ["rmi", files.tag, PRODUCT_FELIX_IMAGE]);
      } finally {
        await a.stop();
      }
      assert.equal(await fileCount(root), before, "the cached root is as it was");
      const b = await seededDaemon("b");
      try {
        const r = await docker(b.host, [
          "run",
          "--rm",
          "--net=none",
          PRODUCT_FELIX_IMAGE,
          "sh",
          "-c",
          "test -e /usr/bin/pydoc2.7 && test ! -e /usr/bin/new-file && tail -c 20 /usr/lib/python2.7/os.py",
        ]);
        assert.doesNotMatch(r.stdout, /^x$/m, "the first daemon's write is not in the image");
      } finally {
        await b.stop();
      }
      assert.equal(existsSync(new StateDir(work, "b").dockerDataRoot), false, "its root removed");
    });

    it("seeds nothing into a data root that exists", async () => {
      const dir = path.join(work, "exists");
      await run("mkdir", ["-p", dir]);
      assert.equal(await seedDaemonRoot(root, dir), false);
      assert.deepEqual(readdirSync(dir), []);
    });
  },
);
