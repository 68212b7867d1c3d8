/** Problems that explain others, across hosts: the report names the broken thing first. */
import type { ClusterModel } from "../components/model.js";
import { problemKey, type HostStatus } from "./types.js";

/**
 * Mark problems that another one explains. Rules, all across hosts:
 * - a session to, or a BGP route via, a host whose BIRD is down or that is unreachable;
 * - a BGP route on a host whose own BIRD is down;
 * - a route to an endpoint that is not wired on its own host;
 * - Felix's chains on a host whose felix container is not running.
 */
export function correlate(model: ClusterModel, hosts: HostStatus[]): void {
  const all = hosts.flatMap((h) => h.problems);
  const birdDown = new Map<string, string>();
  for (const h of hosts) {
    // An unreachable host, or one whose reply could not be used, says nothing of its BIRD.
    const unread = !h.reachable || h.problems.some((x) => x.check === "reach");
    if (unread) birdDown.set(h.host, problemKey({ host: h.host, check: "reach", subject: h.host }));
    const p = h.problems.find((x) => x.check === "bgp" && x.subject === "bird");
    if (p) birdDown.set(h.host, problemKey(p));
  }
  const endpointBroken = new Map(
    all.filter((p) => p.check === "endpoints").map((p) => [p.subject, problemKey(p)]),
  );
  const hostOfEndpoint = new Map(model.endpoints.map((e) => [e.name, e]));
  for (const p of all) {
    if (p.check === "bgp" && p.subject.startsWith("session ")) {
      const peer = p.subject.slice("session ".length);
      p.causedBy = birdDown.get(peer) ?? birdDown.get(p.host);
    } else if (p.check === "routes") {
      const name = p.subject.split(" (")[0]!;
      const e = hostOfEndpoint.get(name);
      if (e === undefined) continue;
      p.causedBy =
        endpointBroken.get(name) ??
        (model.config.bgp.enabled ? (birdDown.get(e.host) ?? birdDown.get(p.host)) : undefined);
    } else if (p.check === "felix") {
      const felix = all.find(
        (x) => x.host === p.host && x.check === "containers" && x.subject === "felix",
      );
      if (felix) p.causedBy = problemKey(felix);
    }
    if (p.causedBy === undefined) delete p.causedBy;
  }
}
