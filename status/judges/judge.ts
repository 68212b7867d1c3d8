/**
 * A judge: one check's verdict on one host, a pure function of the target, the host and its
 * gathered facts. `judgeHost` runs them in the order of the report's lines.
 */
import type { HostModel } from "../../components/model.js";
import type { HostFacts } from "../facts.js";
import type { BgpSession, CheckResult, KernelRoute, StatusTarget } from "../types.js";

/** A problem as a judge finds it (the host and the check are the caller's). */
export interface Finding {
  subject: string;
  expected: string;
  found: string;
}

export interface Verdict {
  /** Given for `n/a` (or a plain `ok`); otherwise `problem` when anything was found. */
  status?: Exclude<CheckResult["status"], "problem">;
  /** The report's line: counts, or why not applicable. */
  detail: string;
  problems: Finding[];
  /** The bgp judge's facts, for JSON readers and the lab's report. */
  bgp?: { running: boolean; sessions: BgpSession[] };
  /** The routes judge's facts: `<ip>: <route>` per remote endpoint. */
  routes?: string[];
}

export interface JudgeInput {
  t: StatusTarget;
  h: HostModel;
  facts: HostFacts;
  /** The fabric's routes, when the target has a fabric (the lab without BGP). */
  fabric: KernelRoute[] | undefined;
}

/** No verdict: the check has no line on this host (plugin data off the controller). */
export type Judge = (i: JudgeInput) => Verdict | undefined;

export const notApplicable = (detail: string): Verdict => ({ status: "n/a", detail, problems: [] });
