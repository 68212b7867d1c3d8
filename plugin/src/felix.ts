/**
 * One Felix host, seen from the plugin: a REQ socket to `<felix ip>:9902`, driven by a
 * single worker so that requests are strictly lockstep. The worker reconciles what Felix
 * has acknowledged with what the data says (destroys, creates, updates), sends the creates
 * of every promised resync, and heartbeats when idle.
 *
 * Delivery is at least once: only a reply of the request's own type with rc SUCCESS counts.
 * Anything else (garbage, another type, an unknown rc) leaves the endpoint owed and it is
 * sent again with exponential backoff; per endpoint only its newest state is ever owed, so
 * its messages stay in order. INVALID is Felix refusing the content: not retried until the
 * content changes. A reply timeout closes and recreates the socket; the next request is a
 * HEARTBEAT probe (with backoff) and, once Felix answers, the host's full state is resent.
 * A destroy that timed out stays owed; it is dropped only when it times out right after
 * Felix answered on the same socket (Felix <= 0.12 never answers a destroy of an endpoint it
 * does not know).
 */
import type { Logger } from "pino";
import { Request } from "zeromq";
import { sameView, type EndpointView } from "./state.js";
import {
  endpointCreated,
  endpointDestroyed,
  endpointUpdated,
  heartbeat,
  parseIncoming,
  preview,
  type FelixRequest,
} from "./protocol.js";
import { tcp } from "./zmq.js";

/** Largest reply accepted from Felix (64 KiB); its replies are a few hundred bytes. */
export const MAX_REPLY_BYTES = 65_536;

export interface FelixConnectionOptions {
  readonly host: string;
  readonly ip: string;
  readonly port: number;
  readonly timeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly logger: Logger;
  /** First retry delay after a failed request; doubles per failure (default 250 ms). */
  readonly retryBaseMs?: number;
  /** Longest retry delay (default 10000 ms). */
  readonly retryMaxMs?: number;
  /** Promised resyncs that may be unfinished at once; more are declined (default 2). */
  readonly maxPendingResyncs?: number;
}

export type Outcome =
  { kind: "reply"; type: unknown; rc: string; message: string } | { kind: "timeout" };

interface PendingResync {
  readonly id: string;
  notBefore: number;
  readonly snapshot: Array<[string, EndpointView]>;
  /** Make the snapshot the desired state once sent (resync-only mode). */
  readonly adopt: boolean;
  readonly refused: Set<string>;
  next: number;
  failures: number;
}

interface Backoff {
  failures: number;
  notBefore: number;
}

type Action =
  | { kind: "resync"; id: string; view: EndpointView; req: FelixRequest }
  | { kind: "create" | "update"; id: string; view: EndpointView; req: FelixRequest }
  | { kind: "destroy"; id: string; req: FelixRequest }
  | { kind: "heartbeat"; probe: boolean; req: FelixRequest };

export class FelixConnection {
  readonly host: string;
  readonly ip: string;
  private readonly port: number;
  private readonly timeoutMs: number;
  private readonly heartbeatMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly maxPendingResyncs: number;
  private readonly log: Logger;
  private socket: Request;
  /** What Felix has acknowledged (SUCCESS). */
  private readonly told = new Map<string, EndpointView>();
  /** Endpoints to (re)send as ENDPOINTCREATED whatever `told` says (after a timeout). */
  private readonly resend = new Set<string>();
  /** Creates that Felix refused (INVALID): not known to it, not retried until they change. */
  private readonly refused = new Map<string, EndpointView>();
  /** Endpoints whose last request failed: not sent again before `notBefore`. */
  private readonly retry = new Map<string, Backoff>();
  /** Destroys whose last attempt timed out. */
  private readonly destroyTimedOut = new Set<string>();
  private desired = new Map<string, EndpointView>();
  /** Promised resyncs, oldest first; the first one is being sent. */
  private readonly resyncs: PendingResync[] = [];
  /** The socket is fresh after a timeout: probe with a HEARTBEAT before anything else. */
  private probe: Backoff | null = null;
  /** Felix answered something on the current socket. */
  private answeredOnSocket = false;
  private lastSend = 0;
  private closed = false;
  private wake: (() => void) | null = null;
  private wakeTimer: NodeJS.Timeout | null = null;
  private readonly loop: Promise<void>;
  /** Number of sockets created so far (1 + recreations after timeouts). */
  socketGeneration = 0;

  constructor(opts: FelixConnectionOptions) {
    this.host = opts.host;
    this.ip = opts.ip;
    this.port = opts.port;
    this.timeoutMs = opts.timeoutMs;
    this.heartbeatMs = opts.heartbeatIntervalMs;
    this.retryBaseMs = opts.retryBaseMs ?? 250;
    this.retryMaxMs = opts.retryMaxMs ?? 10_000;
    this.maxPendingResyncs = opts.maxPendingResyncs ?? 2;
    this.log = opts.logger.child({ felix: opts.host, felixIp: opts.ip });
    this.socket = this.newSocket();
    this.loop = this.run();
  }

  private newSocket(): Request {
    const s = new Request({
      linger: 0,
      receiveTimeout: this.timeoutMs,
      sendTimeout: this.timeoutMs,
      reconnectInterval: 100,
      reconnectMaxInterval: 2000,
      // A Felix reply is a few hundred bytes; a larger one is dropped by ZeroMQ.
      maxMessageSize: MAX_REPLY_BYTES,
    });
    s.connect(tcp(this.ip, this.port));
    this.socketGeneration++;
    this.answeredOnSocket = false;
    this.log.debug({ generation: this.socketGeneration }, "REQ socket connected");
    return s;
  }

  private backoff(prev: Backoff | undefined, now: number): Backoff {
    const failures = (prev?.failures ?? 0) + 1;
    const delay = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (failures - 1));
    return { failures, notBefore: now + delay };
  }

  /** Sets the endpoints this host should have; the worker sends the difference. */
  setDesired(desired: Map<string, EndpointView>): void {
    this.desired = desired;
    this.kick();
  }

  /** Sets what one endpoint of this host should be. */
  setDesiredOne(id: string, view: EndpointView): void {
    this.desired.set(id, view);
    this.kick();
  }

  /** This host should no longer have the endpoint. */
  deleteDesired(id: string): void {
    if (this.desired.delete(id)) this.kick();
  }

  /** Endpoints the plugin would announce in a resync now. */
  snapshot(): Array<[string, EndpointView]> {
    return [...this.desired.entries()];
  }

  /** Whether a new resync can be promised now (fewer than the limit are unfinished). */
  get acceptsResync(): boolean {
    return this.resyncs.length < this.maxPendingResyncs;
  }

  /**
   * Schedules the creates of a resync (already answered with `snapshot.length`) to start
   * after `delayMs`, behind any resync promised earlier: every promised resync is kept.
   * With `adopt`, the snapshot becomes the desired state once sent (the data is only read
   * at resyncs).
   */
  startResync(
    id: string,
    snapshot: Array<[string, EndpointView]>,
    delayMs: number,
    adopt = false,
  ): void {
    const r: PendingResync = {
      id,
      notBefore: Date.now() + delayMs,
      snapshot,
      adopt,
      refused: new Set(),
      next: 0,
      failures: 0,
    };
    if (this.resyncs.length > 0) {
      this.log.info(
        { resyncId: id, behind: this.resyncs.map((x) => x.id) },
        "resync queued behind an unfinished one",
      );
    }
    this.resyncs.push(r);
    if (snapshot.length === 0 && this.resyncs.length === 1) this.finishResync();
    this.kick();
  }

  private finishResync(): void {
    const r = this.resyncs.shift();
    if (!r) return;
    // Felix now knows exactly the snapshot: it drops whatever the resync did not mention.
    this.told.clear();
    this.refused.clear();
    for (const [id, view] of r.snapshot) {
      if (r.refused.has(id)) this.refused.set(id, view);
      else this.told.set(id, view);
    }
    if (r.adopt) this.desired = new Map(r.snapshot);
    this.resend.clear();
    this.retry.clear();
    this.destroyTimedOut.clear();
    this.log.info({ resyncId: r.id, endpoints: r.snapshot.length }, "resync sent");
    // A queued resync with nothing to send is done as soon as it is reached.
    const following = this.resyncs[0];
    if (following && following.snapshot.length === 0) this.finishResync();
  }

  private kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private nextAction(now: number): Action | { kind: "wait"; untilMs: number } {
    const heartbeatDue = this.lastSend + this.heartbeatMs;
    if (this.probe) {
      if (now >= this.probe.notBefore) return { kind: "heartbeat", probe: true, req: heartbeat() };
      return { kind: "wait", untilMs: this.probe.notBefore };
    }
    let until = heartbeatDue;
    const r = this.resyncs[0];
    if (r) {
      const entry = r.snapshot[r.next];
      if (entry && now >= r.notBefore) {
        return {
          kind: "resync",
          id: entry[0],
          view: entry[1],
          req: endpointCreated(entry[0], entry[1], r.id),
        };
      }
      until = Math.min(until, r.notBefore);
    }
    const due = (id: string): boolean => {
      const b = this.retry.get(id);
      if (!b || now >= b.notBefore) return true;
      until = Math.min(until, b.notBefore);
      return false;
    };
    for (const id of this.told.keys()) {
      if (!this.desired.has(id) && due(id)) {
        return { kind: "destroy", id, req: endpointDestroyed(id) };
      }
    }
    for (const [id, view] of this.desired) {
      const known = this.told.get(id);
      const refused = this.refused.get(id);
      if (known === undefined && refused !== undefined && sameView(refused, view)) continue;
      const owed = known === undefined || this.resend.has(id) || !sameView(known, view);
      if (!owed || !due(id)) continue;
      if (known === undefined || this.resend.has(id)) {
        return { kind: "create", id, view, req: endpointCreated(id, view, null) };
      }
      return { kind: "update", id, view, req: endpointUpdated(id, view) };
    }
    if (now >= heartbeatDue) return { kind: "heartbeat", probe: false, req: heartbeat() };
    return { kind: "wait", untilMs: until };
  }

  private async run(): Promise<void> {
    this.lastSend = Date.now();
    while (!this.closed) {
      const action = this.nextAction(Date.now());
      if (action.kind === "wait") {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.wakeTimer = setTimeout(resolve, Math.max(1, action.untilMs - Date.now()));
        });
        if (this.wakeTimer) clearTimeout(this.wakeTimer);
        this.wakeTimer = null;
        this.wake = null;
        continue;
      }
      const answeredBefore = this.answeredOnSocket;
      const outcome = await this.exchange(action.req);
      if (this.closed || outcome === "closed") return;
      this.apply(action, outcome, answeredBefore);
    }
  }

  private async exchange(req: FelixRequest): Promise<Outcome | "closed"> {
    this.lastSend = Date.now();
    this.log.debug({ req }, "to felix");
    try {
      await this.socket.send(JSON.stringify(req));
      const [frame] = await this.socket.receive();
      this.answeredOnSocket = true;
      const reply = parseIncoming(frame);
      if (!reply.ok) {
        this.log.warn({ type: req.type, problem: reply.message }, "unreadable reply from felix");
        return { kind: "reply", type: null, rc: "", message: reply.message };
      }
      const rc = typeof reply.body["rc"] === "string" ? reply.body["rc"] : "";
      const message = typeof reply.body["message"] === "string" ? reply.body["message"] : "";
      if (reply.type !== req.type) {
        this.log.warn(
          { sent: req.type, got: preview(reply.type) },
          "felix replied with another type",
        );
      }
      return { kind: "reply", type: reply.type, rc: preview(rc), message: preview(message) };
    } catch (err) {
      if (this.closed) return "closed";
      const code = (err as NodeJS.ErrnoException).code;
      this.log.warn(
        { type: req.type, timeoutMs: this.timeoutMs, err: code ?? (err as Error).message },
        "no reply from felix; recreating the socket and resending this host's state",
      );
      this.socket.close();
      this.socket = this.newSocket();
      return { kind: "timeout" };
    }
  }

  private apply(action: Action, outcome: Outcome, answeredBefore: boolean): void {
    const now = Date.now();
    if (outcome.kind === "timeout") {
      this.probe = this.backoff(this.probe ?? undefined, now);
      for (const id of this.desired.keys()) this.resend.add(id);
      if (action.kind === "destroy") {
        if (answeredBefore && this.destroyTimedOut.has(action.id)) {
          // Timed out before, and now again right after Felix answered on a fresh socket:
          // Felix is alive and silent only because it does not know the endpoint (Felix
          // <= 0.12 never answers such a destroy).
          this.log.warn(
            { id: action.id },
            "felix does not know the endpoint it was asked to destroy",
          );
          this.told.delete(action.id);
          this.destroyTimedOut.delete(action.id);
        } else {
          this.destroyTimedOut.add(action.id);
        }
      }
      const r = this.resyncs[0];
      if (action.kind === "resync" && r) r.failures++;
      return;
    }
    const { rc, message } = outcome;
    const acked = outcome.type === action.req.type && rc === "SUCCESS";
    const answered = outcome.type === action.req.type && (rc === "INVALID" || rc === "NOTEXIST");
    if (action.kind === "heartbeat") {
      if (!acked) this.log.warn({ rc, message }, "heartbeat not acknowledged by felix");
      if (action.probe) {
        this.probe = null;
        this.log.info("felix answers again");
      }
      return;
    }
    if (!acked && !answered) {
      // Not an acknowledgement: the same endpoint is owed again after a backoff.
      this.log.warn(
        { rc, message, id: action.id, type: action.req.type },
        "felix did not acknowledge; will send again",
      );
      if (action.kind === "resync") {
        const r = this.resyncs[0];
        if (r) {
          const b = this.backoff({ failures: r.failures, notBefore: 0 }, now);
          r.failures = b.failures;
          r.notBefore = b.notBefore;
        }
      } else {
        this.retry.set(action.id, this.backoff(this.retry.get(action.id), now));
      }
      return;
    }
    if (action.kind !== "resync") {
      this.retry.delete(action.id);
      this.destroyTimedOut.delete(action.id);
    }
    switch (action.kind) {
      case "resync": {
        const r = this.resyncs[0];
        if (!r) return;
        // Felix counts every create of its resync, acknowledged or refused.
        if (!acked) {
          this.log.warn({ rc, message, id: action.id }, "felix refused a resync create");
          r.refused.add(action.id);
        }
        r.failures = 0;
        r.next++;
        if (r.next >= r.snapshot.length) this.finishResync();
        return;
      }
      case "destroy":
        // SUCCESS, or NOTEXIST from a Felix that answers it: either way Felix does not have it.
        if (acked) this.log.info({ id: action.id }, "endpoint destroyed on felix");
        else this.log.warn({ rc, message, id: action.id }, "destroy answered without SUCCESS");
        this.told.delete(action.id);
        return;
      case "update":
      case "create":
        if (rc === "NOTEXIST") {
          this.log.warn({ id: action.id }, "felix does not know the endpoint; creating it");
          this.told.delete(action.id);
          this.resend.add(action.id);
          return;
        }
        this.resend.delete(action.id);
        if (!acked) {
          this.log.error({ rc, message, id: action.id }, `felix refused ${action.req.type}`);
          // Felix does not have it: never destroy it, and do not retry the same content.
          this.refused.set(action.id, action.view);
          this.told.delete(action.id);
          return;
        }
        this.log.info({ id: action.id, type: action.req.type }, "endpoint sent to felix");
        this.refused.delete(action.id);
        this.told.set(action.id, action.view);
        return;
    }
  }

  /** True when Felix has been told everything (for tests and the bench). */
  get settled(): boolean {
    if (this.resyncs.length > 0 || this.probe) return false;
    if (this.resend.size > 0 || this.retry.size > 0) return false;
    for (const id of this.told.keys()) if (!this.desired.has(id)) return false;
    for (const [id, view] of this.desired) {
      const t = this.told.get(id) ?? this.refused.get(id);
      if (!t || !sameView(t, view)) return false;
    }
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.kick();
    this.socket.close();
    await this.loop;
  }
}
