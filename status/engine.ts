/**
 * The health-check engine: one set of probes for a deployed stack, run on each host through a
 * transport (the lab's namespaces, or SSH). Per host, one shell command gathers the facts
 * (routes, links, proxy ARP, BIRD's sessions, containers, the agent, Felix's chains, the
 * SNAT rule, the plugin's data) and the engine judges them against the cluster model.
 *
 * A problem names the host, the thing and what was expected. A problem that another one
 * explains (a peer's session down because that peer's BIRD is down; a route missing to an
 * endpoint whose tap is gone) is kept as a consequence of it, so the report names the broken
 * thing, not everything it broke.
 */
import { createHash } from "node:crypto";
import ipaddr from "ipaddr.js";
import type { ClusterModel, EndpointModel, HostModel } from "../components/model.js";
import { PATHS, tapName } from "../components/model.js";
import { renderPluginData, shQuote, SNAT_CHAIN } from "../components/render/index.js";
import { Unreachable, type Transport } from "./transport.js";

/** What each line of the report is about, in the order they are shown. */
export const CHECKS = [
  "reach",
  "containers",
  "agent",
  "bgp",
  "routes",
  "endpoints",
  "felix",
  "snat",
  "plugin-data",
] as const;
export type CheckName = (typeof CHECKS)[number];

export interface Problem {
  host: string;
  check: CheckName;
  /** The thing: a container, a session, an endpoint, a file. */
  subject: string;
  expected: string;
  found: string;
  /** The key (`host/check/subject`) of the problem that explains this one. */
  causedBy?: string;
}

export const problemKey = (p: Pick<Problem, "host" | "check" | "subject">) =>
  `${p.host}/${p.check}/${p.subject}`;

export interface CheckResult {
  check: CheckName;
  /** `n/a`: the probe does not apply where this runs (said in `detail`). */
  status: "ok" | "problem" | "n/a" | "unknown";
  /** One line for people: counts, or why not applicable. */
  detail: string;
}

export interface ContainerInfo {
  name: string;
  role: string;
  status: string;
  restarts: number;
  endpoint?: string;
}

export interface BgpSession {
  name: string;
  state: string;
  info: string;
}

export interface HostStatus {
  host: string;
  controller: boolean;
  reachable: boolean;
  durationMs: number;
  checks: CheckResult[];
  /** Every problem on this host, consequences included. */
  problems: Problem[];
  /** Facts, for JSON readers and the lab's report. */
  containers: ContainerInfo[];
  bgp?: { running: boolean; sessions: BgpSession[] };
  /** One line per remote endpoint: `<ip>: <route>`. */
  routes: string[];
}

export interface StatusReport {
  stack: string;
  /** `lab` or `stack`. */
  target: string;
  transport: Transport["kind"];
  ok: boolean;
  hosts: HostStatus[];
  /** Problems nothing else explains: what to fix. */
  problems: Problem[];
  /** Problems explained by another one. */
  consequences: Problem[];
  durationMs: number;
}

/** Where the probes run: the production pieces a lab does not have are not applicable. */
export interface StatusTarget {
  stack: string;
  /** `lab` or `stack` (a live deployment). */
  kind: "lab" | "stack";
  model: ClusterModel;
  /** Endpoint name -> container id (taps and plugin data are derived from it). */
  endpointIds: Map<string, string>;
  /** argv that prints `birdc show protocols` on a host. */
  birdc: (host: HostModel) => string[];
  /** The named network namespace (`ip -n`) of an endpoint's container, on its host. */
  endpointNetns: (e: EndpointModel) => string;
  /** The plugin's data directory on the controller. */
  dataDir: string;
  /**
   * Docker on the hosts: the daemon (DOCKER_HOST, when not the default) and the `docker ps`
   * filters that select a host's containers (one daemon may serve several lab hosts).
   * `none`: no Docker here (said why).
   */
  docker: { host?: string; filters: (host: HostModel) => string[] } | { none: string };
  /** The system containers (felix, aclmgr, bird, plugins): production only. */
  systemContainers: boolean | string;
  /** How to tell the host agent runs (argv exits 0 when it does), or why not applicable. */
  agent: { name: string; argv: (host: HostModel) => string[] } | { none: string };
  /** Felix's chains: read inside the felix container, or why not applicable. */
  felix: true | string;
  /** The fabric's routes (the lab's stand-in for GCE's), when they can be read. */
  fabricRoutes?: () => Promise<KernelRoute[]>;
  /** Prefix for commands that need root (`sudo -n` for a non-root SSH user). */
  sudo: (host: HostModel) => string[];
}

export interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  type?: string;
}

interface LinkInfo {
  ifname: string;
  flags?: string[];
  operstate?: string;
  address?: string;
}

/** The host's iptables (the SNAT rule is the host's, written by the preparation script). */
export const HOST_IPTABLES = "iptables";
/** Felix 0.10's per-endpoint chains: `felix-to-<suffix>` and `felix-from-<suffix>`. */
export const FELIX_CHAIN_PREFIXES = ["felix-to-", "felix-from-"] as const;
/** The system containers a host runs, by role. */
export function systemContainersOf(model: ClusterModel, h: HostModel): string[] {
  return [
    "felix",
    ...(h.isController ? ["aclmgr", "plugin-network", "plugin-endpoint"] : []),
    ...(model.config.bgp.enabled ? ["bird"] : []),
  ];
}

// ---------------------------------------------------------------------------------------------
// Gathering: one shell command per host, sections marked `@@name`, each ending `@@rc <code>`.

const MARK = "@@";

function section(name: string, body: string): string {
  return `printf '\\n${MARK}%s\\n' ${shQuote(name)}; { ${body}; } 2>&1; printf '\\n${MARK}rc %s\\n' "$?"`;
}

const INSPECT_FORMAT =
  '{"name":{{json .Name}},"status":{{json .State.Status}},"restarts":{{.RestartCount}},' +
  '"labels":{{json .Config.Labels}}}';

export function gatherScript(t: StatusTarget, h: HostModel): string {
  const q = shQuote;
  const locals = h.endpoints;
  const taps = locals.map((e) => tapName(t.endpointIds.get(e.name)!));
  const parts = [
    section("routes", "ip -j -4 route show table main"),
    section("links", "ip -j link show"),
    section(
      "proxyarp",
      taps.length === 0
        ? "true"
        : // Shell builtins only: one read per tap, no process each.
          `set -- ${taps.map(q).join(" ")}; for t; do v=-; { read -r v <"/proc/sys/net/ipv4/conf/$t/proxy_arp"; } 2>/dev/null; printf '%s %s\\n' "$t" "$v"; done`,
    ),
    ...locals.map((e) =>
      section(`eth0 ${e.name}`, `ip -n ${q(t.endpointNetns(e))} -j link show dev eth0`),
    ),
    section(
      "snat",
      // Where the host script puts it: Felix's legacy tables (iptables-legacy when present).
      `ipt=${HOST_IPTABLES}; if command -v iptables-legacy >/dev/null 2>&1; then ipt=iptables-legacy; fi; "$ipt" -w 5 -t nat -S ${q(SNAT_CHAIN)} && echo ${MARK}postrouting && "$ipt" -w 5 -t nat -S POSTROUTING`,
    ),
  ];
  if (t.model.config.bgp.enabled) {
    parts.push(section("bird", t.birdc(h).map(q).join(" ")));
  }
  if (!("none" in t.docker)) {
    const filter = t.docker
      .filters(h)
      .map((f) => `--filter ${q(f)}`)
      .join(" ");
    if (t.docker.host !== undefined) parts.unshift(`export DOCKER_HOST=${q(t.docker.host)}`);
    // Attached endpoints run containers something else made, which carry none of our labels:
    // they are found by name (name filters are OR-ed with each other).
    const byName = locals
      .filter((e) => e.workload.kind === "attach")
      .map((e) => `--filter ${q(`name=^/${e.containerName}$`)}`);
    const list =
      byName.length === 0
        ? `docker ps -aq ${filter}`
        : `{ docker ps -aq ${filter} && docker ps -aq ${byName.join(" ")}; }`;
    parts.push(
      section(
        "containers",
        `ids=$(${list}) && printf '%s\\n' "$ids" | sort -u | xargs -r docker inspect --format ${q(INSPECT_FORMAT)}`,
      ),
    );
  }
  if (!("none" in t.agent)) parts.push(section("agent", t.agent.argv(h).map(q).join(" ")));
  if (t.felix === true && locals.length > 0) {
    parts.push(section("felix", "docker exec felix iptables-save -t filter"));
  }
  if (h.isController) {
    parts.push(
      section("data", `find ${q(t.dataDir)} -maxdepth 1 -type f ! -name '.*' -exec sha256sum {} +`),
    );
  }
  // One line: SSH passes it as one quoted word.
  return parts.join("; ");
}

export function parseSections(text: string): Map<string, { out: string; rc: number }> {
  const sections = new Map<string, { out: string; rc: number }>();
  let name: string | undefined;
  let lines: string[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith(`${MARK}rc `) && name !== undefined) {
      sections.set(name, { out: lines.join("\n").trim(), rc: Number(line.slice(5)) });
      name = undefined;
      lines = [];
    } else if (line.startsWith(MARK) && name === undefined) {
      name = line.slice(MARK.length);
      lines = [];
    } else if (name !== undefined) {
      lines.push(line);
    }
  }
  return sections;
}

// ---------------------------------------------------------------------------------------------
// Judging

/** Parse `birdc show protocols` into its BGP sessions. */
export function parseBirdProtocols(text: string): BgpSession[] {
  const sessions: BgpSession[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+BGP\s+\S+\s+(\S+)\s+\S+(?:\s+(.*))?$/.exec(line.trim());
    if (m) sessions.push({ name: m[1]!, state: m[2]!, info: (m[3] ?? "").trim() });
  }
  return sessions;
}

function cidrOf(dst: string): [ipaddr.IPv4, number] {
  if (dst === "default") return [ipaddr.IPv4.parse("0.0.0.0"), 0];
  if (dst.includes("/")) return ipaddr.IPv4.parseCIDR(dst);
  return [ipaddr.IPv4.parse(dst), 32];
}

/** The kernel's choice for `ip` in a table (longest prefix wins; metrics ignored). */
export function longestMatch(routes: KernelRoute[], ip: string): KernelRoute | undefined {
  const addr = ipaddr.IPv4.parse(ip);
  let best: KernelRoute | undefined;
  let bestBits = -1;
  for (const r of routes) {
    const [net, bits] = cidrOf(r.dst);
    if (bits > bestBits && addr.match(net, bits)) {
      best = r;
      bestBits = bits;
    }
  }
  return best;
}

const usable = (r: KernelRoute | undefined) =>
  r !== undefined && (r.type === undefined || r.type === "unicast");

export function describeRoute(r: KernelRoute): string {
  const dst = r.dst.includes("/") || r.dst === "default" ? r.dst : `${r.dst}/32`;
  if (r.type !== undefined && r.type !== "unicast") return `${r.type} ${dst}`;
  return [
    dst,
    r.gateway ? `via ${r.gateway}` : "",
    r.dev ? `dev ${r.dev}` : "",
    r.protocol && r.protocol !== "boot" ? `proto ${r.protocol}` : "",
  ]
    .filter(Boolean)
    .join(" ");
}

function parseJson<T>(text: string, fallback: T): T {
  try {
    return text.trim() === "" ? fallback : (JSON.parse(text) as T);
  } catch {
    return fallback;
  }
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.slice(0, 160) || "nothing";
}

interface Judged {
  checks: CheckResult[];
  problems: Problem[];
  containers: ContainerInfo[];
  bgp?: { running: boolean; sessions: BgpSession[] };
  routes: string[];
}

/** Judge one host's gathered facts against the model. */
export function judgeHost(
  t: StatusTarget,
  h: HostModel,
  facts: Map<string, { out: string; rc: number }>,
  fabric: KernelRoute[] | undefined,
): Judged {
  const model = t.model;
  const problems: Problem[] = [];
  const checks: CheckResult[] = [{ check: "reach", status: "ok", detail: "reachable" }];
  const add = (check: CheckName, subject: string, expected: string, found: string) =>
    problems.push({ host: h.name, check, subject, expected, found });
  const result = (check: CheckName, detail: string) => {
    const mine = problems.filter((p) => p.check === check).length;
    checks.push({ check, status: mine > 0 ? "problem" : "ok", detail });
  };
  const get = (name: string) => facts.get(name) ?? { out: "(not gathered)", rc: -1 };

  // Containers.
  const containers: ContainerInfo[] = [];
  const containerFacts = facts.get("containers");
  if (containerFacts !== undefined && containerFacts.rc === 0) {
    for (const line of containerFacts.out.split("\n").filter((l) => l.startsWith("{"))) {
      const c = parseJson<{
        name: string;
        status: string;
        restarts: number;
        labels: Record<string, string> | null;
      } | null>(line, null);
      if (c === null) continue;
      const labels = c.labels ?? {};
      containers.push({
        name: c.name.replace(/^\//, ""),
        role: labels["calico-docker.role"] ?? "",
        status: c.status,
        restarts: c.restarts,
        ...(labels["calico-docker.endpoint"] !== undefined
          ? { endpoint: labels["calico-docker.endpoint"] }
          : {}),
      });
    }
  }
  const dockerOk = containerFacts !== undefined && containerFacts.rc === 0;
  if ("none" in t.docker) {
    checks.push({ check: "containers", status: "n/a", detail: t.docker.none });
  } else if (!dockerOk) {
    add("containers", "docker", "docker answering", firstLine(containerFacts?.out ?? ""));
    result("containers", "cannot list containers");
  } else if (t.systemContainers !== true) {
    const eps = containers.filter((c) => c.role === "endpoint");
    checks.push({
      check: "containers",
      status: "n/a",
      detail: `${eps.length} endpoint container(s); ${String(t.systemContainers)}`,
    });
  } else {
    for (const role of systemContainersOf(model, h)) {
      const c = containers.find((x) => x.role === role);
      if (c === undefined) add("containers", role, "a running container", "no container");
      else if (c.status !== "running") add("containers", role, "running", c.status);
    }
    const sys = containers.filter((c) => c.role !== "endpoint");
    result(
      "containers",
      sys.map((c) => `${c.name} ${c.status} (${c.restarts} restarts)`).join(", ") || "none",
    );
  }

  // The agent.
  if ("none" in t.agent) {
    checks.push({ check: "agent", status: "n/a", detail: t.agent.none });
  } else {
    const a = get("agent");
    if (a.rc !== 0) add("agent", t.agent.name, "running", firstLine(a.out) || "not running");
    result("agent", a.rc === 0 ? `${t.agent.name} running` : `${t.agent.name} not running`);
  }

  // BGP.
  let bgp: Judged["bgp"];
  if (model.config.bgp.enabled) {
    const b = get("bird");
    const sessions = b.rc === 0 ? parseBirdProtocols(b.out) : [];
    bgp = { running: b.rc === 0, sessions };
    if (b.rc !== 0) {
      add("bgp", "bird", "BIRD answering on its control socket", firstLine(b.out));
    } else {
      for (const p of h.peers) {
        const s = sessions.find((x) => x.name === p.protocol);
        if (s === undefined) add("bgp", `session ${p.host}`, "Established", "no such session");
        else if (!s.info.startsWith("Established")) {
          add("bgp", `session ${p.host}`, "Established", `${s.state} ${s.info}`.trim());
        }
      }
    }
    const est = sessions.filter((s) => s.info.startsWith("Established")).length;
    result("bgp", b.rc === 0 ? `${est}/${h.peers.length} sessions Established` : "BIRD down");
  } else {
    checks.push({ check: "bgp", status: "n/a", detail: "BGP is off in this stack" });
  }

  // Routes to remote endpoints.
  const table = parseJson<KernelRoute[]>(get("routes").out, []);
  const routes: string[] = [];
  const remote = model.endpoints.filter((e) => e.host !== h.name);
  const hostAddr = new Map(model.hosts.map((x) => [x.name, x.internalAddress]));
  let present = 0;
  for (const e of remote) {
    if (model.config.bgp.enabled) {
      const r = table.find((x) => x.dst === e.ip || x.dst === `${e.ip}/32`);
      routes.push(`${e.ip}: ${r ? describeRoute(r) : "none"}`);
      if (r !== undefined && r.protocol === "bird" && usable(r)) present++;
      else {
        add(
          "routes",
          `${e.name} (${e.ip})`,
          `a BGP route (proto bird) via ${e.host}`,
          r ? describeRoute(r) : "no route",
        );
      }
      continue;
    }
    // No BGP: the host sends it to the fabric, whose route leads to the endpoint's host.
    const local = longestMatch(table, e.ip);
    const far = fabric === undefined ? undefined : longestMatch(fabric, e.ip);
    routes.push(
      `${e.ip}: ${local ? describeRoute(local) : "none"}` +
        (fabric ? `, fabric ${far ? describeRoute(far) : "none"}` : ""),
    );
    if (!(usable(local) && local!.gateway !== undefined)) {
      add(
        "routes",
        `${e.name} (${e.ip})`,
        "a route via the gateway",
        local ? describeRoute(local) : "no route",
      );
    } else if (fabric !== undefined && far?.gateway !== hostAddr.get(e.host)) {
      add(
        "routes",
        `${e.name} (${e.ip})`,
        `a fabric route via ${e.host} (${hostAddr.get(e.host)})`,
        far ? `fabric: ${describeRoute(far)}` : "no fabric route",
      );
    } else present++;
  }
  result(
    "routes",
    `${present}/${remote.length} remote endpoint routes` +
      (model.config.bgp.enabled ? " (BGP)" : fabric ? " (fabric)" : " (via the gateway)"),
  );

  // Local endpoints wired: container, tap, /32 route, proxy ARP, MAC. One problem each.
  const links = parseJson<LinkInfo[]>(get("links").out, []);
  const proxy = new Map(
    get("proxyarp")
      .out.split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter((w) => w.length === 2)
      .map(([k, v]) => [k!, v!]),
  );
  let wired = 0;
  for (const e of h.endpoints) {
    const tap = tapName(t.endpointIds.get(e.name)!);
    const link = links.find((l) => l.ifname === tap);
    const route = table.find((r) => (r.dst === e.ip || r.dst === `${e.ip}/32`) && r.dev === tap);
    const eth0 = parseJson<LinkInfo[]>(get(`eth0 ${e.name}`).out, [])[0];
    const c = containers.find(
      (x) =>
        (x.role === "endpoint" && x.endpoint === e.name) ||
        (e.workload.kind === "attach" && x.name === e.containerName),
    );
    const before = problems.length;
    if (dockerOk && !("none" in t.docker) && (c === undefined || c.status !== "running")) {
      add(
        "endpoints",
        e.name,
        "its container running",
        c ? `container ${c.status}` : "no container",
      );
    } else if (link === undefined) {
      add("endpoints", e.name, `tap ${tap}`, "no such interface");
    } else if (!(link.flags ?? []).includes("UP") || link.operstate === "DOWN") {
      add("endpoints", e.name, `tap ${tap} up`, `${link.operstate ?? "?"}`);
    } else if (route === undefined) {
      add("endpoints", e.name, `route ${e.ip}/32 dev ${tap}`, "no such route");
    } else if (proxy.get(tap) !== "1") {
      add("endpoints", e.name, `proxy ARP on ${tap}`, `proxy_arp=${proxy.get(tap) ?? "-"}`);
    } else if (eth0 === undefined) {
      add("endpoints", e.name, "eth0 in the container", firstLine(get(`eth0 ${e.name}`).out));
    } else if (eth0.address !== e.mac) {
      add("endpoints", e.name, `MAC ${e.mac}`, eth0.address ?? "none");
    }
    if (problems.length === before) wired++;
  }
  result("endpoints", `${wired}/${h.endpoints.length} local endpoints wired`);

  // Felix's chains.
  if (t.felix !== true) {
    checks.push({ check: "felix", status: "n/a", detail: t.felix });
  } else if (h.endpoints.length === 0) {
    checks.push({ check: "felix", status: "ok", detail: "no local endpoints" });
  } else {
    const f = get("felix");
    if (f.rc !== 0) {
      add("felix", "felix", "iptables-save in the felix container", firstLine(f.out));
    } else {
      const chains = new Set(
        f.out
          .split("\n")
          .filter((l) => l.startsWith(":"))
          .map((l) => l.slice(1).split(" ")[0]!),
      );
      for (const e of h.endpoints) {
        const suffix = t.endpointIds.get(e.name)!.slice(0, 11);
        const missing = FELIX_CHAIN_PREFIXES.map((p) => p + suffix).filter((c) => !chains.has(c));
        if (missing.length > 0) add("felix", e.name, `chains ${missing.join(", ")}`, "missing");
      }
    }
    result("felix", `chains for ${h.endpoints.length} local endpoint(s)`);
  }

  // SNAT.
  const snat = get("snat");
  const pool = model.config.endpointPool;
  const [chainPart, postPart = ""] = snat.out.split(`${MARK}postrouting`);
  const rule = (chainPart ?? "")
    .split("\n")
    .find(
      (l) =>
        l.startsWith(`-A ${SNAT_CHAIN} `) &&
        l.includes(`-s ${pool}`) &&
        l.includes(`! -d ${pool}`) &&
        l.includes("-j MASQUERADE"),
    );
  if (rule === undefined) {
    add(
      "snat",
      SNAT_CHAIN,
      `MASQUERADE from ${pool} to outside it`,
      snat.rc === 0 ? "no such rule" : firstLine(snat.out),
    );
  } else if (!postPart.split("\n").some((l) => l.trim() === `-A POSTROUTING -j ${SNAT_CHAIN}`)) {
    add("snat", "POSTROUTING", `a jump to ${SNAT_CHAIN}`, "none");
  }
  result("snat", `nat ${SNAT_CHAIN}`);

  // The plugin's data, on the controller.
  if (h.isController) {
    const d = get("data");
    if (d.rc !== 0 && d.out.includes("No such file")) {
      add("plugin-data", t.dataDir, "the plugin's data directory", "missing");
    } else {
      const found = new Map(
        d.out
          .split("\n")
          .map((l) => /^([0-9a-f]{64})\s+(.*)$/.exec(l.trim()))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => [m[2]!.slice(m[2]!.lastIndexOf("/") + 1), m[1]!]),
      );
      const expected = renderPluginData(model, t.endpointIds);
      for (const f of expected) {
        const hash = found.get(f.name);
        if (hash === undefined) add("plugin-data", f.name, "present", "missing");
        else if (hash !== sha256(f.content)) {
          add("plugin-data", f.name, "as rendered from the stack", "different (stale)");
        }
      }
      const names = new Set(expected.map((f) => f.name));
      for (const name of [...found.keys()].filter((n) => !names.has(n)).sort()) {
        add("plugin-data", name, "no such file (not in the stack)", "present");
      }
      result("plugin-data", `${found.size} file(s), ${expected.length} expected in ${t.dataDir}`);
    }
    if (!checks.some((c) => c.check === "plugin-data")) result("plugin-data", t.dataDir);
  }

  return { checks, problems, containers, ...(bgp ? { bgp } : {}), routes };
}

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
    if (!h.reachable)
      birdDown.set(h.host, problemKey({ host: h.host, check: "reach", subject: h.host }));
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

export interface RunOptions {
  /** Hosts to report on (default all); the others are still read when they explain a problem. */
  only?: string[];
  /** How long one host may take, ms (default 30 s). */
  hostTimeoutMs?: number;
  /** Hosts probed at once (default 16). */
  concurrency?: number;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
}

async function pool<T, R>(items: readonly T[], limit: number, fn: (x: T) => Promise<R>) {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/** Run every probe on every host through the transport; hosts in parallel. */
export async function runStatus(
  t: StatusTarget,
  transport: Transport,
  opts: RunOptions = {},
): Promise<StatusReport> {
  const t0 = performance.now();
  const progress = opts.progress ?? (() => {});
  const timeoutMs = opts.hostTimeoutMs ?? 30_000;
  const fabric = t.fabricRoutes ? await t.fabricRoutes() : undefined;
  let done = 0;
  const hosts = await pool(t.model.hosts, opts.concurrency ?? 16, async (h) => {
    const h0 = performance.now();
    const base = { host: h.name, controller: h.isController, containers: [], routes: [] };
    try {
      const argv = [...t.sudo(h), "sh", "-c", gatherScript(t, h)];
      const r = await transport.exec(h.name, argv, { timeoutMs });
      const judged = judgeHost(t, h, parseSections(r.stdout), fabric);
      const status: HostStatus = {
        ...base,
        reachable: true,
        durationMs: performance.now() - h0,
        ...judged,
      };
      progress(
        `  ${h.name}: ${judged.problems.length === 0 ? "ok" : `${judged.problems.length} problem(s)`} (${((performance.now() - h0) / 1000).toFixed(2)} s, ${++done}/${t.model.hosts.length})`,
      );
      return status;
    } catch (e) {
      if (!(e instanceof Unreachable)) throw e;
      progress(`  ${h.name}: UNREACHABLE: ${e.message} (${++done}/${t.model.hosts.length})`);
      const status: HostStatus = {
        ...base,
        reachable: false,
        durationMs: performance.now() - h0,
        checks: [{ check: "reach", status: "problem", detail: e.message }],
        problems: [
          {
            host: h.name,
            check: "reach",
            subject: h.name,
            expected: `reachable over ${transport.kind}`,
            found: e.message,
          },
        ],
      };
      for (const c of CHECKS.slice(1)) {
        status.checks.push({ check: c, status: "unknown", detail: "host unreachable" });
      }
      return status;
    }
  });
  correlate(t.model, hosts);
  const shown = opts.only === undefined ? hosts : hosts.filter((h) => opts.only!.includes(h.host));
  const every = shown.flatMap((h) => h.problems);
  // A problem on a shown host whose cause is on a host not shown is still its consequence.
  return {
    stack: t.stack,
    target: t.kind,
    transport: transport.kind,
    ok: every.length === 0,
    hosts: shown,
    problems: every.filter((p) => p.causedBy === undefined),
    consequences: every.filter((p) => p.causedBy !== undefined),
    durationMs: performance.now() - t0,
  };
}

/** The controller's plugin data dir as production has it. */
export const PRODUCTION_DATA_DIR = PATHS.dataDir;
