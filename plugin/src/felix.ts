/**
 * One Felix host, seen from the plugin: a REQ socket to `<felix ip>:9902`, driven by a
 * single worker so that requests are strictly lockstep. The worker reconciles what Felix
 * has been told with what the data says (destroys, creates, updates), sends the creates
 * of a pending resync, and heartbeats when idle. A reply timeout closes and recreates the
 * socket and resends the host's full state.
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
  type FelixRequest,
} from "./protocol.js";
import { tcp } from "./zmq.js";

export interface FelixConnectionOptions {
  readonly host: string;
  readonly ip: string;
  readonly port: number;
  readonly timeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly logger: Logger;
}

export type Outcome = { kind: "reply"; rc: string; message: string } | { kind: "timeout" };

interface PendingResync {
  readonly id: string;
  readonly notBefore: number;
  readonly snapshot: Array<[string, EndpointView]>;
  /** Make the snapshot the desired state once sent (resync-only mode). */
  readonly adopt: boolean;
  readonly refused: Set<string>;
  next: number;
}

type Action =
  | { kind: "resync"; id: string; req: FelixRequest }
  | { kind: "create" | "update"; id: string; view: EndpointView; req: FelixRequest }
  | { kind: "destroy"; id: string; req: FelixRequest }
  | { kind: "heartbeat"; req: FelixRequest };

export class FelixConnection {
  readonly host: string;
  readonly ip: string;
  private readonly port: number;
  private readonly timeoutMs: number;
  private readonly heartbeatMs: number;
  private readonly log: Logger;
  private socket: Request;
  /** What Felix has been told and acknowledged. */
  private readonly told = new Map<string, EndpointView>();
  /** Endpoints to (re)send as ENDPOINTCREATED whatever `told` says (after a timeout). */
  private readonly resend = new Set<string>();
  /** Creates that Felix refused (INVALID): not known to it, not retried until they change. */
  private readonly refused = new Map<string, EndpointView>();
  private desired = new Map<string, EndpointView>();
  private resync: PendingResync | null = null;
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
    });
    s.connect(tcp(this.ip, this.port));
    this.socketGeneration++;
    this.log.debug({ generation: this.socketGeneration }, "REQ socket connected");
    return s;
  }

  /** Sets the endpoints this host should have; the worker sends the difference. */
  setDesired(desired: Map<string, EndpointView>): void {
    this.desired = desired;
    this.kick();
  }

  /** Endpoints the plugin would announce in a resync now. */
  snapshot(): Array<[string, EndpointView]> {
    return [...this.desired.entries()];
  }

  /**
   * Schedules the creates of a resync (already answered with `snapshot.length`) to start
   * after `delayMs`. A newer resync replaces an older one not yet finished. With `adopt`,
   * the snapshot becomes the desired state once sent (the data is only read at resyncs).
   */
  startResync(
    id: string,
    snapshot: Array<[string, EndpointView]>,
    delayMs: number,
    adopt = false,
  ): void {
    if (this.resync) {
      this.log.warn(
        { abandoned: this.resync.id, sent: this.resync.next, of: this.resync.snapshot.length },
        "new resync replaces an unfinished one",
      );
    }
    this.resync = {
      id,
      notBefore: Date.now() + delayMs,
      snapshot,
      adopt,
      refused: new Set(),
      next: 0,
    };
    if (snapshot.length === 0) this.finishResync();
    this.kick();
  }

  private finishResync(): void {
    const r = this.resync;
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
    this.resync = null;
    this.log.info({ resyncId: r.id, endpoints: r.snapshot.length }, "resync sent");
  }

  private kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private nextAction(now: number): Action | { kind: "wait"; untilMs: number } {
    const r = this.resync;
    if (r && now >= r.notBefore) {
      const entry = r.snapshot[r.next];
      if (entry) {
        return { kind: "resync", id: entry[0], req: endpointCreated(entry[0], entry[1], r.id) };
      }
    }
    for (const id of this.told.keys()) {
      if (!this.desired.has(id)) return { kind: "destroy", id, req: endpointDestroyed(id) };
    }
    for (const [id, view] of this.desired) {
      const known = this.told.get(id);
      const refused = this.refused.get(id);
      if (known === undefined && refused !== undefined && sameView(refused, view)) continue;
      if (known === undefined || this.resend.has(id)) {
        return { kind: "create", id, view, req: endpointCreated(id, view, null) };
      }
      if (!sameView(known, view)) {
        return { kind: "update", id, view, req: endpointUpdated(id, view) };
      }
    }
    const heartbeatDue = this.lastSend + this.heartbeatMs;
    if (now >= heartbeatDue) return { kind: "heartbeat", req: heartbeat() };
    const until = r ? Math.min(r.notBefore, heartbeatDue) : heartbeatDue;
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
      const outcome = await this.exchange(action.req);
      if (this.closed) return;
      this.apply(action, outcome);
    }
  }

  private async exchange(req: FelixRequest): Promise<Outcome | "closed"> {
    this.lastSend = Date.now();
    this.log.debug({ req }, "to felix");
    try {
      await this.socket.send(JSON.stringify(req));
      const [frame] = await this.socket.receive();
      const reply = parseIncoming(frame);
      let outcome: Outcome;
      if (!reply.ok) {
        this.log.warn({ type: req.type, problem: reply.message }, "unreadable reply from felix");
        outcome = { kind: "reply", rc: "UNREADABLE", message: reply.message };
      } else {
        const rc = typeof reply.body["rc"] === "string" ? reply.body["rc"] : "";
        const message = typeof reply.body["message"] === "string" ? reply.body["message"] : "";
        if (reply.type !== req.type) {
          this.log.warn({ sent: req.type, got: reply.type }, "felix replied with another type");
        }
        outcome = { kind: "reply", rc, message };
      }
      return outcome;
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

  private apply(action: Action, outcome: Outcome | "closed"): void {
    if (outcome === "closed") return;
    if (outcome.kind === "timeout") {
      if (action.kind === "destroy") {
        // Felix <= 0.12 never answers a destroy of an endpoint it does not know.
        this.told.delete(action.id);
      }
      for (const id of this.desired.keys()) this.resend.add(id);
      return;
    }
    const { rc, message } = outcome;
    switch (action.kind) {
      case "heartbeat":
        if (rc !== "SUCCESS") this.log.warn({ rc, message }, "heartbeat refused by felix");
        return;
      case "resync": {
        const r = this.resync;
        if (!r) return;
        if (rc !== "SUCCESS") {
          this.log.warn({ rc, message, req: action.req }, "felix refused a resync create");
          if (rc === "INVALID") r.refused.add(action.id);
        }
        r.next++;
        if (r.next >= r.snapshot.length) this.finishResync();
        return;
      }
      case "destroy":
        if (rc !== "SUCCESS") this.log.warn({ rc, message, id: action.id }, "destroy refused");
        else this.log.info({ id: action.id }, "endpoint destroyed on felix");
        this.told.delete(action.id);
        return;
      case "update":
      case "create":
        if (action.kind === "update" && rc === "NOTEXIST") {
          this.log.warn({ id: action.id }, "felix does not know the endpoint; creating it");
          this.told.delete(action.id);
          return;
        }
        this.resend.delete(action.id);
        if (rc !== "SUCCESS") {
          this.log.error({ rc, message, req: action.req }, `felix refused ${action.req.type}`);
          if (action.kind === "create" && rc === "INVALID") {
            // Felix does not have it: never destroy it, and do not retry the same content.
            this.refused.set(action.id, action.view);
            this.told.delete(action.id);
            return;
          }
        } else {
          this.log.info({ id: action.id, type: action.req.type }, "endpoint sent to felix");
        }
        this.refused.delete(action.id);
        this.told.set(action.id, action.view);
        return;
    }
  }

  /** True when Felix has been told everything (for tests and the bench). */
  get settled(): boolean {
    if (this.resync) return false;
    if (this.resend.size > 0) return false;
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
