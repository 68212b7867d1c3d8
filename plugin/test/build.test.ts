/**
 * `npm run build -w plugin` compiles exactly the sources the other tests exercise, the
 * compiled CLI serves a Felix, and the image's Dockerfile builds and runs those paths.
 * Ports 24100-24199.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { oneEndpointProcessRig } from "./fixture.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const SRC = join(ROOT, "plugin/src");
const DIST = join(ROOT, "plugin/dist");
const run = promisify(execFile);

test("npm run build -w plugin compiles every source under test into plugin/dist", async () => {
  const started = Date.now();
  await run("npm", ["run", "build", "-w", "plugin"], { cwd: ROOT });
  const sources = (await readdir(SRC)).filter((f) => f.endsWith(".ts")).sort();
  assert.ok(sources.includes("cli.ts") && sources.includes("endpoint.ts"));
  const emitted = (await readdir(DIST)).filter((f) => f.endsWith(".js")).sort();
  assert.deepEqual(
    emitted,
    sources.map((f) => f.replace(/\.ts$/, ".js")),
    "one module per source, nothing else",
  );
  for (const f of emitted) {
    const st = await stat(join(DIST, f));
    assert.ok(st.mtimeMs >= started - 2000, `${f} was written by this build`);
    const map = JSON.parse(await readFile(join(DIST, `${f}.map`), "utf8")) as { sources: string[] };
    assert.deepEqual(
      map.sources.map((s) => resolve(DIST, s)),
      [join(SRC, f.replace(/\.js$/, ".ts"))],
      `${f} comes from plugin/src`,
    );
  }
  // The tests import ../src/*.js: the very files compiled above.
  const testFiles = (await readdir(join(ROOT, "plugin/test"))).filter((f) => f.endsWith(".ts"));
  const imported = new Set<string>();
  for (const f of testFiles) {
    const text = await readFile(join(ROOT, "plugin/test", f), "utf8");
    for (const m of text.matchAll(/from "\.\.\/src\/([a-z]+)\.js"/g)) imported.add(`${m[1]}.ts`);
  }
  for (const f of imported) assert.ok(sources.includes(f), `${f} is compiled`);
  const cli = await readFile(join(DIST, "cli.js"), "utf8");
  assert.ok(cli.startsWith("#!/usr/bin/env node"));
});

test("the compiled CLI (the image's entrypoint) serves a Felix and exits 0 on SIGTERM", async (t) => {
  await stat(join(DIST, "cli.js")); // built by the previous test
  const {
    data,
    logs,
    endpoint: e,
    felix,
  } = await oneEndpointProcessRig(t, "dist", {
    plugin: 24101,
    felix: 24102,
  });
  const child = spawn(
    process.execPath,
    [
      join(DIST, "cli.js"),
      "endpoint",
      "--data-dir",
      data,
      "--log-dir",
      logs,
      "--bind",
      "127.0.0.1",
      "--endpoint-port",
      "24101",
      "--felix-port",
      "24102",
    ],
    { stdio: "ignore" },
  );
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const c = await felix.received.waitFor((m) => m["endpoint_id"] === e.id, { timeoutMs: 10_000 });
  assert.equal(c.value["type"], "ENDPOINTCREATED");
  assert.deepEqual(await felix.heartbeat(), { type: "HEARTBEAT", rc: "SUCCESS", message: "" });
  child.kill("SIGTERM");
  assert.equal(await exited, 0);
  assert.deepEqual(felix.violations, []);
});

test("the Dockerfile builds from the repository root and runs plugin/dist/cli.js", async () => {
  const dockerfile = await readFile(join(ROOT, "images/plugin/Dockerfile"), "utf8");
  const lines = dockerfile.split("\n");
  assert.match(dockerfile, /^FROM node:26-trixie-slim AS build$/m);
  assert.equal(lines.filter((l) => l.startsWith("FROM node:26-trixie-slim")).length, 2);
  // It copies the workspace files (context = root) and the sources the tests ran.
  for (const copied of [
    "COPY package.json package-lock.json tsconfig.json ./",
    "COPY plugin/package.json plugin/",
    "COPY plugin/tsconfig.build.json plugin/",
    "COPY plugin/src plugin/src",
  ]) {
    assert.ok(lines.includes(copied), `Dockerfile has: ${copied}`);
  }
  assert.match(
    dockerfile,
    /npm ci --workspace plugin --include-workspace-root=false --ignore-scripts/,
  );
  // It compiles with the same tsconfig as `npm run build -w plugin`.
  const pkg = JSON.parse(await readFile(join(ROOT, "plugin/package.json"), "utf8")) as {
    scripts: Record<string, string>;
    bin: Record<string, string>;
  };
  assert.equal(pkg.scripts["build"], "tsc -p tsconfig.build.json");
  assert.match(dockerfile, /tsc -p plugin\/tsconfig\.build\.json/);
  const tsconfig = JSON.parse(await readFile(join(ROOT, "plugin/tsconfig.build.json"), "utf8")) as {
    compilerOptions: { outDir: string; rootDir: string };
  };
  assert.equal(tsconfig.compilerOptions.rootDir, "src");
  assert.equal(tsconfig.compilerOptions.outDir, "dist");
  assert.match(dockerfile, /^COPY --from=build \/app\/plugin\/dist plugin\/dist$/m);
  assert.equal(pkg.bin["plugin"], "dist/cli.js");
  assert.match(
    dockerfile,
    /^ENTRYPOINT \["node", "--disable-sigusr1", "\/app\/plugin\/dist\/cli\.js"\]$/m,
  );
  // The typescript pinned in the image is the one the tests compiled with.
  const ts = JSON.parse(
    await readFile(join(ROOT, "node_modules/typescript/package.json"), "utf8"),
  ) as {
    version: string;
  };
  assert.ok(dockerfile.includes(`typescript@${ts.version}`), `typescript@${ts.version} pinned`);

  const ignore = (await readFile(join(ROOT, "images/plugin/Dockerfile.dockerignore"), "utf8"))
    .split("\n")
    .map((l) => l.trim());
  for (const excluded of ["**/node_modules", "out", ".git", "**/dist"]) {
    assert.ok(ignore.includes(excluded), `context excludes ${excluded}`);
  }
  for (const kept of [
    "!package.json",
    "!package-lock.json",
    "!plugin/src",
    "!plugin/package.json",
  ]) {
    assert.ok(ignore.includes(kept), `context keeps ${kept}`);
  }
});
