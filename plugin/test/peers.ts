/**
 * Fake Felix and ACL Manager peers, written from PROTOCOL.md, over real ZeroMQ sockets.
 * They check every message they receive and record protocol violations, so a test can
 * assert that the plugin never sent anything a real Felix 0.8-0.11 would choke on.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { Reply, Request, Subscriber } from "zeromq";

export type Json = Record<string, unknown>;

export interface Received<T = Json> {
  readonly at: number;
  readonly msg: T;
}

/** A list of received items that tests can wait on. */
export class Recorder<T> {
  readonly items: Array<{ at: number; value: T }> = [];
  private readonly events = new EventEmitter();

  push(value: T): void {
    this.items.push({ at: performance.now(), value });
    this.events.emit("item");
  }

  get length(): number {
    return this.items.length;
  }

  /** Resolves with the first item at index >= `since` that matches. */
  waitFor(
    pred: (value: T) => boolean,
    opts: { since?: number; timeoutMs?: number; what?: string } = {},
  ): Promise<{ at: number; value: T; index: number }> {
    const since = opts.since ?? 0;
    const timeoutMs = opts.timeoutMs ?? 3000;
    return new Promise((resolve, reject) => {
      let checked = since;
      const check = (): boolean => {
        for (; checked < this.items.length; checked++) {
          const item = this.items[checked];
          if (item && pred(item.value)) {
            cleanup();
            resolve({ ...item, index: checked });
            return true;
          }
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? "message"}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.events.off("item", check);
      };
      if (!check()) this.events.on("item", check);
    });
  }

  /** Waits until `count` items at index >= `since` match. */
  async waitForCount(
    pred: (value: T) => boolean,
    count: number,
    opts: { since?: number; timeoutMs?: number; what?: string } = {},
  ): Promise<T[]> {
    const found: T[] = [];
    let since = opts.since ?? 0;
    const deadline = Date.now() + (opts.timeoutMs ?? 3000);
    while (found.length < count) {
      const left = deadline - Date.now();
      const item = await this.waitFor(pred, {
        since,
        timeoutMs: Math.max(1, left),
        what: `${opts.what ?? "message"} #${found.length + 1} of ${count}`,
      });
      found.push(item.value);
      since = item.index + 1;
    }
    return found;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const HEX64 = /^[0-9a-f]{64}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function keysAre(msg: Json, keys: string[]): string | null {
  const got = Object.keys(msg).sort().join(",");
  const want = [...keys].sort().join(",");
  return got === want ? null : `keys are {${got}}, expected {${want}}`;
}

function checkIssued(msg: Json): string | null {
  const v = msg["issued"];
  if (typeof v !== "number" || !Number.isInteger(v)) return `issued ${String(v)} is not an integer`;
  if (Math.abs(v - Date.now()) > 60_000) return `issued ${v} is not a current ms timestamp`;
  return null;
}

function checkEndpointBody(msg: Json): string[] {
  const out: string[] = [];
  if (typeof msg["endpoint_id"] !== "string" || !HEX64.test(msg["endpoint_id"])) {
    out.push(`endpoint_id ${String(msg["endpoint_id"])} is not 64 hex`);
  }
  if (typeof msg["mac"] !== "string" || !MAC.test(msg["mac"])) {
    out.push(`mac ${String(msg["mac"])} invalid`);
  }
  if (msg["state"] !== "enabled" && msg["state"] !== "disabled") {
    out.push(`state ${String(msg["state"])} invalid`);
  }
  const addrs = msg["addrs"];
  if (!Array.isArray(addrs)) out.push("addrs is not a list");
  else {
    for (const a of addrs as unknown[]) {
      if (typeof a !== "object" || a === null || Array.isArray(a)) {
        out.push(`addrs entry ${JSON.stringify(a)} is not an object`);
        continue;
      }
      const addr = (a as Json)["addr"];
      if (typeof addr !== "string" || !IPV4.test(addr)) out.push(`addr ${String(addr)} invalid`);
    }
  }
  return out;
}

/** Everything wrong with a plugin -> Felix request, per PROTOCOL.md. */
export function felixRequestProblems(msg: Json): string[] {
  const out: string[] = [];
  const add = (p: string | null): void => {
    if (p) out.push(p);
  };
  switch (msg["type"]) {
    case "ENDPOINTCREATED":
      add(keysAre(msg, ["type", "endpoint_id", "resync_id", "issued", "mac", "state", "addrs"]));
      add(checkIssued(msg));
      if (msg["resync_id"] !== null && typeof msg["resync_id"] !== "string") {
        out.push("resync_id must be a string or null");
      }
      out.push(...checkEndpointBody(msg));
      break;
    case "ENDPOINTUPDATED":
      add(keysAre(msg, ["type", "endpoint_id", "issued", "mac", "state", "addrs"]));
      add(checkIssued(msg));
      out.push(...checkEndpointBody(msg));
      break;
    case "ENDPOINTDESTROYED":
      add(keysAre(msg, ["type", "endpoint_id", "issued"]));
      add(checkIssued(msg));
      break;
    case "HEARTBEAT":
      add(keysAre(msg, ["type", "issued"]));
      add(checkIssued(msg));
      break;
    default:
      out.push(`unknown type ${JSON.stringify(msg["type"])}`);
  }
  return out;
}

export interface FelixEndpoint {
  readonly mac: string;
  readonly state: string;
  readonly addrs: string[];
}

export interface FakeFelixOptions {
  /** Host name sent in RESYNCSTATE. */
  readonly hostname: string;
  /** Address of the REP socket (the host's LocalAddress), e.g. 127.0.0.2. */
  readonly ip: string;
  readonly port: number;
  /** The plugin's endpoint API, e.g. tcp://127.0.0.1:19901. */
  readonly plugin: string;
  readonly requestTimeoutMs?: number;
}

/**
 * A Felix: REP on `ip:port` for the plugin's requests (keeps the endpoint table as Felix
 * would, including resync bookkeeping), and a REQ to the plugin for RESYNCSTATE/HEARTBEAT.
 */
export class FakeFelix {
  readonly received = new Recorder<Json>();
  readonly violations: string[] = [];
  readonly endpoints = new Map<string, FelixEndpoint>();
  private rep: Reply | null = null;
  private req: Request | null = null;
  private muted = false;
  private serving: Promise<void> | null = null;
  private resync: { id: string; expected: number | null; got: Set<string> } | null = null;
  /** Every resync id this Felix has sent (a create for an older one is applied, as Felix does). */
  private readonly resyncIds = new Set<string>();
  private closed = false;
  /**
   * When set and returning a string, that raw text is the reply (to feed the plugin junk).
   * Returning null sends no reply at all and recreates the REP socket, as Felix <= 0.12 does
   * for a destroy of an endpoint it does not know (its REP socket then times out).
   */
  replyWith: ((msg: Json) => string | null | undefined) | null = null;
  /** Answer like Felix <= 0.12: never reply to a destroy of an unknown endpoint. */
  silentOnUnknownDestroy = false;

  constructor(readonly opts: FakeFelixOptions) {}

  get address(): string {
    return `tcp://${this.opts.ip}:${this.opts.port}`;
  }

  async start(): Promise<void> {
    this.closed = false;
    await this.bindRep();
    this.newReq();
  }

  private newReq(): void {
    this.req?.close();
    this.req = new Request({
      linger: 0,
      receiveTimeout: this.opts.requestTimeoutMs ?? 3000,
      sendTimeout: 1000,
    });
    this.req.connect(this.opts.plugin);
  }

  private async bindRep(): Promise<void> {
    const rep = new Reply({ linger: 0 });
    for (let attempt = 0; ; attempt++) {
      try {
        await rep.bind(this.address);
        break;
      } catch (err) {
        if (attempt > 50) throw err;
        await sleep(20);
      }
    }
    if (this.closed) {
      rep.close();
      return;
    }
    this.rep = rep;
    this.serving = this.serve(rep);
  }

  private rebinding: Promise<void> | null = null;

  private async serve(rep: Reply): Promise<void> {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await rep.receive();
      } catch {
        return;
      }
      if (frames.length !== 1) this.violations.push(`request with ${frames.length} frames`);
      let msg: Json;
      try {
        msg = JSON.parse(frames[0]?.toString("utf8") ?? "") as Json;
      } catch {
        this.violations.push(`non-JSON request ${frames[0]?.toString("utf8")}`);
        continue;
      }
      this.received.push(msg);
      if (this.muted) continue; // never answers: the plugin must time out
      const raw = this.replyWith?.(msg);
      const reply = raw === undefined ? this.handle(msg) : raw;
      if (reply === null) {
        // No reply: this REP socket is stuck; start a fresh one as Felix does after its timeout.
        rep.close();
        if (!this.closed) this.rebinding = this.bindRep();
        return;
      }
      try {
        await rep.send(reply);
      } catch {
        return;
      }
    }
  }

  private handle(msg: Json): string | null {
    if (
      this.silentOnUnknownDestroy &&
      msg["type"] === "ENDPOINTDESTROYED" &&
      !this.endpoints.has(String(msg["endpoint_id"]))
    ) {
      this.unanswered.push(msg);
      return null;
    }
    return JSON.stringify(this.answer(msg));
  }

  /** Requests this Felix left unanswered (destroys of endpoints it did not know). */
  readonly unanswered: Json[] = [];

  private answer(msg: Json): Json {
    const type = msg["type"];
    for (const p of felixRequestProblems(msg)) this.violations.push(`${String(type)}: ${p}`);
    const id = String(msg["endpoint_id"]);
    const view = (): FelixEndpoint => ({
      mac: String(msg["mac"]),
      state: String(msg["state"]),
      addrs: Array.isArray(msg["addrs"])
        ? (msg["addrs"] as Json[]).map((a) => String(a["addr"]))
        : [],
    });
    const ok = { type, rc: "SUCCESS", message: "" };
    switch (type) {
      case "ENDPOINTCREATED": {
        const resyncId = msg["resync_id"];
        if (resyncId !== null) {
          if (typeof resyncId !== "string" || !this.resyncIds.has(resyncId)) {
            this.violations.push(`create for unknown resync ${String(resyncId)}`);
          } else if (!this.resync || this.resync.id !== resyncId) {
            this.staleResyncCreates.push(msg);
          } else if (this.resync.expected === null) {
            this.violations.push("resync create before the RESYNCSTATE reply");
          } else {
            this.resync.got.add(id);
          }
        }
        this.endpoints.set(id, view());
        this.finishResyncIfDone();
        return ok;
      }
      case "ENDPOINTUPDATED": {
        const had = this.endpoints.get(id);
        if (!had) return { type, rc: "NOTEXIST", message: "unknown" };
        const now = view();
        if (had.mac !== now.mac || had.addrs.join(",") !== now.addrs.join(",")) {
          // Felix 0.10 trims the endpoint's from-chain by content after such an update: the
          // old address stays allowed and the chain loses its final DROP.
          this.violations.push(`ENDPOINTUPDATED of ${id} changes its address or MAC`);
        }
        this.endpoints.set(id, now);
        return ok;
      }
      case "ENDPOINTDESTROYED":
        if (!this.endpoints.has(id)) {
          if (!this.forgotten.has(id)) {
            this.violations.push(`destroy of endpoint ${id} that Felix was never told about`);
          }
          return { type, rc: "NOTEXIST", message: "unknown" };
        }
        this.endpoints.delete(id);
        return ok;
      case "HEARTBEAT":
        return ok;
      default:
        return { type, rc: "INVALID", message: "unknown type" };
    }
  }

  /** Creates that carried the id of an older resync of this Felix. */
  readonly staleResyncCreates: Json[] = [];
  /** Endpoints this Felix lost with forget(): a destroy of one of them is no violation. */
  private readonly forgotten = new Set<string>();

  /** Loses every endpoint, as a restarted Felix does. */
  forget(): void {
    for (const id of this.endpoints.keys()) this.forgotten.add(id);
    this.endpoints.clear();
  }

  private finishResyncIfDone(): void {
    const r = this.resync;
    if (!r || r.expected === null || r.got.size < r.expected) return;
    for (const id of [...this.endpoints.keys()]) if (!r.got.has(id)) this.endpoints.delete(id);
    this.resync = null;
  }

  /** Sends one raw frame to the plugin's endpoint API and returns the reply text. */
  async requestRaw(frame: string | Buffer): Promise<string> {
    if (!this.req) throw new Error("not started");
    try {
      await this.req.send(frame);
      const [reply] = await this.req.receive();
      return reply?.toString("utf8") ?? "";
    } catch (err) {
      this.newReq(); // a REQ that missed a reply is stuck: start over, as Felix does
      throw err;
    }
  }

  async request(msg: Json): Promise<Json> {
    return JSON.parse(await this.requestRaw(JSON.stringify(msg))) as Json;
  }

  async heartbeat(): Promise<Json> {
    return this.request({ type: "HEARTBEAT", issued: Date.now() });
  }

  /**
   * A full resync: RESYNCSTATE, then wait for `endpoint_count` creates with its id.
   * Returns the reply and the creates.
   */
  async resyncState(timeoutMs = 3000): Promise<{ reply: Json; creates: Json[]; id: string }> {
    const since = this.received.length;
    const { reply, id } = await this.sendResync();
    const count = reply["endpoint_count"];
    if (typeof count !== "number" || !Number.isInteger(count)) {
      return { reply, creates: [], id };
    }
    const creates = await this.received.waitForCount(
      (m) => m["type"] === "ENDPOINTCREATED" && m["resync_id"] === id,
      count,
      { since, timeoutMs, what: `ENDPOINTCREATED for resync ${id}` },
    );
    return { reply, creates, id };
  }

  /**
   * Starts a resync as Felix does (a newer one replaces the one in progress) and returns the
   * reply, without waiting for the creates.
   */
  async sendResync(): Promise<{ reply: Json; id: string }> {
    const id = randomUUID();
    this.resyncIds.add(id);
    const resync = { id, expected: null as number | null, got: new Set<string>() };
    this.resync = resync;
    const reply = await this.request({
      type: "RESYNCSTATE",
      resync_id: id,
      issued: Date.now(),
      hostname: this.opts.hostname,
    });
    const count = reply["endpoint_count"];
    if (typeof count !== "number" || !Number.isInteger(count)) {
      this.violations.push(`endpoint_count ${JSON.stringify(count)} is not an integer`);
      return { reply, id };
    }
    if (reply["rc"] !== "SUCCESS") {
      // Felix abandons the resync and keeps its endpoints.
      if (this.resync === resync) this.resync = null;
      return { reply, id };
    }
    resync.expected = count;
    if (this.resync === resync) this.finishResyncIfDone();
    return { reply, id };
  }

  /**
   * Becomes a new Felix process, as after a restart: no endpoints, no resync in progress,
   * none of the old process's resync ids (a create carrying one is a violation, as Felix
   * logs it "with invalid resync"), and a fresh REQ socket to the plugin.
   */
  newProcess(): void {
    this.forget();
    this.resync = null;
    this.resyncIds.clear();
    this.newReq();
  }

  /** Stops answering requests (they are still recorded). */
  mute(): void {
    this.muted = true;
  }

  /** Comes back: a fresh REP socket on the same address, answering again. */
  async unmute(): Promise<void> {
    this.muted = false;
    this.rep?.close();
    await this.serving;
    await this.bindRep();
  }

  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rep?.close();
    this.req?.close();
    await this.serving;
    await this.rebinding;
    this.rep?.close();
    await this.serving;
  }
}

/** Everything wrong with a GROUPUPDATE, per PROTOCOL.md. */
export function groupUpdateProblems(msg: Json): string[] {
  const out: string[] = [];
  const keys = keysAre(msg, ["type", "group", "issued", "members", "rules"]);
  if (keys) out.push(keys);
  const issued = checkIssued(msg);
  if (issued) out.push(issued);
  if (typeof msg["group"] !== "string") out.push("group is not a string");
  const members = msg["members"];
  if (typeof members !== "object" || members === null || Array.isArray(members)) {
    out.push("members is not an object");
  } else {
    for (const [id, ips] of Object.entries(members as Json)) {
      if (!HEX64.test(id)) out.push(`member id ${id} is not 64 hex`);
      if (!Array.isArray(ips) || !ips.every((ip) => typeof ip === "string" && IPV4.test(ip))) {
        out.push(`members[${id}] is not a flat list of IP strings: ${JSON.stringify(ips)}`);
      }
    }
  }
  const rules = msg["rules"] as Json | undefined;
  if (typeof rules !== "object" || rules === null) out.push("rules is not an object");
  else {
    const k = keysAre(rules, ["inbound", "outbound", "inbound_default", "outbound_default"]);
    if (k) out.push(`rules: ${k}`);
    if (rules["inbound_default"] !== "deny") out.push("inbound_default is not deny");
    if (rules["outbound_default"] !== "deny") out.push("outbound_default is not deny");
    for (const dir of ["inbound", "outbound"]) {
      const list = rules[dir];
      if (!Array.isArray(list)) {
        out.push(`rules.${dir} is not a list`);
        continue;
      }
      for (const r of list as Json[]) {
        const rk = keysAre(r, ["group", "cidr", "protocol", "port"]);
        if (rk) out.push(`rule ${JSON.stringify(r)}: ${rk}`);
        if ((r["group"] === null) === (r["cidr"] === null)) {
          out.push(`rule ${JSON.stringify(r)}: exactly one of group/cidr must be non-null`);
        }
      }
    }
  }
  return out;
}

export interface Publication {
  readonly topic: string;
  readonly msg: Json;
}

/**
 * An ACL Manager: SUB on 9904 (groups, networkheartbeat) and REQ GETGROUPS on 9903. It
 * keeps its groups as ACL Manager 0.10.2 does (`NetworkStore.update_group`: a group with
 * members is stored, an empty one deleted) and, after every update, recalculates as its
 * `RuleProcessor.recalc_rules` does: a stored group's rule naming a group it does not hold
 * raises KeyError, and its subscriber thread dies: nothing is applied ever again (`dead`).
 */
export class FakeAclManager {
  readonly received = new Recorder<Publication>();
  readonly violations: string[] = [];
  /** Groups held (those published with members), with their rules. */
  readonly groups = new Map<string, { members: Json; rules: Json }>();
  /** Why the subscriber thread died, if it did. */
  dead: string | null = null;
  private sub: Subscriber | null = null;
  private req: Request | null = null;
  private listening: Promise<void> | null = null;

  constructor(readonly opts: { groups: string; publish: string }) {}

  async start(): Promise<void> {
    const sub = new Subscriber({ linger: 0 });
    sub.subscribe("groups", "networkheartbeat");
    sub.connect(this.opts.publish);
    this.sub = sub;
    this.req = new Request({ linger: 0, receiveTimeout: 3000, sendTimeout: 1000 });
    this.req.connect(this.opts.groups);
    this.listening = this.listen(sub);
  }

  private async listen(sub: Subscriber): Promise<void> {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await sub.receive();
      } catch {
        return;
      }
      if (frames.length !== 2) {
        this.violations.push(`publication with ${frames.length} frames`);
        continue;
      }
      const topic = frames[0]?.toString("utf8") ?? "";
      let msg: Json;
      try {
        msg = JSON.parse(frames[1]?.toString("utf8") ?? "") as Json;
      } catch {
        this.violations.push(`non-JSON publication on ${topic}`);
        continue;
      }
      if (this.dead !== null) continue; // the real one's thread is gone: nothing is applied
      if (topic === "groups") {
        if (msg["type"] !== "GROUPUPDATE")
          this.violations.push(`groups: type ${String(msg["type"])}`);
        for (const p of groupUpdateProblems(msg)) this.violations.push(`GROUPUPDATE: ${p}`);
        this.apply(msg);
      } else if (topic === "networkheartbeat") {
        const k = keysAre(msg, ["type", "issued"]);
        if (msg["type"] !== "HEARTBEAT" || k)
          this.violations.push(`heartbeat: ${JSON.stringify(msg)}`);
      }
      this.received.push({ topic, msg });
    }
  }

  /** `NetworkStore.update_group`, then `RuleProcessor.recalc_rules` (ACL Manager 0.10.2). */
  private apply(msg: Json): void {
    const group = String(msg["group"]);
    const members = (msg["members"] ?? {}) as Json;
    if (Object.keys(members).length === 0) this.groups.delete(group);
    else this.groups.set(group, { members, rules: (msg["rules"] ?? {}) as Json });
    for (const [name, g] of this.groups) {
      for (const dir of ["inbound", "outbound"]) {
        const rules = g.rules[dir];
        for (const r of Array.isArray(rules) ? (rules as Json[]) : []) {
          const named = r["group"];
          if (named !== null && named !== undefined && !this.groups.has(String(named))) {
            this.dead = `KeyError: '${String(named)}' (a ${dir} rule of group ${name}, after the update of ${group})`;
            this.violations.push(`ACL Manager subscriber thread died: ${this.dead}`);
            return;
          }
        }
      }
    }
  }

  async requestRaw(frame: string | Buffer): Promise<string> {
    if (!this.req) throw new Error("not started");
    try {
      await this.req.send(frame);
      const [reply] = await this.req.receive();
      return reply?.toString("utf8") ?? "";
    } catch (err) {
      this.req.close();
      this.req = new Request({ linger: 0, receiveTimeout: 3000, sendTimeout: 1000 });
      this.req.connect(this.opts.groups);
      throw err;
    }
  }

  async getGroups(): Promise<Json> {
    return JSON.parse(
      // `issued` as ACL Manager 0.10.2 sends it: time.time() * 1000, a float.
      await this.requestRaw(JSON.stringify({ type: "GETGROUPS", issued: Date.now() + 0.25 })),
    ) as Json;
  }

  /** The latest GROUPUPDATE for `group` at index >= since, waiting for one if needed. */
  waitForGroup(
    group: string,
    pred: (msg: Json) => boolean = () => true,
    opts: { since?: number; timeoutMs?: number } = {},
  ): Promise<{ at: number; value: Publication; index: number }> {
    return this.received.waitFor(
      (p) => p.topic === "groups" && p.msg["group"] === group && pred(p.msg),
      { ...opts, what: `GROUPUPDATE for ${group}` },
    );
  }

  async stop(): Promise<void> {
    this.sub?.close();
    this.req?.close();
    await this.listening;
  }
}
