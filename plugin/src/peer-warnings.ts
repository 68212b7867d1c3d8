/**
 * Warnings that a peer can cause at will (a bad request, an unknown type, a resync from a
 * host not in the data), rate-limited so that a flood cannot grow the log without bound:
 * in each interval, the first `perPeer` warnings of a peer and the first `total` of all
 * peers are logged; the rest are counted, and at the end of the interval one summary line
 * per peer (the `summaryPeers` peers with most, then one line for the others) says how many
 * were not logged. A peer is a ZeroMQ connection, named by its routing id (hex).
 */
import type { Logger } from "pino";

export interface WarnLimits {
  /** Warnings logged per peer and interval. */
  readonly perPeer: number;
  /** Warnings logged per interval, all peers together. */
  readonly total: number;
  readonly intervalMs: number;
  /** Peers counted one by one per interval; more are counted together. */
  readonly maxPeers: number;
  /** Peers named in the summary; the rest are summed up in one line. */
  readonly summaryPeers: number;
}

export const WARN_LIMITS: WarnLimits = {
  perPeer: 10,
  total: 100,
  intervalMs: 60_000,
  maxPeers: 1000,
  summaryPeers: 10,
};

/** Longest routing id shown (bytes); a peer may choose a longer one. */
const MAX_PEER_BYTES = 32;

/** How a peer is named in logs: its routing id in hex (cut at 32 bytes). */
export function peerName(routingId: Buffer): string {
  const hex = routingId.subarray(0, MAX_PEER_BYTES).toString("hex");
  return routingId.length > MAX_PEER_BYTES ? `${hex}...` : hex;
}

interface Counts {
  logged: number;
  suppressed: number;
}

export class PeerWarnings {
  private readonly limits: WarnLimits;
  private window = new Map<string, Counts>();
  private logged = 0;
  /** Warnings of peers beyond `maxPeers` in this interval (not logged). */
  private others = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: Logger,
    limits: Partial<WarnLimits> = {},
  ) {
    this.limits = { ...WARN_LIMITS, ...limits };
  }

  /** Logs a warning caused by `peer`, or counts it when over the limits. */
  warn(peer: string, fields: Record<string, unknown>, message: string): void {
    this.arm();
    let counts = this.window.get(peer);
    if (!counts) {
      if (this.window.size >= this.limits.maxPeers) {
        this.others++;
        return;
      }
      this.window.set(peer, (counts = { logged: 0, suppressed: 0 }));
    }
    if (counts.logged < this.limits.perPeer && this.logged < this.limits.total) {
      counts.logged++;
      this.logged++;
      this.log.warn({ ...fields, peer }, message);
    } else {
      counts.suppressed++;
    }
  }

  /** Logs the summary of the interval so far and starts a new one. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const seconds = Math.round(this.limits.intervalMs / 1000);
    const over = [...this.window].filter(([, c]) => c.suppressed > 0);
    over.sort((a, b) => b[1].suppressed - a[1].suppressed);
    for (const [peer, c] of over.slice(0, this.limits.summaryPeers)) {
      this.log.warn(
        { peer, suppressed: c.suppressed, logged: c.logged, intervalS: seconds },
        `${c.suppressed} more warnings caused by peer ${peer} were not logged (rate limit: ${this.limits.perPeer} per peer every ${seconds} s)`,
      );
    }
    const rest = over.slice(this.limits.summaryPeers);
    const suppressed = rest.reduce((n, [, c]) => n + c.suppressed, 0) + this.others;
    if (suppressed > 0) {
      this.log.warn(
        { suppressed, intervalS: seconds },
        `${suppressed} more warnings caused by other peers were not logged`,
      );
    }
    this.window = new Map();
    this.logged = 0;
    this.others = 0;
  }

  /** Logs what is left to say and stops the interval's timer. */
  stop(): void {
    this.flush();
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), this.limits.intervalMs);
    this.timer.unref();
  }
}
