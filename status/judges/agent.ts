/** `agent`: the host agent runs (its probe exits 0). */
import { firstLine } from "../parse.js";
import { notApplicable, type JudgeInput, type Verdict } from "./judge.js";

export function judgeAgent({ t, facts }: JudgeInput): Verdict {
  if ("none" in t.agent) return notApplicable(t.agent.none);
  const a = facts.section("agent");
  if (a.rc === 0) return { detail: `${t.agent.name} running`, problems: [] };
  return {
    detail: `${t.agent.name} not running`,
    problems: [{ subject: t.agent.name, expected: "running", found: firstLine(a.out) }],
  };
}
