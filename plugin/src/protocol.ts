/**
 * Messages of the Felix / ACL Manager ZeroMQ protocol (PROTOCOL.md, Felix 0.8-0.11).
 * Every request/reply is one frame of UTF-8 JSON; publications are [topic, json].
 */
import type { Port } from "./parse.js";
import type { EndpointView, GroupPolicy } from "./state.js";

export type Rc = "SUCCESS" | "INVALID" | "NOTEXIST";

/** Milliseconds since the epoch, an integer (Felix 0.9 reads it). */
export function issued(): number {
  return Date.now();
}

export interface AddrObject {
  readonly addr: string;
}

export interface EndpointCreated {
  readonly type: "ENDPOINTCREATED";
  readonly endpoint_id: string;
  readonly resync_id: string | null;
  readonly issued: number;
  readonly mac: string;
  readonly state: string;
  readonly addrs: readonly AddrObject[];
}

export interface EndpointUpdated {
  readonly type: "ENDPOINTUPDATED";
  readonly endpoint_id: string;
  readonly issued: number;
  readonly mac: string;
  readonly state: string;
  readonly addrs: readonly AddrObject[];
}

export interface EndpointDestroyed {
  readonly type: "ENDPOINTDESTROYED";
  readonly endpoint_id: string;
  readonly issued: number;
}

export interface Heartbeat {
  readonly type: "HEARTBEAT";
  readonly issued: number;
}

export type FelixRequest = EndpointCreated | EndpointUpdated | EndpointDestroyed | Heartbeat;

export function endpointCreated(
  id: string,
  view: EndpointView,
  resyncId: string | null,
): EndpointCreated {
  return {
    type: "ENDPOINTCREATED",
    endpoint_id: id,
    resync_id: resyncId,
    issued: issued(),
    mac: view.mac,
    state: view.state,
    addrs: view.addrs.map((addr) => ({ addr })),
  };
}

export function endpointUpdated(id: string, view: EndpointView): EndpointUpdated {
  return {
    type: "ENDPOINTUPDATED",
    endpoint_id: id,
    issued: issued(),
    mac: view.mac,
    state: view.state,
    addrs: view.addrs.map((addr) => ({ addr })),
  };
}

export function endpointDestroyed(id: string): EndpointDestroyed {
  return { type: "ENDPOINTDESTROYED", endpoint_id: id, issued: issued() };
}

export function heartbeat(): Heartbeat {
  return { type: "HEARTBEAT", issued: issued() };
}

export interface WireRule {
  readonly group: string | null;
  readonly cidr: string | null;
  readonly protocol: string | null;
  readonly port: Port | null;
}

export interface GroupUpdate {
  readonly type: "GROUPUPDATE";
  readonly group: string;
  readonly issued: number;
  readonly members: Readonly<Record<string, readonly string[]>>;
  readonly rules: {
    readonly inbound: readonly WireRule[];
    readonly outbound: readonly WireRule[];
    readonly inbound_default: "deny";
    readonly outbound_default: "deny";
  };
}

const wireRule = (r: WireRule): WireRule => ({
  group: r.group,
  cidr: r.cidr,
  protocol: r.protocol,
  port: r.port,
});

export function groupUpdate(
  group: string,
  members: Readonly<Record<string, readonly string[]>>,
  policy: GroupPolicy,
): GroupUpdate {
  return {
    type: "GROUPUPDATE",
    group,
    issued: issued(),
    members,
    rules: {
      inbound: policy.inbound.map(wireRule),
      outbound: policy.outbound.map(wireRule),
      inbound_default: "deny",
      outbound_default: "deny",
    },
  };
}

export const TOPIC_GROUPS = "groups";
export const TOPIC_HEARTBEAT = "networkheartbeat";

/**
 * Default safety-net republish of every group: 10 minutes. Rare on purpose: the ACL
 * Manager 0.10.2 answers each group update by resending every endpoint's ACLs, and Felix
 * reprograms each one (about a second an endpoint).
 */
export const REPUBLISH_MS = 600_000;
/** Default `networkheartbeat` interval, well inside the ACL Manager's 65 s. */
export const NETWORK_HEARTBEAT_MS = 10_000;

/** A request as received: either a JSON object with a string `type`, or why it is not. */
export type Incoming =
  | { readonly ok: true; readonly type: string; readonly body: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly type: unknown; readonly message: string };

/** Longest request `type` accepted (and echoed); the longest real one has 17 characters. */
export const MAX_TYPE = 32;

/** Longest text from a peer that goes into a log line or a reply. */
export const MAX_PREVIEW = 80;

/** A short preview of untrusted text (or of a value's JSON) for logs and messages. */
export function preview(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return text.length > MAX_PREVIEW
    ? `${text.slice(0, MAX_PREVIEW)}... (${text.length} characters)`
    : text;
}

/** Parses one request frame without ever throwing. */
export function parseIncoming(frame: Buffer | undefined): Incoming {
  if (frame === undefined) return { ok: false, type: null, message: "empty message" };
  const text = frame.toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {
      ok: false,
      type: null,
      message: `request is not JSON: ${JSON.stringify(preview(text))}`,
    };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, type: null, message: "request is not a JSON object" };
  }
  const body = value as Record<string, unknown>;
  if (!("type" in body)) return { ok: false, type: null, message: "request has no `type`" };
  const type = body["type"];
  if (typeof type !== "string") {
    // Echoed in the reply only when it is a small scalar.
    const small = type === null || typeof type === "number" || typeof type === "boolean";
    return {
      ok: false,
      type: small ? type : null,
      message: `field type must be a string, got ${preview(type)}`,
    };
  }
  if (type.length > MAX_TYPE) {
    return {
      ok: false,
      type: null,
      message: `field type is ${type.length} characters long, at most ${MAX_TYPE} are accepted`,
    };
  }
  return { ok: true, type, body };
}

/** The reply to a request that cannot be served; it carries the request's `type`. */
export function invalidReply(type: unknown, message: string): Record<string, unknown> {
  return { type: type ?? null, rc: "INVALID", message };
}

/** Describes a JSON value's type for error messages. */
export function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * The ACL Manager 0.10.2 answers each GROUPUPDATE by resending the ACLs of every endpoint of
 * every group, and Felix reprograms each one (a second or more). An `up` that writes 40
 * endpoint files one by one made 40 updates of one group: 971 ACL publications in the lab,
 * a Felix backlog of many minutes. Changes within this interval of the last publication
 * share the next one.
 */
export const GROUP_UPDATE_INTERVAL_MS = 2000;
