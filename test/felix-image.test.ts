/**
 * The lab's felix image: the product's recipe (images/felix/Dockerfile) really built in a
 * Docker daemon of this test's own, on the lab's mmdebstrap base, from the source mirror
 * (CALICO_SOURCES; .ci/run sets it), then checked from inside: Python 2.7 imports pyzmq 19.0.2,
 * python-iptables and both agents, the entry points answer, and a real Felix started from the
 * image answers the image's own health check. A second call reuses the image, and a daemon
 * without it loads it from the shared cache instead of building again. Mirror verification and
 * the cache keys are checked without Docker.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  BASE_PACKAGES,
  BASE_STAGES,
  baseImageKey,
  baseImageSpec,
  type BaseStage,
} from "../lab/base-image.js";
import { docker, startDockerd, stopDockerd } from "../lab/docker.js";
import { sleep } from "../lab/exec.js";
import {
  cachedFelixImage,
  ensureFelixImage,
  FelixImageError,
  felixImageKey,
  PRODUCT_FELIX_IMAGE,
  type FelixImage,
} from "../lab/felix-image.js";
import {
  chooseSources,
  FELIX_RECIPE_DIR,
  readSourcesLock,
  verifyMirror,
  type PinnedSource,
} from "../lab/felix-sources.js";
import { REPO_ROOT, StateDir } from "../lab/state.js";
import { LAB_SKIP } from "./helpers/lab.js";

const FELIX_COMMIT = "61f8e598a53dc464fe63bd5cde806ec4594b0231";

/** The source mirror to build from: CALICO_SOURCES, else a shared/sources folder beside the repo. */
function mirrorDir(): string | undefined {
  const env = process.env.CALICO_SOURCES?.trim();
  if (env) return env;
  for (const up of ["..", "../.."]) {
    const dir = path.resolve(REPO_ROOT, up, "shared", "sources");
    if (existsSync(path.join(dir, "SHA256SUMS"))) return dir;
  }
  return undefined;
}

/** Packages of each stage's `for p in ...; do` list in the recipe (installed when missing). */
function recipePackages(): Record<BaseStage, string[]> {
  const text = readFileSync(path.join(FELIX_RECIPE_DIR, "Dockerfile"), "utf8").replace(
    /\\\n/g,
    " ",
  );
  const lists = [...text.matchAll(/for p in ([^;]*);\s*do/g)].map((m) =>
    (m[1] ?? "").split(/\s+/).filter(Boolean),
  );
  assert.equal(lists.length, 2, "one package list per stage");
  return { build: lists[0]!, runtime: lists[1]! };
}

describe("the felix image's sources and cache keys (no Docker)", () => {
  it("each of the lab's bases holds exactly the packages its stage installs, so the build needs no network", () => {
    const wanted = recipePackages();
    assert.ok(wanted.build.includes("gcc") && wanted.runtime.includes("libzmq5"));
    for (const stage of BASE_STAGES) {
      assert.deepEqual([...BASE_PACKAGES[stage]].sort(), [...wanted[stage]].sort(), stage);
    }
  });

  it("takes --sources first, then CALICO_SOURCES, else upstream", () => {
    assert.deepEqual(chooseSources("/a", { CALICO_SOURCES: "/b" }), {
      kind: "mirror",
      dir: "/a",
      from: "--sources",
    });
    assert.deepEqual(chooseSources(undefined, { CALICO_SOURCES: "/b" }), {
      kind: "mirror",
      dir: "/b",
      from: "CALICO_SOURCES",
    });
    assert.deepEqual(chooseSources(undefined, { CALICO_SOURCES: " " }), { kind: "upstream" });
  });

  it("keys the base by its stage, mirror and packages, and the image by its bases and sources", () => {
    const spec = baseImageSpec("runtime", { mirror: "http://deb.debian.org/debian" });
    const other = baseImageSpec("runtime", { mirror: "http://mirror.example/debian" });
    assert.notEqual(baseImageKey(spec), baseImageKey(other));
    assert.notEqual(baseImageKey(spec), baseImageKey({ ...spec, packages: ["python2.7"] }));
    assert.notEqual(
      baseImageKey(spec),
      baseImageKey(baseImageSpec("build", { mirror: spec.mirror })),
    );
    assert.equal(
      baseImageKey(spec),
      baseImageKey(baseImageSpec("runtime", { mirror: spec.mirror })),
    );
    const mirror = chooseSources("/m", {});
    const upstream = chooseSources(undefined, {});
    assert.notEqual(felixImageKey(mirror), felixImageKey(upstream));
    assert.notEqual(
      felixImageKey(mirror, { mirror: spec.mirror }),
      felixImageKey(mirror, { mirror: other.mirror }),
    );
    assert.throws(
      () => baseImageSpec("build", { mirror: "ftp://x; rm -rf /" }),
      /must be an http\(s\) URL/,
    );
  });

  it("refuses a mirror whose files do not match SHA256SUMS or the pins, naming the file, before any Docker call", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "cfimg-mirror-"));
    try {
      writeFileSync(path.join(dir, "demo-1.0.tar.gz"), "demo\n");
      const good = "b4b1ed1b2c2b4ad3bf7ee7b5b3a3b4c8a2bbbc2f23f1d8d98b33d70e9bb6e2a2";
      const pins: PinnedSource[] = [
        {
          name: "demo",
          version: "1.0",
          repo: "https://x/",
          tag: "v1",
          commit: FELIX_COMMIT,
          sha256: good,
        },
      ];
      const choice = { kind: "mirror" as const, dir, from: "--sources" as const };
      assert.throws(() => verifyMirror(choice, pins), /--sources=.*: no SHA256SUMS in it/);
      const actual = "9a7d1a7e0e0b3d2f9dd1b1b1ad40ef7d7fa3d97e0ae64c1e1d1c3e7b5f0cbb8b";
      writeFileSync(path.join(dir, "SHA256SUMS"), `${actual}  demo-1.0.tar.gz\n`);
      assert.throws(
        () => verifyMirror(choice, pins),
        /demo-1\.0\.tar\.gz has SHA-256 [0-9a-f]{64}, but its SHA256SUMS says 9a7d1a7e/,
      );
      writeFileSync(path.join(dir, "SHA256SUMS"), "");
      assert.throws(
        () => verifyMirror(choice, pins),
        /demo-1\.0\.tar\.gz has SHA-256 [0-9a-f]{64}, but images\/felix\/sources\.lock pins b4b1ed1b/,
      );
      assert.throws(
        () => verifyMirror({ ...choice, dir: path.join(dir, "nope") }, pins),
        /no such folder of sources/,
      );
      // Through the lab's entry point, with the real pins: nothing of Docker is touched.
      await assert.rejects(
        ensureFelixImage("unix:///nonexistent/docker.sock", { sources: dir, log: () => {} }),
        (e: unknown) =>
          e instanceof FelixImageError && /felix-0\.10\.2\.tar\.gz is missing/.test(e.message),
      );
      const shared = mirrorDir();
      if (shared !== undefined) {
        const bad = path.join(dir, "bad");
        cpSync(shared, bad, { recursive: true });
        const pyzmq = path.join(bad, "pyzmq-19.0.2.tar.gz");
        writeFileSync(pyzmq, Buffer.concat([readFileSync(pyzmq), Buffer.from("x")]));
        await assert.rejects(
          ensureFelixImage("unix:///nonexistent/docker.sock", { sources: bad, log: () => {} }),
          /pyzmq-19\.0\.2\.tar\.gz has SHA-256 [0-9a-f]{64}, but its SHA256SUMS says d21d0c4a/,
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it(
    "pins the same hashes as the shared mirror's SHA256SUMS",
    { skip: mirrorDir() === undefined && "no source mirror here" },
    () => {
      const dir = mirrorDir()!;
      const files = verifyMirror(
        { kind: "mirror", dir, from: "CALICO_SOURCES" },
        readSourcesLock(),
      );
      assert.equal(files.length, 4);
    },
  );
});

describe("the felix image built in a Docker daemon of its own", { skip: LAB_SKIP }, () => {
  const PREFIX = "cfimgt";
  const root = mkdtempSync(path.join(tmpdir(), "cfimg-"));
  const state = new StateDir(root, "felix-image");
  let host = "";
  let first: FelixImage | undefined;
  const lines: string[] = [];
  const log = (l: string): void => {
    lines.push(l);
    process.stderr.write(`${l}\n`);
  };
  const sources = mirrorDir();

  before(async () => {
    host = (await startDockerd(state, PREFIX)).host;
  });
  after(async () => {
    await docker(host, ["rm", "-f", "cfimgt-felix"], { okCodes: [1] }).catch(() => {});
    await stopDockerd(state, PREFIX);
    await rm(root, { recursive: true, force: true });
  });

  it("builds images/felix/Dockerfile on the lab's base (or loads it from the shared cache)", async () => {
    first = await ensureFelixImage(host, { ...(sources ? { sources } : {}), log });
    process.stderr.write(`felix image: ${first.how} in ${(first.ms / 1000).toFixed(1)} s\n`);
    assert.match(first.tag, /^calico-lab\/felix:[0-9a-f]{16}$/);
    assert.notEqual(first.how, "present", "a new daemon cannot already have it");
    assert.equal(first.sources, sources ? "mirror" : "upstream");
    if (first.how === "built") assert.ok(lines.some((l) => /^building Felix 0\.10\.2/.test(l)));
    const ids = await Promise.all(
      [first.tag, PRODUCT_FELIX_IMAGE].map(async (t) =>
        (await docker(host, ["image", "inspect", "-f", "{{.Id}}", t])).stdout.trim(),
      ),
    );
    assert.equal(ids[0], ids[1], `${PRODUCT_FELIX_IMAGE} is the same image`);
  });

  it("carries Python 2.7 with pyzmq 19.0.2, python-iptables and both agents, and their entry points", async () => {
    assert.ok(first, "no image");
    const py =
      "import zmq, iptc, calico.felix.felix, calico.acl_manager.acl_manager; " +
      'print("%s %s %s" % (zmq.__version__, zmq.zmq_version(), iptc.Table(iptc.Table.FILTER).name))';
    const script = [
      `python2.7 -c '${py}'`,
      "cat /usr/local/share/calico/felix.commit",
      "iptables --version",
      "echo XTABLES_LIBDIR=$XTABLES_LIBDIR; ls $XTABLES_LIBDIR/libxt_conntrack.so",
      "calico-felix --help 2>/dev/null | head -1",
      "calico-acl-manager --help | head -1",
      "head -1 /usr/local/bin/calico-felix /usr/local/bin/calico-acl-manager",
      // Built on the runtime stage's own base: what a production build carries, no more.
      "for t in gcc cc git; do command -v $t > /dev/null && echo has $t; done; true",
      "ls /usr/include/zmq.h /usr/include/python2.7 2>/dev/null; true",
    ].join(" && ");
    // NET_ADMIN in the container's own network namespace: Felix's module asks the kernel at import.
    const r = await docker(host, [
      "run",
      "--rm",
      "--network",
      "none",
      "--cap-add",
      "NET_ADMIN",
      first.tag,
      "sh",
      "-c",
      script,
    ]);
    const out = r.stdout;
    assert.match(out, /^19\.0\.2 4\.3\.\d+ filter$/m);
    assert.match(out, new RegExp(`^${FELIX_COMMIT}$`, "m"));
    assert.match(out, /^iptables v1\.8\.\d+ \(legacy\)$/m);
    assert.match(out, /^XTABLES_LIBDIR=\/usr\/lib\/xtables$/m);
    assert.match(out, /^usage: calico-felix \[-h\] \[-c CONFIG_FILE\]$/m);
    assert.match(out, /^usage: calico-acl-manager \[-h\] \[-c CONFIG_FILE\]$/m);
    assert.equal(out.match(/^#!\/usr\/bin\/python2\.7$/gm)?.length, 2, out);
    assert.doesNotMatch(out, /^has |^\/usr\/include/m, "build tools in the runtime image");
  });

  it("runs a real Felix that answers the image's health check", async () => {
    assert.ok(first, "no image");
    const dir = mkdtempSync(path.join(tmpdir(), "cfimg-cfg-"));
    try {
      const cfg = path.join(dir, "felix.cfg");
      writeFileSync(
        cfg,
        "[global]\nPluginAddress = 127.0.0.1\nACLAddress = 127.0.0.1\nFelixHostname = smoke\n" +
          "LocalAddress = 127.0.0.1\nMetadataAddr = None\n[log]\nLogFilePath = None\n" +
          "LogSeverityFile = NONE\nLogSeveritySys = NONE\nLogSeverityScreen = INFO\n[connection]\n",
      );
      const hc = await docker(host, [
        "image",
        "inspect",
        "-f",
        "{{json .Config.Healthcheck.Test}}",
        first.tag,
      ]);
      assert.deepEqual(JSON.parse(hc.stdout), ["CMD", "calico-health"]);
      await docker(host, [
        "run",
        "-d",
        "--name",
        "cfimgt-felix",
        "--network",
        "none",
        "--cap-add",
        "NET_ADMIN",
        "-v",
        `${cfg}:/etc/calico/felix.cfg:ro`,
        first.tag,
      ]);
      let last = "";
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const r = await docker(host, ["exec", "cfimgt-felix", "calico-health"], { okCodes: [1] });
        last = r.stdout.trim();
        if (r.code === 0) break;
        await sleep(500);
      }
      assert.equal(last, "healthy: Felix at 127.0.0.1:9902 answered HEARTBEAT");
      const logs = await docker(host, ["logs", "cfimgt-felix"]);
      assert.match(logs.stderr + logs.stdout, /Sent RESYNCSTATE/);
      // Felix as pid 1 ignores SIGTERM: the image's stop signal ends it without waiting
      // out the stop timeout (30 s here; the host agent's restart gives it 10 s).
      const t0 = performance.now();
      await docker(host, ["stop", "-t", "30", "cfimgt-felix"]);
      const stopMs = performance.now() - t0;
      assert.ok(stopMs < 10_000, `docker stop took ${Math.round(stopMs)} ms`);
      const exit = await docker(host, ["inspect", "-f", "{{.State.ExitCode}}", "cfimgt-felix"]);
      assert.equal(exit.stdout.trim(), "137", "killed by the stop signal");
    } finally {
      await docker(host, ["rm", "-f", "cfimgt-felix"], { okCodes: [1] });
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reuses it: present in the daemon at once, and a daemon without it loads the cached image without building", async () => {
    assert.ok(first, "no image");
    const again = await ensureFelixImage(host, { ...(sources ? { sources } : {}), log });
    process.stderr.write(`felix image: ${again.how} in ${again.ms.toFixed(0)} ms\n`);
    assert.equal(again.how, "present");
    assert.equal(again.tag, first.tag);
    assert.ok(again.ms < 5000, `took ${again.ms} ms`);
    await docker(host, ["rmi", "-f", first.tag, PRODUCT_FELIX_IMAGE]);
    lines.length = 0;
    const loaded = await ensureFelixImage(host, { ...(sources ? { sources } : {}), log });
    process.stderr.write(`felix image: ${loaded.how} in ${(loaded.ms / 1000).toFixed(1)} s\n`);
    assert.equal(loaded.how, "loaded");
    assert.equal(loaded.tag, first.tag);
    assert.ok(
      !lines.some((l) => /building Felix|docker build|mmdebstrap/.test(l)),
      lines.join("\n"),
    );
    assert.ok(loaded.ms < 120_000, `loading took ${loaded.ms} ms`);
  });

  it("is found in the cache with no daemon (`lab image`); an empty cache has none", async () => {
    assert.ok(first, "no image");
    const found = await cachedFelixImage({ ...(sources ? { sources } : {}), log });
    assert.equal(found?.how, "cached");
    assert.equal(found?.tag, first.tag);
    const empty = mkdtempSync(path.join(tmpdir(), "cfimg-empty-"));
    try {
      const none = await cachedFelixImage({ ...(sources ? { sources } : {}), cacheDir: empty });
      assert.equal(none, undefined);
      assert.deepEqual(readdirSync(empty), [], "no lock or file left behind");
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
