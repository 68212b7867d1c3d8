/**
 * What one Felix host is owed: the endpoints it has acknowledged, those it refused, the
 * retries and their backoff, the promised resyncs, and from these the next request to send
 * (`nextAction`) and what its outcome means (`apply`). No socket here: `felix.ts` talks.
 */
import type { Logger } from "pino";
import { sameAddressing, sameView, type EndpointView } from "./state.js";
import {
  endpointCreated,
  endpointDestroyed,
  heartbeat,
  endpointUpdated,
  type FelixRequest,
} from "./protocol.js";

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

export type Action =
  | { kind: "resync"; resyncId: string; id: string; view: EndpointView; req: FelixRequest }
  | { kind: "create" | "update"; id: string; view: EndpointView; req: FelixRequest }
  | { kind: "destroy"; id: string; req: FelixRequest; replace?: boolean }
  | { kind: "heartbeat"; probe: boolean; req: FelixRequest };

export interface FelixLedgerOptions {
  readonly log: Logger;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
}

export class FelixLedger {
  private readonly log: Logger;
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
  /** The promised resync being sent: only the newest one (Felix ignores older ids). */
  private resync: PendingResync | null = null;
  /** The socket is fresh after a timeout: probe with a HEARTBEAT before anything else. */
  private probe: Backoff | null = null;

  constructor(private readonly opts: FelixLedgerOptions) {
    this.log = opts.log;
  }

  private backoff(prev: Backoff | undefined, now: number): Backoff {
    const failures = (prev?.failures ?? 0) + 1;
    const delay = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** (failures - 1));
    return { failures, notBefore: now + delay };
  }

  /** Sets the endpoints this host should have. */
  setDesired(desired: Map<string, EndpointView>): void {
    this.desired = desired;
  }

  /** Sets what one endpoint of this host should be. */
  setDesiredOne(id: string, view: EndpointView): void {
    this.desired.set(id, view);
  }

  /** This host should no longer have the endpoint; returns whether it had it. */
  deleteDesired(id: string): boolean {
    return this.desired.delete(id);
  }

  /** Endpoints the plugin would announce in a resync now. */
  snapshot(): Array<[string, EndpointView]> {
    return [...this.desired.entries()];
  }

  /**
   * Drops the unfinished resync, if any, because Felix asked for a newer one (`byId`): Felix
   * only counts creates carrying its newest resync id (it logs the others as "invalid
   * resync"), so the old one's remaining creates are never sent.
   */
  supersedeResync(byId: string): void {
    const r = this.resync;
    if (!r || r.id === byId) return;
    this.resync = null;
    this.log.info(
      { resyncId: r.id, by: byId, dropped: r.snapshot.length - r.next },
      "unfinished resync superseded by a newer one",
    );
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
    const r: PendingResync = {
      id,
      notBefore: Date.now() + delayMs,
      snapshot,
      adopt,
      refused: new Set(),
      next: 0,
      failures: 0,
    };
    this.supersedeResync(id);
    this.resync = r;
    if (snapshot.length === 0) this.finishResync();
  }

  private finishResync(): void {
    const r = this.resync;
    if (!r) return;
    this.resync = null;
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
  }

  /** The next request to send, or how long to wait; a heartbeat is due at `heartbeatDue`. */
  nextAction(now: number, heartbeatDue: number): Action | { kind: "wait"; untilMs: number } {
    if (this.probe) {
      if (now >= this.probe.notBefore) return { kind: "heartbeat", probe: true, req: heartbeat() };
      return { kind: "wait", untilMs: this.probe.notBefore };
    }
    let until = heartbeatDue;
    const r = this.resync;
    if (r) {
      const entry = r.snapshot[r.next];
      if (entry && now >= r.notBefore) {
        return {
          kind: "resync",
          resyncId: r.id,
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
      if (known !== undefined && !sameAddressing(known, view)) {
        // Felix 0.10 updates an endpoint's from-chain in place and then trims it by content,
        // which deletes the first equal rule, not the last: the old address stays allowed
        // and the chain's final DROP goes. A destroy and a create program it afresh.
        return { kind: "destroy", id, req: endpointDestroyed(id), replace: true };
      }
      if (known === undefined || this.resend.has(id)) {
        return { kind: "create", id, view, req: endpointCreated(id, view, null) };
      }
      return { kind: "update", id, view, req: endpointUpdated(id, view) };
    }
    if (now >= heartbeatDue) return { kind: "heartbeat", probe: false, req: heartbeat() };
    return { kind: "wait", untilMs: until };
  }

  /** What the outcome of `action` means (`answeredBefore`: Felix had answered on its socket). */
  apply(action: Action, outcome: Outcome, answeredBefore: boolean): void {
    const now = Date.now();
    if (outcome.kind === "timeout") {
      this.timedOut(action, answeredBefore, now);
      return;
    }
    this.replied(action, outcome, now);
  }

  /** No reply: the socket is recreated, probed, and the host's state resent. */
  private timedOut(action: Action, answeredBefore: boolean, now: number): void {
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
    const r = this.currentResync(action);
    if (r) r.failures++;
  }

  /** A reply: acknowledged, answered (INVALID, NOTEXIST) or not an acknowledgement. */
  private replied(action: Action, outcome: Outcome & { kind: "reply" }, now: number): void {
    const { rc, message } = outcome;
    const acked = outcome.type === action.req.type && rc === "SUCCESS";
    const answered = outcome.type === action.req.type && (rc === "INVALID" || rc === "NOTEXIST");
    if (action.kind === "heartbeat") {
      // Felix 0.10 answers a HEARTBEAT with its type alone, no rc.
      const alive = outcome.type === "HEARTBEAT" && (rc === "SUCCESS" || rc === "");
      if (!alive) this.log.warn({ rc, message }, "heartbeat not acknowledged by felix");
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
        const r = this.currentResync(action);
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
        // The outcome of a create of a superseded resync means nothing any more.
        const r = this.currentResync(action);
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
        if (acked && action.replace) {
          this.log.info({ id: action.id }, "address or MAC changed: destroyed, to be re-created");
        } else if (acked) this.log.info({ id: action.id }, "endpoint destroyed on felix");
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

  /** The resync `action` belongs to, if it is still the one being sent. */
  private currentResync(action: Action): PendingResync | null {
    const r = this.resync;
    return action.kind === "resync" && r?.id === action.resyncId ? r : null;
  }

  /** True when Felix has been told everything (for tests and the bench). */
  get settled(): boolean {
    if (this.resync || this.probe) return false;
    if (this.resend.size > 0 || this.retry.size > 0) return false;
    for (const id of this.told.keys()) if (!this.desired.has(id)) return false;
    for (const [id, view] of this.desired) {
      const t = this.told.get(id) ?? this.refused.get(id);
      if (!t || !sameView(t, view)) return false;
    }
    return true;
  }
}
