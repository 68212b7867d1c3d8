/**
 * One Felix host, seen from the plugin: a REQ socket to `<felix ip>:9902`, driven by a
 * single worker so that requests are strictly lockstep. The worker reconciles what Felix
 * has acknowledged with what the data says (destroys, creates, updates), sends the creates
 * of the newest promised resync (a newer RESYNCSTATE supersedes an unfinished one), and
 * heartbeats when idle.
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
import { FelixLedger, type Outcome } from "./felix-ledger.js";
import type { EndpointView } from "./state.js";
import { parseIncoming, preview, type FelixRequest } from "./protocol.js";
import { tcp } from "./zmq.js";

export type { Outcome } from "./felix-ledger.js";

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
}

export class FelixConnection {
  readonly host: string;
  readonly ip: string;
  private readonly port: number;
  private readonly timeoutMs: number;
  private readonly heartbeatMs: number;
  private readonly log: Logger;
  private readonly ledger: FelixLedger;
  private socket: Request;
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
    this.log = opts.logger.child({ felix: opts.host, felixIp: opts.ip });
    this.ledger = new FelixLedger({
      log: this.log,
      retryBaseMs: opts.retryBaseMs ?? 250,
      retryMaxMs: opts.retryMaxMs ?? 10_000,
    });
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

  /** Sets the endpoints this host should have; the worker sends the difference. */
  setDesired(desired: Map<string, EndpointView>): void {
    this.ledger.setDesired(desired);
    this.kick();
  }

  /** Sets what one endpoint of this host should be. */
  setDesiredOne(id: string, view: EndpointView): void {
    this.ledger.setDesiredOne(id, view);
    this.kick();
  }

  /** This host should no longer have the endpoint. */
  deleteDesired(id: string): void {
    if (this.ledger.deleteDesired(id)) this.kick();
  }

  /** Endpoints the plugin would announce in a resync now. */
  snapshot(): Array<[string, EndpointView]> {
    return this.ledger.snapshot();
  }

  /**
   * Felix asked for a newer resync (`byId`): the unfinished one's remaining creates are
   * dropped at once, never sent with its stale id.
   */
  supersedeResync(byId: string): void {
    this.ledger.supersedeResync(byId);
  }

  /**
   * Schedules the creates of a resync (already answered with `snapshot.length`) to start
   * after `delayMs`, in place of any unfinished one. With `adopt`, the snapshot becomes the
   * desired state once sent (the data is only read at resyncs).
   */
  startResync(
    id: string,
    snapshot: Array<[string, EndpointView]>,
    delayMs: number,
    adopt = false,
  ): void {
    this.ledger.startResync(id, snapshot, delayMs, adopt);
    this.kick();
  }

  /** True when Felix has been told everything (for tests and the bench). */
  get settled(): boolean {
    return this.ledger.settled;
  }

  private kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async run(): Promise<void> {
    this.lastSend = Date.now();
    while (!this.closed) {
      const action = this.ledger.nextAction(Date.now(), this.lastSend + this.heartbeatMs);
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
      this.ledger.apply(action, outcome, answeredBefore);
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.kick();
    this.socket.close();
    await this.loop;
  }
}
