// The image builds the program sends to each host: the build context (a deterministic tar,
// read back with the real `tar`) and the build script, run by a real shell against a stand-in
// `docker` that records what it was asked to do (no Docker daemon or registry needed).
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildContext,
  contextFiles,
  IMAGE_BUILDS,
  type ImageKind,
} from "../components/build-context.js";
import { imageBuildScript } from "../components/render/index.js";

const scratch = mkdtempSync(join(tmpdir(), "calico-images-"));
/** SHA-256 of the tar of the fixture in "the build context hash" below. */
const PINNED_PLUGIN_FIXTURE_HASH =
  "99bef332ba8720d51552aa97a8c7af0b6e206c229b4b0d596cb92330632eab14";
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Files with their text under a new folder of the scratch directory; returns the folder. */
function writeTree(name: string, files: Record<string, string>): string {
  const root = join(scratch, name);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(root, f, ".."), { recursive: true });
    writeFileSync(join(root, f), text);
  }
  return root;
}

function tarList(tar: Buffer): string[] {
  const res = spawnSync("tar", ["-tvf", "-"], { input: tar, encoding: "utf8" });
  assert.equal(res.status, 0, res.stderr);
  return res.stdout.trim().split("\n");
}

describe("build contexts", () => {
  for (const kind of ["felix", "bird", "util"] as ImageKind[]) {
    it(`calico:${kind}: every file of images/${kind}/, Dockerfile at the top`, async () => {
      const ctx = await buildContext(kind);
      assert.equal(ctx.dockerfile, "Dockerfile");
      assert.ok(ctx.files.includes("Dockerfile"));
      const listed = tarList(ctx.tar).map((l) => l.split(/\s+/).pop());
      assert.deepEqual(listed, ctx.files);
    });
  }
  it("keeps run_bird executable and every file root-owned with a fixed time", async () => {
    const lines = tarList((await buildContext("bird")).tar);
    assert.ok(
      lines.some((l) => /^-rwxr-xr-x root\/root .* run_bird$/.test(l)),
      lines.join("\n"),
    );
    assert.ok(lines.every((l) => l.includes(" 1970-01-01 ")));
  });
  it("extracts to the same bytes", async () => {
    const ctx = await buildContext("felix");
    const dir = join(scratch, "felix");
    mkdirSync(dir);
    const res = spawnSync("tar", ["-xf", "-", "-C", dir], { input: ctx.tar });
    assert.equal(res.status, 0, String(res.stderr));
    for (const f of ctx.files) {
      assert.deepEqual(readFileSync(join(dir, f)), readFileSync(join("images/felix", f)), f);
    }
  });
  it("calico:plugin: the repository root filtered by images/plugin/Dockerfile.dockerignore", async () => {
    const ctx = await buildContext("plugin");
    assert.equal(ctx.dockerfile, "images/plugin/Dockerfile");
    for (const must of [
      "images/plugin/Dockerfile",
      "package.json",
      "package-lock.json",
      "tsconfig.json",
      "plugin/package.json",
      "plugin/tsconfig.build.json",
      "plugin/src/cli.ts",
    ]) {
      assert.ok(ctx.files.includes(must), `context has ${must}`);
    }
    for (const f of ctx.files) {
      assert.doesNotMatch(f, /(^|\/)(node_modules|dist|test|\.git)\//, `${f} must not be sent`);
      assert.ok(
        f === "images/plugin/Dockerfile" || !f.startsWith("images/"),
        `${f} is not the plugin's`,
      );
    }
    assert.ok(ctx.tar.length < 2 * 1024 * 1024, `context is ${ctx.tar.length} bytes`);
  });
  it("is deterministic: the same files give the same hash", async () => {
    assert.equal((await buildContext("plugin")).hash, (await buildContext("plugin")).hash);
    assert.notEqual((await buildContext("bird")).hash, (await buildContext("util")).hash);
  });
  it("follows Docker's .dockerignore rules: globs, exceptions, ** at any depth", () => {
    const all = ["a.md", "b.ts", "src/c.ts", "src/d.md", "src/gen/e.ts", "x/node_modules/m.js"];
    const dir = writeTree("ignore-rules", Object.fromEntries(all.map((f) => [f, f])));
    const rules = "*.md\n!src/d.md\nsrc/gen\n**/node_modules\n";
    assert.deepEqual(contextFiles(dir, rules).sort(), ["b.ts", "src/c.ts", "src/d.md"]);
    assert.deepEqual(contextFiles(dir, "").sort(), all);
  });
});

describe("the build context hash", () => {
  /** A copy of the plugin's context layout (root context, Dockerfile.dockerignore). */
  function fixture(name: string): string {
    return writeTree(name, {
      [IMAGE_BUILDS.plugin.dockerfile]: "FROM scratch\nCOPY . /\n",
      [`${IMAGE_BUILDS.plugin.dockerfile}.dockerignore`]:
        "*\n!package.json\n!plugin/src\n**/node_modules\n",
      "package.json": "{}\n",
      "plugin/src/cli.ts": "export {};\n",
      "plugin/src/node_modules/x.js": "ignored\n",
      "README.md": "ignored\n",
    });
  }

  it("is the same twice, changes with a sent file, not with an ignored one", async () => {
    const root = fixture("hash");
    const first = await buildContext("plugin", root);
    assert.deepEqual(first.files, [
      "images/plugin/Dockerfile",
      "package.json",
      "plugin/src/cli.ts",
    ]);
    assert.equal((await buildContext("plugin", root)).hash, first.hash);
    writeFileSync(join(root, "README.md"), "changed, still ignored\n");
    writeFileSync(join(root, "plugin/src/node_modules/x.js"), "changed, still ignored\n");
    assert.equal((await buildContext("plugin", root)).hash, first.hash);
    writeFileSync(join(root, "plugin/src/cli.ts"), "export const x = 1;\n");
    assert.notEqual((await buildContext("plugin", root)).hash, first.hash);
  });

  it("is what it was for the same files (the tar bytes are pinned)", async () => {
    // Recorded from tar-stream's output for this fixture; a change means every host
    // rebuilds its plugin image at the next `pulumi up`.
    const ctx = await buildContext("plugin", fixture("pinned"));
    assert.equal(ctx.hash, PINNED_PLUGIN_FIXTURE_HASH);
  });
});

describe("the build script, run by sh against a stand-in docker", () => {
  const bin = join(scratch, "bin");
  const log = join(scratch, "log");
  mkdirSync(bin);
  mkdirSync(log);
  writeFileSync(
    join(bin, "docker"),
    [
      "#!/bin/sh",
      'case "$1" in',
      '  build) shift; printf "%s\\n" "$@" > "$LOG/args"; cat > "$LOG/context.tar"; echo "built" ;;',
      '  image) printf "%s\\n" "$@" > "$LOG/inspect"; echo "sha256:0123abcd" ;;',
      "  *) exit 9 ;;",
      "esac",
      "",
    ].join("\n"),
  );
  chmodSync(join(bin, "docker"), 0o755);

  it("decodes the context, builds it with -f, and prints the image id last", async () => {
    const ctx = await buildContext("plugin");
    const res = spawnSync("sh", ["-c", imageBuildScript("calico:plugin", ctx.dockerfile)], {
      input: ctx.tar.toString("base64"),
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, LOG: log },
    });
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stdout.trim().split("\n").pop(), "sha256:0123abcd");
    assert.match(res.stderr, /built/, "build output goes to stderr");
    assert.deepEqual(readFileSync(join(log, "args"), "utf8").trim().split("\n"), [
      "-t",
      "calico:plugin",
      "-f",
      "images/plugin/Dockerfile",
      "-",
    ]);
    assert.deepEqual(readFileSync(join(log, "context.tar")), ctx.tar);
  });
  it("fails when the build fails", async () => {
    const util = await buildContext("util");
    writeFileSync(join(bin, "docker"), "#!/bin/sh\necho 'no space left' >&2\nexit 1\n");
    const res = spawnSync("sh", ["-c", imageBuildScript("calico:util", "Dockerfile")], {
      input: util.tar.toString("base64"),
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, LOG: log },
    });
    assert.notEqual(res.status, 0);
    assert.match(res.stderr, /no space left/);
  });
});
