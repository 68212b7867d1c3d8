/**
 * Subscriptions arriving at the network API's XPUB socket. ZeroMQ's PUB/SUB drops whatever
 * is published before a subscriber's subscription has arrived, so a publication made when
 * the ACL Manager (re)connects can be lost. An XPUB socket hands each subscription to the
 * application: when one covers the `groups` topic, every group is published again for it,
 * right away, instead of on a short timer that makes Felix reprogram every endpoint's ACLs.
 */
import type { Logger } from "pino";
import type { XPublisher } from "zeromq";

/** A subscription message: byte 1 (subscribe) or 0 (unsubscribe), then the topic prefix. */
interface SubscriptionMessage {
  readonly subscribe: boolean;
  readonly prefix: string;
}

/** Parses one frame an XPUB socket received, or null for anything else. */
function parseSubscription(frame: Buffer | undefined): SubscriptionMessage | null {
  if (!frame || frame.length === 0) return null;
  const kind = frame[0];
  if (kind !== 0 && kind !== 1) return null;
  return { subscribe: kind === 1, prefix: frame.subarray(1).toString("utf8") };
}

/**
 * Reads the socket's subscription messages until it is closed (a failed read that is not
 * the close is logged and the loop goes on, as serveRouter's does); calls `onJoin` for each
 * subscription whose prefix covers `topic`.
 */
export async function watchSubscriptions(
  socket: XPublisher,
  topic: string,
  onJoin: (prefix: string) => void,
  log: Logger,
): Promise<void> {
  for (;;) {
    let frames: Buffer[];
    try {
      frames = await socket.receive();
    } catch (err) {
      if (socket.closed) return;
      log.warn({ err: (err as Error).message }, "subscription read failed");
      continue;
    }
    const sub = parseSubscription(frames[0]);
    if (sub?.subscribe && topic.startsWith(sub.prefix)) onJoin(sub.prefix);
  }
}
