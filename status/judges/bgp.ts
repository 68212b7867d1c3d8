/** `bgp`: BIRD answers on its control socket and every session of the host is Established. */
import { firstLine } from "../parse.js";
import { notApplicable, type Finding, type JudgeInput, type Verdict } from "./judge.js";

export function judgeBgp({ t, h, facts }: JudgeInput): Verdict {
  if (!t.model.config.bgp.enabled) return notApplicable("BGP is off in this stack");
  const sessions = facts.bird;
  if (sessions === undefined) {
    return {
      detail: "BIRD down",
      problems: [
        {
          subject: "bird",
          expected: "BIRD answering on its control socket",
          found: firstLine(facts.section("bird").out),
        },
      ],
      bgp: { running: false, sessions: [] },
    };
  }
  const problems: Finding[] = [];
  for (const p of h.peers) {
    const s = sessions.find((x) => x.name === p.protocol);
    const subject = `session ${p.host}`;
    if (s === undefined)
      problems.push({ subject, expected: "Established", found: "no such session" });
    else if (!s.info.startsWith("Established")) {
      problems.push({ subject, expected: "Established", found: `${s.state} ${s.info}`.trim() });
    }
  }
  const est = sessions.filter((s) => s.info.startsWith("Established")).length;
  return {
    detail: `${est}/${h.peers.length} sessions Established`,
    problems,
    bgp: { running: true, sessions },
  };
}
