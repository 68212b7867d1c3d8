/**
 * Judging a host: its reply's sections parsed once into facts, then one small judge per check,
 * in the order of the report's lines. Each judge is a pure function (status/judges/).
 */
import type { HostModel } from "../components/model.js";
import { readFacts } from "./facts.js";
import type { Sections } from "./gather.js";
import { judgeAgent } from "./judges/agent.js";
import { judgeBgp } from "./judges/bgp.js";
import { judgeContainers } from "./judges/containers.js";
import { judgeEndpoints } from "./judges/endpoints.js";
import { judgeFelix } from "./judges/felix.js";
import type { Judge } from "./judges/judge.js";
import { judgePluginData } from "./judges/plugin-data.js";
import { judgeRoutes } from "./judges/routes.js";
import { judgeSnat } from "./judges/snat.js";
import type {
  BgpSession,
  CheckName,
  CheckResult,
  ContainerInfo,
  KernelRoute,
  Problem,
  StatusTarget,
} from "./types.js";

/** Every check after `reach`, with its judge, in the report's order. */
export const JUDGES: ReadonlyArray<readonly [Exclude<CheckName, "reach">, Judge]> = [
  ["containers", judgeContainers],
  ["agent", judgeAgent],
  ["bgp", judgeBgp],
  ["routes", judgeRoutes],
  ["endpoints", judgeEndpoints],
  ["felix", judgeFelix],
  ["snat", judgeSnat],
  ["plugin-data", judgePluginData],
];

export interface Judged {
  checks: CheckResult[];
  problems: Problem[];
  containers: ContainerInfo[];
  bgp?: { running: boolean; sessions: BgpSession[] };
  routes: string[];
}

/** Judge one host's gathered sections against the model. */
export function judgeHost(
  t: StatusTarget,
  h: HostModel,
  sections: Sections,
  fabric: KernelRoute[] | undefined,
): Judged {
  const facts = readFacts(sections);
  const checks: CheckResult[] = [{ check: "reach", status: "ok", detail: "reachable" }];
  const problems: Problem[] = [];
  let bgp: Judged["bgp"];
  let routes: string[] = [];
  for (const [check, judge] of JUDGES) {
    const v = judge({ t, h, facts, fabric });
    if (v === undefined) continue;
    const status = v.status ?? (v.problems.length > 0 ? "problem" : "ok");
    checks.push({ check, status, detail: v.detail });
    problems.push(...v.problems.map((f) => ({ host: h.name, check, ...f })));
    bgp = v.bgp ?? bgp;
    routes = v.routes ?? routes;
  }
  const containers = facts.containers?.ok ? facts.containers.value : [];
  return { checks, problems, containers, ...(bgp ? { bgp } : {}), routes };
}
