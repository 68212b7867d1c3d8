/**
 * Parsing of the plugin's data: INI text files in the data directory.
 *
 * - `[felix <hostname>]` with `ip=<IPv4>` and `host=<hostname>` (one per Felix host);
 * - `[endpoint <name>]` with `id`, `ip`, `mac`, `host`, `group` (and optional `state`);
 * - `[group <name>]` with `inbound` and `outbound` JSON arrays of rules.
 *
 * Sections may appear in any `*.txt` file. Parsing is liberal (comments, blank lines,
 * spaces around `=`, quoted values, unknown sections and keys are tolerated); acceptance is
 * strict (addresses, MACs, ids, names and rules are validated). Everything here is pure.
 */
import { checkIPv4, checkName, clip, preview, SectionError, type Problem } from "./fields.js";
import { parseRuleList, type Rule } from "./rules.js";
import { KINDS, splitSections, type RawSection } from "./sections.js";

export { isCidrV4, isIPv4, isValidName, type Problem } from "./fields.js";
export { parseRule, type Port, type Rule } from "./rules.js";

export type EndpointState = "enabled" | "disabled";

export interface FelixHost {
  /** The Felix host's name, as Felix reports it in RESYNCSTATE. */
  readonly host: string;
  /** The address of the host's Felix REP socket (9902). */
  readonly ip: string;
  readonly file: string;
}

export interface Endpoint {
  readonly name: string;
  /** 64 lowercase hex characters: the docker container id. */
  readonly id: string;
  readonly ip: string;
  /** Lowercase `aa:bb:cc:dd:ee:ff`. */
  readonly mac: string;
  readonly host: string;
  readonly group: string;
  readonly state: EndpointState;
  readonly file: string;
}

export interface GroupRules {
  readonly name: string;
  readonly inbound: readonly Rule[];
  readonly outbound: readonly Rule[];
  readonly file: string;
}

/** What one file contributes. */
export interface FileContent {
  readonly felix: readonly FelixHost[];
  readonly endpoints: readonly Endpoint[];
  readonly groups: readonly GroupRules[];
}

export interface ParseResult {
  /** null when the file could not be parsed at all (the caller keeps its last good content). */
  readonly content: FileContent | null;
  readonly problems: readonly Problem[];
}

const ID_RE = /^[0-9a-f]{64}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function required(section: RawSection, key: string): string {
  const entry = section.values.get(key);
  if (entry === undefined || entry.value === "") {
    throw new SectionError(key, entry?.value, `missing required field \`${key}\``);
  }
  return entry.value;
}

function parseFelix(file: string, s: RawSection): FelixHost {
  const sectionHost = checkName("section name", s.name);
  const host = checkName("host", s.values.get("host")?.value || sectionHost);
  const ip = checkIPv4("ip", required(s, "ip"));
  return { host, ip, file };
}

function parseEndpoint(file: string, s: RawSection): Endpoint {
  const name = checkName("section name", s.name);
  const id = required(s, "id");
  if (!ID_RE.test(id)) {
    throw new SectionError(
      "id",
      id,
      `invalid endpoint id ${JSON.stringify(id)}: expected 64 lowercase hex characters (the docker container id)`,
    );
  }
  const ip = checkIPv4("ip", required(s, "ip"));
  const rawMac = required(s, "mac");
  const mac = rawMac.toLowerCase();
  if (!MAC_RE.test(mac)) {
    throw new SectionError(
      "mac",
      rawMac,
      `invalid MAC ${JSON.stringify(rawMac)}: expected aa:bb:cc:dd:ee:ff`,
    );
  }
  const host = checkName("host", required(s, "host"));
  const group = checkName("group", required(s, "group"));
  const rawState = s.values.get("state")?.value ?? "enabled";
  const state = rawState.toLowerCase();
  if (state !== "enabled" && state !== "disabled") {
    throw new SectionError(
      "state",
      rawState,
      `invalid state ${JSON.stringify(rawState)}: expected "enabled" or "disabled"`,
    );
  }
  return { name, id, ip, mac, host, group, state, file };
}

function parseGroup(file: string, s: RawSection): GroupRules {
  const name = checkName("section name", s.name);
  return {
    name,
    inbound: parseRuleList("inbound", s.values.get("inbound")?.value),
    outbound: parseRuleList("outbound", s.values.get("outbound")?.value),
    file,
  };
}

/**
 * Parses one data file. A section that fails validation is reported and skipped; if the
 * same section was valid in `previous` (the file's last good content), that version is kept
 * so that a file caught half-written does not make its endpoints vanish.
 */
export function parseDataFile(file: string, text: string, previous?: FileContent): ParseResult {
  const split = splitSections(file, text);
  if (!split.ok) return { content: null, problems: split.problems };
  const problems = [...split.problems];
  const felix: FelixHost[] = [];
  const endpoints: Endpoint[] = [];
  const groups: GroupRules[] = [];
  for (const s of split.sections) {
    if (!KINDS.has(s.kind)) {
      problems.push({
        file,
        line: s.line,
        section: preview(s.header),
        message: `unknown section kind ${JSON.stringify(preview(s.kind))} (expected felix, endpoint or group), ignored`,
      });
      continue;
    }
    try {
      if (s.kind === "felix") felix.push(parseFelix(file, s));
      else if (s.kind === "endpoint") endpoints.push(parseEndpoint(file, s));
      else groups.push(parseGroup(file, s));
    } catch (err) {
      if (!(err instanceof SectionError)) throw err;
      const kept = keepPrevious(previous, s.kind, s.name);
      problems.push({
        file,
        line: s.values.get(err.field)?.line ?? s.line,
        section: preview(s.header),
        field: err.field,
        ...(err.value === undefined ? {} : { value: preview(err.value) }),
        message: `${clip(err.message)}; section skipped${kept ? ", its last good version stays in force" : ""}`,
      });
      if (kept !== null) {
        if (kept.kind === "felix") felix.push(kept.value);
        else if (kept.kind === "endpoint") endpoints.push(kept.value);
        else groups.push(kept.value);
      }
    }
  }
  return { content: { felix, endpoints, groups }, problems };
}

type Kept =
  | { kind: "felix"; value: FelixHost }
  | { kind: "endpoint"; value: Endpoint }
  | { kind: "group"; value: GroupRules };

function keepPrevious(previous: FileContent | undefined, kind: string, name: string): Kept | null {
  if (previous === undefined) return null;
  if (kind === "felix") {
    const f = previous.felix.find((x) => x.host === name);
    return f ? { kind, value: f } : null;
  }
  if (kind === "endpoint") {
    const e = previous.endpoints.find((x) => x.name === name);
    return e ? { kind, value: e } : null;
  }
  const g = previous.groups.find((x) => x.name === name);
  return g ? { kind: "group", value: g } : null;
}
