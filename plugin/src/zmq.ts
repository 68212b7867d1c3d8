/** Small helpers around zeromq.js v6 sockets. */
import type { Logger } from "pino";
import type { Router, Writable } from "zeromq";
import { PeerWarnings, peerName } from "./peer-warnings.js";
import { invalidReply, parseIncoming, type Incoming } from "./protocol.js";

export type Frames = Array<Buffer | string>;

/**
 * zeromq.js allows one send in flight per socket: this chains them. A failed send is
 * logged, never thrown (a peer that went away must not take the plugin down).
 */
export class SendQueue {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: Writable,
    private readonly log: Logger,
  ) {}

  send(frames: Frames): Promise<void> {
    const next = this.tail.then(
      () => this.socket.send(frames),
      () => undefined,
    );
    this.tail = next.catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message }, "send failed");
    });
    return this.tail;
  }

  /** Resolves once everything sent so far has been handed to the socket. */
  drained(): Promise<void> {
    return this.tail;
  }
}

/** Largest request accepted on the plugin's sockets (64 KiB); ZeroMQ drops a larger one. */
export const MAX_REQUEST_BYTES = 65_536;

export function tcp(address: string, port: number): string {
  return `tcp://${address}:${port}`;
}

/** A reply, and optionally work to start once the reply is on its way. */
export interface Handled {
  readonly reply: Readonly<Record<string, unknown>>;
  readonly after?: () => void;
}

/** The peer a request came from: its name, and its warnings (rate-limited). */
export interface Peer {
  readonly name: string;
  warn(fields: Record<string, unknown>, message: string): void;
}

export type Handler = (req: Incoming & { ok: true }, peer: Peer) => Handled | Promise<Handled>;

/**
 * Serves REQ clients on a ROUTER socket until it is closed. Frames are
 * `[identity, ..., empty, json]`; replies reuse the envelope. Garbage gets an INVALID reply
 * carrying the request's `type` when it had one. What a peer causes is warned about through
 * `warnings` (rate-limited per peer).
 */
export async function serveRouter(
  router: Router,
  handler: Handler,
  log: Logger,
  queue: SendQueue = new SendQueue(router, log),
  warnings: PeerWarnings = new PeerWarnings(log),
): Promise<void> {
  for (;;) {
    let frames: Buffer[];
    try {
      frames = await router.receive();
    } catch (err) {
      if (router.closed) return;
      log.warn({ err: (err as Error).message }, "receive failed");
      continue;
    }
    const empty = frames.findIndex((f, i) => i > 0 && f.length === 0);
    const split = empty > 0 ? empty + 1 : 1;
    const envelope = frames.slice(0, split);
    const body = frames.slice(split);
    const name = peerName(frames[0] ?? Buffer.alloc(0));
    const peer: Peer = { name, warn: (fields, message) => warnings.warn(name, fields, message) };
    let handled: Handled;
    if (body.length !== 1) {
      handled = {
        reply: invalidReply(null, `expected one JSON frame, got ${body.length} frames`),
      };
    } else {
      const req = parseIncoming(body[0]);
      if (!req.ok) {
        peer.warn({ message: req.message }, "invalid request");
        handled = { reply: invalidReply(req.type, req.message) };
      } else {
        try {
          handled = await handler(req, peer);
        } catch (err) {
          log.error({ type: req.type, err: (err as Error).message }, "request handler failed");
          handled = { reply: invalidReply(req.type, `internal error: ${(err as Error).message}`) };
        }
      }
    }
    await queue.send([...envelope, JSON.stringify(handled.reply)]);
    if (handled.after) {
      try {
        handled.after();
      } catch (err) {
        log.error({ err: (err as Error).message }, "post-reply action failed");
      }
    }
  }
}

/**
 * Binds, retrying while the address is still held (a socket closed a moment ago by a
 * previous instance in this process is released asynchronously).
 */
export async function bindWithRetry(
  socket: { bind(address: string): Promise<void> },
  address: string,
  log: Logger,
  totalMs = 3000,
): Promise<void> {
  const deadline = Date.now() + totalMs;
  for (;;) {
    try {
      await socket.bind(address);
      return;
    } catch (err) {
      const inUse = /in use/i.test((err as Error).message);
      if (!inUse || Date.now() > deadline) throw err;
      log.debug({ address }, "address still in use; retrying bind");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
