// The README and docs/ stay honest where a machine can tell: every relative link resolves
// (file, and heading anchor when one is given), every `npm run <script>` they show exists in
// package.json, every stack they name with `--stack` has its Pulumi.<stack>.yaml, and every
// repository path they put in backquotes exists.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function docFiles(): string[] {
  const docs = readdirSync(path.join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => path.join("docs", f));
  return ["README.md", ...docs.sort()];
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The text outside fenced code blocks, and the text inside them, separately. */
function split(markdown: string): { prose: string; code: string } {
  const prose: string[] = [];
  const code: string[] = [];
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) {
      fenced = !fenced;
      continue;
    }
    (fenced ? code : prose).push(line);
  }
  return { prose: prose.join("\n"), code: code.join("\n") };
}

function anchors(file: string): Set<string> {
  const { prose } = split(readFileSync(path.join(ROOT, file), "utf8"));
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const base = anchorOf(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function scriptsOf(pkg: string): string[] {
  const json = JSON.parse(readFileSync(path.join(ROOT, pkg), "utf8")) as {
    scripts?: Record<string, string>;
  };
  return Object.keys(json.scripts ?? {});
}
const scripts = scriptsOf("package.json");
const pluginScripts = scriptsOf("plugin/package.json");

describe("docs", () => {
  it("the README links every file in docs/", () => {
    const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
    for (const f of docFiles().slice(1)) {
      assert.ok(readme.includes(`](${f})`), `README.md does not link ${f}`);
    }
  });

  for (const file of docFiles()) {
    describe(file, () => {
      const text = readFileSync(path.join(ROOT, file), "utf8");
      const { prose, code } = split(text);

      it("every relative link resolves, anchors included", () => {
        const links = [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
        for (const link of links) {
          if (/^[a-z]+:/.test(link)) continue; // http(s), mailto
          const [target, anchor] = link.split("#") as [string, string | undefined];
          const resolved = target === "" ? file : path.join(path.dirname(file), target);
          assert.ok(
            existsSync(path.join(ROOT, resolved)),
            `${file}: link ${link} → ${resolved} does not exist`,
          );
          if (anchor !== undefined && resolved.endsWith(".md")) {
            assert.ok(
              anchors(resolved).has(anchor),
              `${file}: link ${link}: no heading #${anchor} in ${resolved}`,
            );
          }
        }
      });

      it("every `npm run` script it shows exists", () => {
        const all = prose + "\n" + code;
        // `npm run build -w plugin` is the plugin workspace's script.
        for (const m of all.matchAll(/npm run ([a-z][\w:-]*) -w plugin/g)) {
          assert.ok(
            pluginScripts.includes(m[1]!),
            `${file}: names plugin script "${m[1]}", which plugin/package.json lacks`,
          );
        }
        const rootOnly = all.replace(/npm run [a-z][\w:-]* -w plugin/g, "");
        const named = [...rootOnly.matchAll(/npm run ([a-z][\w:-]*)/g)].map((m) => m[1]!);
        // `bench:render`, `bench:lab` written without `npm run` in tables of scripts.
        const bare = [...prose.matchAll(/`(bench:[a-z]+)`/g)].map((m) => m[1]!);
        for (const s of [...named, ...bare]) {
          assert.ok(
            scripts.includes(s),
            `${file}: names npm script "${s}", which package.json does not have`,
          );
        }
      });

      it("every stack it names with --stack has a stack file", () => {
        for (const m of (prose + "\n" + code).matchAll(
          /--stack ([a-z][a-z0-9-]*)(?![^\n]*--dir)/g,
        )) {
          const stack = m[1]!;
          assert.ok(
            existsSync(path.join(ROOT, `Pulumi.${stack}.yaml`)),
            `${file}: --stack ${stack} has no Pulumi.${stack}.yaml`,
          );
        }
      });

      it("every repository path it names in backquotes exists", () => {
        const candidates = [
          ...prose.matchAll(
            /`((?:components|lab|plugin|images|policy|scripts|bench|test|docs|\.ci|\.github)\/[\w./-]*)`/g,
          ),
        ].map((m) => m[1]!);
        for (const p of candidates) {
          if (/[*<>]/.test(p)) continue; // a pattern, not a path
          assert.ok(
            existsSync(path.join(ROOT, p)),
            `${file}: names \`${p}\`, which does not exist`,
          );
        }
      });
    });
  }
});
