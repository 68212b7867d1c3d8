// No import circle among the modules of components/: a module that a circle runs through
// cannot be read, tested or loaded on its own, and the order in which Node evaluates the
// circle decides which of them sees the other's exports as undefined. Type-only imports
// count too: they tie the modules together for the reader all the same.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";

const ROOT = resolve(import.meta.dirname, "..");
const COMPONENTS = join(ROOT, "components");

/** Every .ts file under `dir`, absolute. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** The static `import … from` / `export … from` / `import "…"` specifiers of a module. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  const from = /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gm;
  const bare = /^\s*import\s*["']([^"']+)["']/gm;
  for (const re of [from, bare]) for (const m of text.matchAll(re)) found.push(m[1]!);
  return found;
}

/** The components/ module a relative specifier names (`./x.js` -> `x.ts`), or undefined. */
function target(file: string, spec: string, known: ReadonlySet<string>): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const base = resolve(dirname(file), spec).replace(/\.js$/, "");
  for (const candidate of [`${base}.ts`, join(base, "index.ts")]) {
    if (known.has(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The import circles a depth-first walk meets, each as the modules it runs through: at least
 * one whenever the graph has any (a walk of a graph with a circle always meets a back edge).
 */
function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found = new Map<string, string[]>();
  const walk = (node: string, path: string[], onPath: Set<string>) => {
    for (const next of graph.get(node) ?? []) {
      if (onPath.has(next)) {
        const circle = path.slice(path.indexOf(next));
        // One key per circle whatever module it was entered from.
        const start = circle.indexOf([...circle].sort()[0]!);
        const turned = [...circle.slice(start), ...circle.slice(0, start)];
        found.set(turned.join(" -> "), turned);
        continue;
      }
      if (done.has(next)) continue;
      onPath.add(next);
      walk(next, [...path, next], onPath);
      onPath.delete(next);
    }
    done.add(node);
  };
  const done = new Set<string>();
  for (const node of graph.keys()) {
    if (!done.has(node)) walk(node, [node], new Set([node]));
  }
  return [...found.values()];
}

describe("the imports of components/", () => {
  it("finds a circle when there is one (the check itself can fail)", () => {
    const graph = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a", "d"]],
      ["d", []],
      ["e", ["e"]],
    ]);
    assert.deepEqual(circles(graph), [["a", "b", "c"], ["e"]]);
    assert.deepEqual(
      specifiers(
        'import type { A } from "./a.js";\nimport {\n  b,\n} from "./b.js";\nexport * from "./c.js";\nimport "./d.js";',
      ),
      ["./a.js", "./b.js", "./c.js", "./d.js"],
    );
  });

  it("form no circle", () => {
    const files = sources(COMPONENTS);
    const known = new Set(files);
    const graph = new Map(
      files.map((f) => [
        f,
        specifiers(readFileSync(f, "utf8"))
          .map((s) => target(f, s, known))
          .filter((t): t is string => t !== undefined),
      ]),
    );
    assert.ok(graph.size > 20, `read ${graph.size} modules`);
    const found = circles(graph).map((c) =>
      [...c, c[0]!].map((f) => relative(ROOT, f)).join(" -> "),
    );
    assert.deepEqual(found, [], `import circles:\n${found.join("\n")}`);
  });
});
