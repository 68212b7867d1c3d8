/**
 * `routes`: a route for every remote endpoint. With BGP, a /32 learnt by BIRD; without, a
 * usable route through the gateway, and (where there is one, the lab) the fabric's route to
 * the endpoint's host.
 */
import type { EndpointModel } from "../../components/model.js";
import { describeRoute, isHostRoute, longestMatch, usable } from "../routes.js";
import type { KernelRoute } from "../types.js";
import type { Finding, JudgeInput, Verdict } from "./judge.js";

interface Judged {
  line: string;
  problem?: Omit<Finding, "subject">;
}

function viaBgp(table: KernelRoute[], e: EndpointModel): Judged {
  const r = table.find((x) => isHostRoute(x, e.ip));
  const line = `${e.ip}: ${r ? describeRoute(r) : "none"}`;
  if (r !== undefined && r.protocol === "bird" && usable(r)) return { line };
  const found = r ? describeRoute(r) : "no route";
  return { line, problem: { expected: `a BGP route (proto bird) via ${e.host}`, found } };
}

function viaGateway(
  table: KernelRoute[],
  fabric: KernelRoute[] | undefined,
  e: EndpointModel,
  hostAddr: string | undefined,
): Judged {
  const local = longestMatch(table, e.ip);
  const far = fabric === undefined ? undefined : longestMatch(fabric, e.ip);
  const line =
    `${e.ip}: ${local ? describeRoute(local) : "none"}` +
    (fabric ? `, fabric ${far ? describeRoute(far) : "none"}` : "");
  if (!(usable(local) && local.gateway !== undefined)) {
    const found = local ? describeRoute(local) : "no route";
    return { line, problem: { expected: "a route via the gateway", found } };
  }
  if (fabric !== undefined && far?.gateway !== hostAddr) {
    const found = far ? `fabric: ${describeRoute(far)}` : "no fabric route";
    return { line, problem: { expected: `a fabric route via ${e.host} (${hostAddr})`, found } };
  }
  return { line };
}

export function judgeRoutes({ t, h, facts, fabric }: JudgeInput): Verdict {
  const model = t.model;
  if (!facts.routes.ok) {
    return {
      detail: "cannot read the routes",
      problems: [
        {
          subject: "the routes reply",
          expected: "a list of IPv4 routes (ip -j -4 route)",
          found: facts.routes.why,
        },
      ],
      routes: [],
    };
  }
  const table = facts.routes.value;
  const hostAddr = new Map(model.hosts.map((x) => [x.name, x.internalAddress]));
  const remote = model.endpoints.filter((e) => e.host !== h.name);
  const problems: Finding[] = [];
  const routes: string[] = [];
  for (const e of remote) {
    const j = model.config.bgp.enabled
      ? viaBgp(table, e)
      : viaGateway(table, fabric, e, hostAddr.get(e.host));
    routes.push(j.line);
    if (j.problem) problems.push({ subject: `${e.name} (${e.ip})`, ...j.problem });
  }
  const how = model.config.bgp.enabled ? " (BGP)" : fabric ? " (fabric)" : " (via the gateway)";
  return {
    detail: `${remote.length - problems.length}/${remote.length} remote endpoint routes${how}`,
    problems,
    routes,
  };
}
