/**
 * The parsers: a host's gathered text to facts. What a host prints is not trusted: JSON
 * replies are checked against their shape (zod) and a reply that does not fit is that
 * host's problem, named with the first thing wrong, never an exception.
 */
import ipaddr from "ipaddr.js";
import { z } from "zod";
import type { BgpSession, ContainerInfo, KernelRoute, LinkInfo } from "./types.js";

/** A parsed reply, or why it is not usable (one line, for the report). */
export type Parsed<T> = { ok: true; value: T } | { ok: false; why: string };

/** The first line of a reply, bounded, for the report. */
export function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.slice(0, 160) || "nothing";
}

const shown = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);

function isIpv4Dst(dst: string): boolean {
  if (dst === "default") return true;
  const [addr = "", bits, ...rest] = dst.split("/");
  if (rest.length > 0 || !ipaddr.IPv4.isValidFourPartDecimal(addr)) return false;
  return bits === undefined || (/^\d{1,2}$/.test(bits) && Number(bits) <= 32);
}

const routeSchema = z.object({
  dst: z
    .string()
    .refine(isIpv4Dst, { error: (i) => `not an IPv4 destination: ${shown(String(i.input))}` }),
  gateway: z.string().optional(),
  dev: z.string().optional(),
  protocol: z.string().optional(),
  type: z.string().optional(),
});

const linkSchema = z.object({
  ifname: z.string(),
  flags: z.array(z.string()).optional(),
  operstate: z.string().optional(),
  address: z.string().optional(),
});

const containerSchema = z.object({
  name: z.string(),
  status: z.string(),
  restarts: z.number().int().nonnegative(),
  labels: z.record(z.string(), z.string()).nullable(),
});

function firstIssue(e: z.ZodError): string {
  const i = e.issues[0]!;
  const where = i.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
  return `${where.replace(/^\./, "") || "(top)"}: ${i.message}`;
}

/** JSON text against a schema; `empty` when the command printed nothing. */
function parseJson<T>(text: string, schema: z.ZodType<T>, what: string, empty: T): Parsed<T> {
  if (text.trim() === "") return { ok: true, value: empty };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, why: `not JSON: ${firstLine(text)}` };
  }
  const r = schema.safeParse(json);
  return r.success
    ? { ok: true, value: r.data }
    : { ok: false, why: `${what}: ${firstIssue(r.error)}` };
}

/** `ip -j -4 route`: IPv4 routes, each with a destination. */
export function parseRoutes(text: string): Parsed<KernelRoute[]> {
  return parseJson(text, z.array(routeSchema), "not a list of IPv4 routes", []);
}

/** `ip -j link`: links, each with a name. */
export function parseLinks(text: string): Parsed<LinkInfo[]> {
  return parseJson(text, z.array(linkSchema), "not a list of links", []);
}

/**
 * `ip -n <ns> -j link show dev eth0`: the container's eth0. Text that is not JSON is `ip`
 * saying why there is none (no such namespace or device): not there, not malformed.
 */
export function parseEth0(text: string): Parsed<LinkInfo | undefined> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: true, value: undefined };
  }
  const r = z.array(linkSchema).safeParse(json);
  if (!r.success) return { ok: false, why: `not a list of links: ${firstIssue(r.error)}` };
  return { ok: true, value: r.data[0] };
}

/** `docker inspect --format <INSPECT_FORMAT>`: one JSON object per container, one a line. */
export function parseContainers(text: string): Parsed<ContainerInfo[]> {
  const containers: ContainerInfo[] = [];
  const lines = text.split("\n");
  for (const [i, line] of lines.entries()) {
    if (!line.startsWith("{")) continue; // Docker's own warnings
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      return { ok: false, why: `line ${i + 1} is not JSON: ${firstLine(line)}` };
    }
    const r = containerSchema.safeParse(json);
    if (!r.success) {
      return { ok: false, why: `line ${i + 1} is not a container: ${firstIssue(r.error)}` };
    }
    const c = r.data;
    const labels = c.labels ?? {};
    const endpoint = labels["calico-docker.endpoint"];
    containers.push({
      name: c.name.replace(/^\//, ""),
      role: labels["calico-docker.role"] ?? "",
      status: c.status,
      restarts: c.restarts,
      ...(endpoint !== undefined ? { endpoint } : {}),
    });
  }
  return { ok: true, value: containers };
}

/** Parse `birdc show protocols` into its BGP sessions. */
export function parseBirdProtocols(text: string): BgpSession[] {
  const sessions: BgpSession[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+BGP\s+\S+\s+(\S+)\s+\S+(?:\s+(.*))?$/.exec(line.trim());
    if (m) sessions.push({ name: m[1]!, state: m[2]!, info: (m[3] ?? "").trim() });
  }
  return sessions;
}

/** `<tap> <proxy_arp>` lines: tap -> its proxy_arp value (`-` when unreadable). */
export function parseProxyArp(text: string): Map<string, string> {
  return new Map(
    text
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter((w) => w.length === 2)
      .map(([k, v]) => [k!, v!]),
  );
}

/** `iptables-save`: the names of the chains it declares. */
export function parseChains(text: string): Set<string> {
  return new Set(
    text
      .split("\n")
      .filter((l) => l.startsWith(":"))
      .map((l) => l.slice(1).split(" ")[0]!),
  );
}

/** `sha256sum` lines: file name (without folder) -> its SHA-256. */
export function parseHashes(text: string): Map<string, string> {
  return new Map(
    text
      .split("\n")
      .map((l) => /^([0-9a-f]{64})\s+(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[2]!.slice(m[2]!.lastIndexOf("/") + 1), m[1]!]),
  );
}
