/**
 * `plugin-data`, on the controller: the plugin's data directory holds exactly the files the
 * stack renders (same names, same SHA-256): none missing, none stale, none extra.
 */
import { createHash } from "node:crypto";
import { renderPluginData } from "../../components/render/index.js";
import { parseHashes } from "../parse.js";
import type { Finding, JudgeInput, Verdict } from "./judge.js";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

export function judgePluginData({ t, h, facts }: JudgeInput): Verdict | undefined {
  if (!h.isController) return undefined;
  const d = facts.section("data");
  if (d.rc !== 0 && d.out.includes("No such file")) {
    return {
      detail: t.dataDir,
      problems: [{ subject: t.dataDir, expected: "the plugin's data directory", found: "missing" }],
    };
  }
  const found = parseHashes(d.out);
  const expected = renderPluginData(t.model, t.endpointIds);
  const problems: Finding[] = [];
  for (const f of expected) {
    const hash = found.get(f.name);
    if (hash === undefined)
      problems.push({ subject: f.name, expected: "present", found: "missing" });
    else if (hash !== sha256(f.content)) {
      problems.push({
        subject: f.name,
        expected: "as rendered from the stack",
        found: "different (stale)",
      });
    }
  }
  const names = new Set(expected.map((f) => f.name));
  for (const name of [...found.keys()].filter((n) => !names.has(n)).sort()) {
    problems.push({ subject: name, expected: "no such file (not in the stack)", found: "present" });
  }
  return {
    detail: `${found.size} file(s), ${expected.length} expected in ${t.dataDir}`,
    problems,
  };
}
