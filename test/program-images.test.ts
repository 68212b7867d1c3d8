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
  imageBuildScript,
  parseDockerignore,
  type ImageKind,
} from "../components/host.js";

const scratch = mkdtempSync(join(tmpdir(), "calico-images-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function tarList(tar: Buffer): string[] {
  const res = spawnSync("tar", ["-tvf", "-"], { input: tar, encoding: "utf8" });
  assert.equal(res.status, 0, res.stderr);
  return res.stdout.trim().split("\n");
}

describe("build contexts", () => {
  for (const kind of ["felix", "bird", "util"] as ImageKind[]) {
    it(`calico:${kind}: every file of images/${kind}/, Dockerfile at the top`, () => {
      const ctx = buildContext(kind);
      assert.equal(ctx.dockerfile, "Dockerfile");
      assert.ok(ctx.files.includes("Dockerfile"));
      const listed = tarList(ctx.tar).map((l) => l.split(/\s+/).pop());
      assert.deepEqual(listed, ctx.files);
    });
  }
  it("keeps run_bird executable and every file root-owned with a fixed time", () => {
    const lines = tarList(buildContext("bird").tar);
    assert.ok(
      lines.some((l) => /^-rwxr-xr-x root\/root .* run_bird$/.test(l)),
      lines.join("\n"),
    );
    assert.ok(lines.every((l) => l.includes(" 1970-01-01 ")));
  });
  it("extracts to the same bytes", () => {
    const ctx = buildContext("felix");
    const dir = join(scratch, "felix");
    mkdirSync(dir);
    const res = spawnSync("tar", ["-xf", "-", "-C", dir], { input: ctx.tar });
    assert.equal(res.status, 0, String(res.stderr));
    for (const f of ctx.files) {
      assert.deepEqual(readFileSync(join(dir, f)), readFileSync(join("images/felix", f)), f);
    }
  });
  it("calico:plugin: the repository root filtered by images/plugin/Dockerfile.dockerignore", () => {
    const ctx = buildContext("plugin");
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
  it("is deterministic: the same files give the same hash", () => {
    assert.equal(buildContext("plugin").hash, buildContext("plugin").hash);
    assert.notEqual(buildContext("bird").hash, buildContext("util").hash);
  });
  it("refuses .dockerignore patterns it does not understand", () => {
    assert.throws(
      () => parseDockerignore("node_modules\n"),
      /unsupported .dockerignore pattern "node_modules"/,
    );
    assert.throws(
      () => parseDockerignore("*\n!src/*.ts\n"),
      /unsupported .dockerignore pattern "!src\/\*\.ts"/,
    );
    assert.equal(parseDockerignore("# c\n*\n!a/b\n**/node_modules\n").length, 3);
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

  it("decodes the context, builds it with -f, and prints the image id last", () => {
    const ctx = buildContext("plugin");
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
  it("fails when the build fails", () => {
    writeFileSync(join(bin, "docker"), "#!/bin/sh\necho 'no space left' >&2\nexit 1\n");
    const res = spawnSync("sh", ["-c", imageBuildScript("calico:util", "Dockerfile")], {
      input: buildContext("util").tar.toString("base64"),
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, LOG: log },
    });
    assert.notEqual(res.status, 0);
    assert.match(res.stderr, /no space left/);
  });
});
