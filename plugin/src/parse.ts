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

export type Port = number | readonly [number, number];

/** A PROTOCOL.md rule: exactly one of `group` and `cidr` is non-null. */
export interface Rule {
  readonly group: string | null;
  readonly cidr: string | null;
  readonly protocol: string | null;
  readonly port: Port | null;
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

/** A problem found in the data, precise enough for an operator to fix it. */
export interface Problem {
  readonly file: string;
  readonly line?: number;
  readonly section?: string;
  readonly field?: string;
  readonly value?: string;
  readonly message: string;
}

export interface ParseResult {
  /** null when the file could not be parsed at all (the caller keeps its last good content). */
  readonly content: FileContent | null;
  readonly problems: readonly Problem[];
}

const NAME_RE = /^[A-Za-z0-9][-_A-Za-z0-9.]*$/;
const ID_RE = /^[0-9a-f]{64}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const PROTOCOL_RE = /^[a-z][a-z0-9]*$/;
const MAX_NAME = 253;
const KIND_RE = /^[a-z][a-z0-9_-]*$/;
const KINDS = new Set(["felix", "endpoint", "group"]);

/** Problem messages quote values; a long one is cut. */
function clip(message: string): string {
  return message.length > 300 ? `${message.slice(0, 300)}...` : message;
}

/** A short, printable preview of text from a data file, for problems and logs. */
function preview(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is replaced
  const printable = text.replace(/[\u0000-\u001f\u007f]/g, "?");
  return printable.length > 80 ? `${printable.slice(0, 80)}...` : printable;
}

export function isValidName(name: string): boolean {
  return name.length <= MAX_NAME && NAME_RE.test(name);
}

/** Strict dotted-quad IPv4: four decimal octets 0-255, no leading zeros. */
export function isIPv4(text: string): boolean {
  const parts = text.split(".");
  if (parts.length !== 4) return false;
  return parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

export function isCidrV4(text: string): boolean {
  const slash = text.indexOf("/");
  if (slash < 0) return false;
  const prefix = text.slice(slash + 1);
  return isIPv4(text.slice(0, slash)) && /^(0|[1-9][0-9]?)$/.test(prefix) && Number(prefix) <= 32;
}

interface RawSection {
  readonly header: string;
  readonly kind: string;
  readonly name: string;
  readonly line: number;
  readonly values: Map<string, { value: string; line: number }>;
}

function unquote(value: string): string {
  if (value.length >= 2) {
    const first = value[0];
    if ((first === '"' || first === "'") && value.endsWith(first)) return value.slice(1, -1);
  }
  return value;
}

type Sectioned =
  { ok: true; sections: RawSection[]; problems: Problem[] } | { ok: false; problems: Problem[] };

function splitSections(file: string, text: string): Sectioned {
  const problems: Problem[] = [];
  const sections: RawSection[] = [];
  let current: RawSection | null = null;
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = (lines[i] ?? "").trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("[")) {
      if (!line.endsWith("]")) {
        return {
          ok: false,
          problems: [
            { file, line: lineNo, value: preview(line), message: "unterminated section header" },
          ],
        };
      }
      const header = line.slice(1, -1).trim();
      const words = header.split(/\s+/);
      const kind = (words[0] ?? "").toLowerCase();
      const name = words.slice(1).join(" ");
      // A damaged header cannot say which section it was: the whole file is not used (its
      // last good content stays in force), rather than its section vanishing.
      const damaged = !KIND_RE.test(kind)
        ? `damaged section header: kind ${JSON.stringify(preview(kind))} is not a word`
        : KINDS.has(kind) && !isValidName(name)
          ? `damaged section header: ${JSON.stringify(preview(name))} is not a valid ${kind} name`
          : null;
      if (damaged !== null) {
        return {
          ok: false,
          problems: [{ file, line: lineNo, value: preview(line), message: damaged }],
        };
      }
      current = { header, kind, name, line: lineNo, values: new Map() };
      sections.push(current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) {
      return {
        ok: false,
        problems: [
          {
            file,
            line: lineNo,
            value: preview(line),
            message: "expected `key=value` or `[section]`",
          },
        ],
      };
    }
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = unquote(line.slice(eq + 1).trim());
    if (current === null) {
      problems.push({
        file,
        line: lineNo,
        field: key,
        message: "key outside any section, ignored",
      });
      continue;
    }
    if (current.values.has(key)) {
      problems.push({
        file,
        line: lineNo,
        section: preview(current.header),
        field: key,
        message: "duplicate key, the last one wins",
      });
    }
    current.values.set(key, { value, line: lineNo });
  }
  return { ok: true, sections, problems };
}

class SectionError extends Error {
  constructor(
    readonly field: string,
    readonly value: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

function required(section: RawSection, key: string): string {
  const entry = section.values.get(key);
  if (entry === undefined || entry.value === "") {
    throw new SectionError(key, entry?.value, `missing required field \`${key}\``);
  }
  return entry.value;
}

function checkName(field: string, value: string): string {
  if (!isValidName(value)) {
    throw new SectionError(
      field,
      value,
      `invalid name ${JSON.stringify(value)}: expected letters, digits, '-', '_' or '.', starting with a letter or digit`,
    );
  }
  return value;
}

function checkIPv4(field: string, value: string): string {
  if (!isIPv4(value)) {
    throw new SectionError(field, value, `invalid IPv4 address ${JSON.stringify(value)}`);
  }
  return value;
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

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text;
}

/** Validates one rule object; `where` names it in errors (e.g. `inbound[2]`). */
export function parseRule(value: unknown, where: string): Rule {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SectionError(where, describe(value), `${where} must be an object`);
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!["group", "cidr", "protocol", "port"].includes(key)) {
      throw new SectionError(
        `${where}.${key}`,
        describe(obj[key]),
        `unknown key \`${key}\` in ${where}: a rule has group, cidr, protocol, port`,
      );
    }
  }
  const group = obj["group"] ?? null;
  const cidr = obj["cidr"] ?? null;
  const protocol = obj["protocol"] ?? null;
  const port = obj["port"] ?? null;
  if (group !== null && (typeof group !== "string" || !isValidName(group))) {
    throw new SectionError(`${where}.group`, describe(group), `invalid group ${describe(group)}`);
  }
  if (cidr !== null && (typeof cidr !== "string" || !isCidrV4(cidr))) {
    throw new SectionError(
      `${where}.cidr`,
      describe(cidr),
      `invalid cidr ${describe(cidr)}: expected a.b.c.d/n`,
    );
  }
  if ((group === null) === (cidr === null)) {
    throw new SectionError(
      where,
      describe(value),
      `${where} must have exactly one of group and cidr non-null`,
    );
  }
  if (protocol !== null && (typeof protocol !== "string" || !PROTOCOL_RE.test(protocol))) {
    throw new SectionError(
      `${where}.protocol`,
      describe(protocol),
      `invalid protocol ${describe(protocol)}: expected null or a name such as tcp, udp, icmp`,
    );
  }
  let parsedPort: Port | null = null;
  if (port !== null) {
    const isPort = (p: unknown): p is number =>
      typeof p === "number" && Number.isInteger(p) && p >= 0 && p <= 65535;
    if (isPort(port)) {
      parsedPort = port;
    } else if (
      Array.isArray(port) &&
      port.length === 2 &&
      isPort(port[0]) &&
      isPort(port[1]) &&
      port[0] <= port[1]
    ) {
      parsedPort = [port[0], port[1]];
    } else {
      throw new SectionError(
        `${where}.port`,
        describe(port),
        `invalid port ${describe(port)}: expected null, an integer 0-65535 or [min, max]`,
      );
    }
    if (protocol !== "tcp" && protocol !== "udp") {
      throw new SectionError(
        `${where}.protocol`,
        describe(protocol),
        `${where} has a port, so its protocol must be "tcp" or "udp", not ${describe(protocol)}`,
      );
    }
  }
  return {
    group: group as string | null,
    cidr: cidr as string | null,
    protocol: protocol as string | null,
    port: parsedPort,
  };
}

function parseRuleList(s: RawSection, key: "inbound" | "outbound"): Rule[] {
  const entry = s.values.get(key);
  if (entry === undefined || entry.value === "") return [];
  let json: unknown;
  try {
    json = JSON.parse(entry.value);
  } catch (err) {
    throw new SectionError(
      key,
      entry.value,
      `\`${key}\` is not valid JSON: ${(err as Error).message}`,
    );
  }
  if (!Array.isArray(json)) {
    throw new SectionError(key, entry.value, `\`${key}\` must be a JSON array of rules`);
  }
  return json.map((rule, i) => parseRule(rule, `${key}[${i}]`));
}

function parseGroup(file: string, s: RawSection): GroupRules {
  const name = checkName("section name", s.name);
  return {
    name,
    inbound: parseRuleList(s, "inbound"),
    outbound: parseRuleList(s, "outbound"),
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
