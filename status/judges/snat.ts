/** `snat`: the MASQUERADE rule from the endpoint pool to outside it, and POSTROUTING's jump. */
import { SNAT_CHAIN } from "../../components/render/index.js";
import { MARK } from "../gather.js";
import { firstLine } from "../parse.js";
import type { Finding, JudgeInput, Verdict } from "./judge.js";

export function judgeSnat({ t, facts }: JudgeInput): Verdict {
  const snat = facts.section("snat");
  const pool = t.model.config.endpointPool;
  const [chainPart = "", postPart = ""] = snat.out.split(`${MARK}postrouting`);
  const rule = chainPart
    .split("\n")
    .find(
      (l) =>
        l.startsWith(`-A ${SNAT_CHAIN} `) &&
        l.includes(`-s ${pool}`) &&
        l.includes(`! -d ${pool}`) &&
        l.includes("-j MASQUERADE"),
    );
  const problems: Finding[] = [];
  if (rule === undefined) {
    problems.push({
      subject: SNAT_CHAIN,
      expected: `MASQUERADE from ${pool} to outside it`,
      found: snat.rc === 0 ? "no such rule" : firstLine(snat.out),
    });
  } else if (!postPart.split("\n").some((l) => l.trim() === `-A POSTROUTING -j ${SNAT_CHAIN}`)) {
    problems.push({ subject: "POSTROUTING", expected: `a jump to ${SNAT_CHAIN}`, found: "none" });
  }
  return { detail: `nat ${SNAT_CHAIN}`, problems };
}
