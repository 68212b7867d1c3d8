/**
 * `endpoints`: every local endpoint wired — its container running, its tap up, the /32 route
 * to it, proxy ARP on the tap, its eth0 with the endpoint's MAC. One problem each: the first
 * thing that is wrong.
 */
import type { EndpointModel } from "../../components/model.js";
import { tapName } from "../../components/model.js";
import type { HostFacts } from "../facts.js";
import { firstLine } from "../parse.js";
import { isHostRoute } from "../routes.js";
import type { ContainerInfo, LinkInfo } from "../types.js";
import type { Finding, JudgeInput, Verdict } from "./judge.js";

interface Wiring {
  links: LinkInfo[];
  /** The container list, when Docker runs the endpoints and answered. */
  containers: ContainerInfo[] | undefined;
  facts: HostFacts;
}

/** The first thing wrong with one endpoint's wiring, if anything. */
function wiringOf(e: EndpointModel, tap: string, w: Wiring): Omit<Finding, "subject"> | undefined {
  const link = w.links.find((l) => l.ifname === tap);
  // An unreadable route table is the routes check's problem: the route step is skipped.
  const table = w.facts.routes.ok ? w.facts.routes.value : undefined;
  const route = table?.find((r) => isHostRoute(r, e.ip) && r.dev === tap);
  const c = w.containers?.find(
    (x) =>
      (x.role === "endpoint" && x.endpoint === e.name) ||
      (e.workload.kind === "attach" && x.name === e.containerName),
  );
  const proxy = w.facts.proxyArp.get(tap);
  if (w.containers !== undefined && (c === undefined || c.status !== "running")) {
    return {
      expected: "its container running",
      found: c ? `container ${c.status}` : "no container",
    };
  }
  if (link === undefined) return { expected: `tap ${tap}`, found: "no such interface" };
  if (!(link.flags ?? []).includes("UP") || link.operstate === "DOWN") {
    return { expected: `tap ${tap} up`, found: `${link.operstate ?? "?"}` };
  }
  if (table !== undefined && route === undefined) {
    return { expected: `route ${e.ip}/32 dev ${tap}`, found: "no such route" };
  }
  if (proxy !== "1") return { expected: `proxy ARP on ${tap}`, found: `proxy_arp=${proxy ?? "-"}` };
  const eth0 = w.facts.eth0(e.name);
  if (!eth0.ok) return { expected: "eth0 in the container", found: `its reply is ${eth0.why}` };
  if (eth0.value === undefined) {
    return {
      expected: "eth0 in the container",
      found: firstLine(w.facts.section(`eth0 ${e.name}`).out),
    };
  }
  if (eth0.value.address !== e.mac) {
    return { expected: `MAC ${e.mac}`, found: eth0.value.address ?? "none" };
  }
  return undefined;
}

export function judgeEndpoints({ t, h, facts }: JudgeInput): Verdict {
  if (!facts.links.ok) {
    return {
      detail: "cannot read the links",
      problems: [
        {
          subject: "the links reply",
          expected: "a list of links (ip -j link)",
          found: facts.links.why,
        },
      ],
    };
  }
  const listed = facts.containers;
  const w: Wiring = {
    links: facts.links.value,
    containers: !("none" in t.docker) && listed?.ok ? listed.value : undefined,
    facts,
  };
  const problems: Finding[] = [];
  for (const e of h.endpoints) {
    const wrong = wiringOf(e, tapName(t.endpointIds.get(e.name)!), w);
    if (wrong !== undefined) problems.push({ subject: e.name, ...wrong });
  }
  return {
    detail: `${h.endpoints.length - problems.length}/${h.endpoints.length} local endpoints wired`,
    problems,
  };
}
