/**
 * The rules of a `[group]` section (`inbound` and `outbound`: JSON arrays), validated as
 * PROTOCOL.md says a rule is. Everything here is pure.
 */
import { describe, isCidrV4, isValidName, SectionError } from "./fields.js";

export type Port = number | readonly [number, number];

/** A PROTOCOL.md rule: exactly one of `group` and `cidr` is non-null. */
export interface Rule {
  readonly group: string | null;
  readonly cidr: string | null;
  readonly protocol: string | null;
  readonly port: Port | null;
}

const PROTOCOL_RE = /^[a-z][a-z0-9]*$/;

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

/** The rules of `key` (a JSON array, or nothing); `value` is the key's text, if any. */
export function parseRuleList(key: "inbound" | "outbound", value: string | undefined): Rule[] {
  if (value === undefined || value === "") return [];
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch (err) {
    throw new SectionError(key, value, `\`${key}\` is not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(json)) {
    throw new SectionError(key, value, `\`${key}\` must be a JSON array of rules`);
  }
  return json.map((rule, i) => parseRule(rule, `${key}[${i}]`));
}
