/** `felix`: Felix has programmed every local endpoint (its two chains in the filter table). */
import { firstLine, parseChains } from "../parse.js";
import { notApplicable, type Finding, type JudgeInput, type Verdict } from "./judge.js";

/** Felix 0.10's per-endpoint chains: `felix-to-<suffix>` and `felix-from-<suffix>`. */
export const FELIX_CHAIN_PREFIXES = ["felix-to-", "felix-from-"] as const;

export function judgeFelix({ t, h, facts }: JudgeInput): Verdict {
  if (typeof t.felix === "string") return notApplicable(t.felix);
  if (h.endpoints.length === 0) return { status: "ok", detail: "no local endpoints", problems: [] };
  const detail = `chains for ${h.endpoints.length} local endpoint(s)`;
  const f = facts.section("felix");
  if (f.rc !== 0) {
    const found = firstLine(f.out);
    return {
      detail,
      problems: [{ subject: "felix", expected: "Felix's filter table (iptables-save)", found }],
    };
  }
  const chains = parseChains(f.out);
  const problems: Finding[] = [];
  for (const e of h.endpoints) {
    const suffix = t.endpointIds.get(e.name)!.slice(0, 11);
    const missing = FELIX_CHAIN_PREFIXES.map((p) => p + suffix).filter((c) => !chains.has(c));
    if (missing.length > 0) {
      problems.push({
        subject: e.name,
        expected: `chains ${missing.join(", ")}`,
        found: "missing",
      });
    }
  }
  return { detail, problems };
}
