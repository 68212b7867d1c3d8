/**
 * Host replies for the status engine without a host: what the per-host command prints on a
 * healthy production host of a model, in the formats the real tools print (`ip -j` of
 * iproute2 6.1, `birdc show protocols` of BIRD 1.x, `docker inspect` with the engine's format,
 * `iptables-save`, `sha256sum`), and a transport that answers with them.
 */
import { createHash } from "node:crypto";
import type { HostModel } from "../../components/model.js";
import { tapName } from "../../components/model.js";
import { renderPluginData, SNAT_CHAIN } from "../../components/render/index.js";
import { systemContainersOf, type StatusTarget } from "../../status/engine.js";
import type { ExecResult, Transport } from "../../status/transport.js";

export type Replies = Record<string, string>;

const up = ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"];

/** The sections of a healthy host, by name (the text each command prints). */
export function healthySections(t: StatusTarget, h: HostModel): Replies {
  const m = t.model;
  const addr = new Map(m.hosts.map((x) => [x.name, x.internalAddress]));
  const tap = (name: string) => tapName(t.endpointIds.get(name)!);
  const remote = m.endpoints.filter((e) => e.host !== h.name);
  const routes = [
    { dst: "default", gateway: "10.240.0.1", dev: "eth0", flags: [] },
    ...(m.config.bgp.enabled
      ? remote.map((e) => ({
          dst: e.ip,
          gateway: addr.get(e.host),
          dev: "eth0",
          protocol: "bird",
          flags: [],
        }))
      : []),
    ...h.endpoints.map((e) => ({ dst: e.ip, dev: tap(e.name), scope: "link", flags: [] })),
  ];
  const links = [
    { ifindex: 1, ifname: "lo", flags: ["LOOPBACK", "UP", "LOWER_UP"], operstate: "UNKNOWN" },
    { ifindex: 2, ifname: "eth0", flags: up, operstate: "UP", address: "42:01:0a:f0:00:02" },
    ...h.endpoints.map((e, i) => ({
      ifindex: 10 + i,
      ifname: tap(e.name),
      flags: up,
      mtu: 1500,
      operstate: "UP",
      link_type: "ether",
      address: "ee:ee:ee:ee:ee:ee",
    })),
  ];
  const s: Replies = {
    routes: JSON.stringify(routes),
    links: JSON.stringify(links),
    proxyarp: h.endpoints.map((e) => `${tap(e.name)} 1`).join("\n"),
    snat: [
      `-N ${SNAT_CHAIN}`,
      `-A ${SNAT_CHAIN} -s ${m.config.endpointPool} ! -d ${m.config.endpointPool} -j MASQUERADE`,
      "@@postrouting",
      "-P POSTROUTING ACCEPT",
      `-A POSTROUTING -j ${SNAT_CHAIN}`,
    ].join("\n"),
    containers: [
      ...systemContainersOf(m, h).map((role) => ({ name: `/${role}`, role, endpoint: "" })),
      ...h.endpoints.map((e) => ({
        name: `/${e.containerName}`,
        role: "endpoint",
        endpoint: e.name,
      })),
    ]
      .map((c) =>
        JSON.stringify({
          name: c.name,
          status: "running",
          restarts: 0,
          labels: {
            "calico-docker.role": c.role,
            ...(c.endpoint ? { "calico-docker.endpoint": c.endpoint } : {}),
          },
        }),
      )
      .join("\n"),
    agent: "active",
    felix: [
      "*filter",
      ":INPUT ACCEPT [0:0]",
      ...h.endpoints.flatMap((e) => {
        const id = t.endpointIds.get(e.name)!.slice(0, 11);
        return [`:felix-to-${id} - [0:0]`, `:felix-from-${id} - [0:0]`];
      }),
      "COMMIT",
    ].join("\n"),
  };
  for (const e of h.endpoints) {
    s[`eth0 ${e.name}`] = JSON.stringify([
      { ifindex: 2, ifname: "eth0", flags: up, operstate: "UP", address: e.mac },
    ]);
  }
  if (m.config.bgp.enabled) {
    s.bird = [
      "BIRD 1.6.8 ready.",
      "name     proto    table    state  since       info",
      "kernel1  Kernel   master   up     2026-12-05  ",
      "device1  Device   master   up     2026-12-05  ",
      ...h.peers.map((p) => `${p.protocol} BGP      master   up     07:00:01    Established`),
    ].join("\n");
  }
  if (h.isController) {
    s.data = renderPluginData(m, t.endpointIds)
      .map((f) => `${createHash("sha256").update(f.content).digest("hex")}  ${t.dataDir}/${f.name}`)
      .join("\n");
  }
  return s;
}

/** Sections as the per-host command prints them (`@@name`, the text, `@@rc <code>`). */
export function reply(sections: Replies, rc: Record<string, number> = {}): string {
  return Object.entries(sections)
    .map(([name, out]) => `\n@@${name}\n${out}\n@@rc ${rc[name] ?? 0}\n`)
    .join("");
}

/** A transport whose hosts answer with the given text, or by the given function. */
export function fakeTransport(
  answer: (host: string, opts: { timeoutMs?: number; maxBytes?: number }) => Promise<ExecResult>,
): Transport {
  return { kind: "ssh", exec: (host, _argv, opts = {}) => answer(host, opts) };
}
