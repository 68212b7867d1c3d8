/**
 * Gathering: one shell command per host prints every fact the judges need, in sections marked
 * `@@name`, each ending `@@rc <code>` (its exit code); `parseSections` splits the reply.
 */
import type { HostModel } from "../components/model.js";
import { tapName } from "../components/model.js";
import { shQuote, SNAT_CHAIN } from "../components/render/index.js";
import type { StatusTarget } from "./types.js";

/** The host's iptables (the SNAT rule is the host's, written by the preparation script). */
export const HOST_IPTABLES = "iptables";

/** One section of a host's reply: what it printed (trimmed) and its exit code. */
export interface Section {
  out: string;
  rc: number;
}
export type Sections = Map<string, Section>;

/** Marks a section's start (`@@name`), its end (`@@rc <code>`) and SNAT's second half. */
export const MARK = "@@";

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
  } else if (typeof t.felix === "object" && locals.length > 0) {
    parts.push(section("felix", t.felix.argv(h).map(q).join(" ")));
  }
  if (h.isController) {
    parts.push(
      section("data", `find ${q(t.dataDir)} -maxdepth 1 -type f ! -name '.*' -exec sha256sum {} +`),
    );
  }
  // One line: SSH passes it as one quoted word.
  return parts.join("; ");
}

export function parseSections(text: string): Sections {
  const sections: Sections = new Map();
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
