// status/ depends on nothing of lab/: the lab hands status a target and a transport
// (scripts/status.ts), never the other way round. Every import of every file under status/
// (static, dynamic, re-exports, type-only), as TypeScript's own pre-processor reads them.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Every import specifier of a TypeScript file, resolved against it when relative. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
  return info.importedFiles.map((f) =>
    f.fileName.startsWith(".") ? path.resolve(path.dirname(file), f.fileName) : f.fileName,
  );
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => path.join(dir, f));
}

describe("status/ imports nothing from lab/", () => {
  it("no file under status/ imports a module under lab/", () => {
    const lab = path.join(root, "lab") + path.sep;
    const files = tsFiles(path.join(root, "status"));
    assert.ok(files.includes(path.join(root, "status", "engine.ts")), "the status files are found");
    const arrows = files.flatMap((f) =>
      importsOf(f)
        .filter((i) => i.startsWith(lab))
        .map((i) => `${path.relative(root, f)} -> ${path.relative(root, i)}`),
    );
    assert.deepEqual(arrows, []);
  });

  it("the check sees every kind of import", () => {
    const file = path.join(root, "status", "x.ts");
    const info = ts.preProcessFile(
      [
        'import { a } from "../lab/a.js";',
        'import type { B } from "../lab/b.js";',
        'export * from "../lab/c.js";',
        'const d = await import("../lab/d.js");',
      ].join("\n"),
      true,
      true,
    );
    const seen = info.importedFiles.map((f) => path.resolve(path.dirname(file), f.fileName));
    assert.deepEqual(
      seen.map((s) => path.relative(root, s)),
      ["lab/a.js", "lab/b.js", "lab/c.js", "lab/d.js"],
    );
  });
});
