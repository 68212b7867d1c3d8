/**
 * The network API: answers the ACL Manager's GETGROUPS on 9903 and publishes groups on
 * 9904 (topic `groups`): every change at once; every group when GETGROUPS asks, when a
 * subscriber (re)joins, and rarely as a safety net. A `networkheartbeat` every 10 s keeps
 * the ACL Manager alive (it exits after 65 s of silence) without republishing the groups:
 * the ACL Manager 0.10.2 answers every group update by resending every endpoint's ACLs,
 * and Felix 0.10.2 reprograms each of them (about a second an endpoint), so a frequent
 * full republish kept Felix busy and delayed real policy changes by seconds.
 */
import type { Logger } from "pino";
import { Router, XPublisher } from "zeromq";
import { danglingRules, planGroups, type GroupStep, type SentGroup } from "./groups.js";
import { PeerWarnings, type WarnLimits } from "./peer-warnings.js";
import { groupsOf, type Group, type State } from "./state.js";
import {
  GROUP_UPDATE_INTERVAL_MS,
  groupUpdate,
  heartbeat,
  invalidReply,
  NETWORK_HEARTBEAT_MS,
  REPUBLISH_MS,
  TOPIC_GROUPS,
  TOPIC_HEARTBEAT,
  type GroupUpdate,
} from "./protocol.js";
import { DataStore, storeTuning, type DataStoreTuning } from "./store.js";
import { watchSubscriptions } from "./subscriptions.js";
import {
  bindWithRetry,
  MAX_REQUEST_BYTES,
  SendQueue,
  serveRouter,
  tcp,
  type Handled,
  type Peer,
} from "./zmq.js";

export interface NetworkPluginOptions extends DataStoreTuning {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly bind?: string;
  /** GETGROUPS port (default 9903). */
  readonly groupsPort?: number;
  /** PUB port (default 9904). */
  readonly publishPort?: number;
  /** Republish every group this often, as a safety net (default REPUBLISH_MS). */
  readonly republishIntervalMs?: number;
  /** Publish a `networkheartbeat` this often (default NETWORK_HEARTBEAT_MS). */
  readonly networkHeartbeatMs?: number;
  /**
   * GETGROUPS publishes every group at once, but at most once per this interval; requests
   * in between share one publication at its end (default 1000 ms).
   */
  readonly getGroupsIntervalMs?: number;
  /**
   * Wait after a subscription before publishing every group for it, so that the GETGROUPS
   * an ACL Manager sends right after subscribing shares that publication (default
   * JOIN_DELAY_MS).
   */
  readonly joinDelayMs?: number;
  /**
   * A change of the groups is published at once, then at most once per this interval: the
   * changes in between share one publication at its end (default GROUP_UPDATE_INTERVAL_MS).
   */
  readonly groupUpdateIntervalMs?: number;
  /** Rate limits of the warnings a peer can cause (default WARN_LIMITS). */
  readonly peerWarnings?: Partial<WarnLimits>;
}

/** The default of `joinDelayMs`. */
const JOIN_DELAY_MS = 100;

export class NetworkPlugin {
  private readonly opts: NetworkPluginOptions;
  private readonly log: Logger;
  private readonly store: DataStore;
  private router: Router | null = null;
  private pub: XPublisher | null = null;
  private watching: Promise<void> | null = null;
  private pubQueue: SendQueue | null = null;
  private serving: Promise<void> | null = null;
  private republishTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** The groups the ACL Manager holds, as published (those with members). */
  private known = new Map<string, SentGroup>();
  /** The groups the data says, with their full policy. */
  private target = new Map<string, Group>();
  private lastFullPublish = -Infinity;
  private fullPublishTimer: NodeJS.Timeout | null = null;
  private lastChangePublish = -Infinity;
  private changeTimer: NodeJS.Timeout | null = null;
  private warnedDangling = "";
  private stopping = false;
  private readonly warnings: PeerWarnings;

  constructor(opts: NetworkPluginOptions) {
    this.opts = opts;
    this.log =
      opts.logger.bindings()["role"] === "network"
        ? opts.logger
        : opts.logger.child({ role: "network" });
    this.warnings = new PeerWarnings(this.log, opts.peerWarnings);
    this.store = new DataStore({
      dir: opts.dataDir,
      logger: this.log,
      ...storeTuning(opts),
    });
    this.store.on("change", (state) => this.onState(state));
  }

  get endpoints(): { groups: string; publish: string } {
    const bind = this.opts.bind ?? "0.0.0.0";
    return {
      groups: tcp(bind, this.opts.groupsPort ?? 9903),
      publish: tcp(bind, this.opts.publishPort ?? 9904),
    };
  }

  async start(): Promise<void> {
    // XPUB: the subscriptions are read (subscriptions.ts); allSubs: a subscriber that
    // reconnects is seen again even while another holds the same subscription.
    const pub = new XPublisher({ linger: 0 });
    pub.verbosity = "allSubs";
    await bindWithRetry(pub, this.endpoints.publish, this.log);
    this.pub = pub;
    this.pubQueue = new SendQueue(pub, this.log);
    const router = new Router({ linger: 0, maxMessageSize: MAX_REQUEST_BYTES });
    try {
      await bindWithRetry(router, this.endpoints.groups, this.log);
    } catch (err) {
      pub.close();
      throw err;
    }
    this.router = router;
    await this.store.start();
    this.onState(this.store.state);
    this.serving = serveRouter(
      router,
      (req, peer) => this.handle(req, peer),
      this.log,
      undefined,
      this.warnings,
    );
    this.watching = watchSubscriptions(
      pub,
      TOPIC_GROUPS,
      () => this.publishAllSoon("subscribed", this.opts.joinDelayMs ?? JOIN_DELAY_MS),
      this.log,
    );
    const every = this.opts.republishIntervalMs ?? REPUBLISH_MS;
    this.republishTimer = setInterval(() => this.publishAll("periodic"), every);
    const beat = this.opts.networkHeartbeatMs ?? NETWORK_HEARTBEAT_MS;
    this.heartbeatTimer = setInterval(() => this.send(TOPIC_HEARTBEAT, heartbeat()), beat);
    this.log.info(this.endpoints, "network API listening");
  }

  /** Resolves once every publication so far has been handed to ZeroMQ (tests, bench). */
  whenSent(): Promise<void> {
    return this.pubQueue?.drained() ?? Promise.resolve();
  }

  /** A summary for a status log line (SIGUSR2). */
  status(): Record<string, unknown> {
    return { groups: this.target.size, held: this.known.size };
  }

  /** Reads the data directory again, every file (SIGHUP). */
  reload(): Promise<void> {
    return this.store.reload();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.store.stop();
    if (this.republishTimer) clearInterval(this.republishTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.fullPublishTimer) clearTimeout(this.fullPublishTimer);
    if (this.changeTimer) clearTimeout(this.changeTimer);
    this.republishTimer = this.heartbeatTimer = this.fullPublishTimer = this.changeTimer = null;
    this.router?.close();
    await this.serving;
    this.pub?.close();
    await this.watching;
    this.warnings.stop();
    this.log.info("network API stopped");
  }

  private handle(req: { type: string }, peer: Peer): Handled {
    if (req.type === "GETGROUPS") {
      return {
        reply: { type: "GETGROUPS", rc: "SUCCESS", message: "" },
        after: () => this.publishAllSoon("GETGROUPS", 0),
      };
    }
    if (req.type === "HEARTBEAT")
      return { reply: { type: "HEARTBEAT", rc: "SUCCESS", message: "" } };
    peer.warn({ type: req.type }, "unknown request type");
    return { reply: invalidReply(req.type, `unknown request type ${JSON.stringify(req.type)}`) };
  }

  private send(topic: string, msg: GroupUpdate | { type: "HEARTBEAT"; issued: number }): void {
    if (!this.pubQueue) return;
    void this.pubQueue.send([topic, JSON.stringify(msg)]);
  }

  private publishSteps(steps: readonly GroupStep[]): void {
    for (const st of steps) this.send(TOPIC_GROUPS, groupUpdate(st.name, st.members, st.policy));
  }

  /**
   * Every group, after `delayMs` (a subscription: the GETGROUPS the ACL Manager sends next
   * shares it), and at most once per getGroupsIntervalMs: a flood of requests or
   * subscriptions shares publications.
   */
  private publishAllSoon(why: string, delayMs: number): void {
    if (this.fullPublishTimer) return; // one is already due
    const every = this.opts.getGroupsIntervalMs ?? 1000;
    const wait = Math.max(delayMs, this.lastFullPublish + every - Date.now());
    if (wait <= 0) {
      this.publishAll(why);
      return;
    }
    this.log.debug({ why, inMs: wait }, "full publication coalesced with the next one");
    this.fullPublishTimer = setTimeout(() => {
      this.fullPublishTimer = null;
      this.publishAll(why);
    }, wait);
  }

  private publishAll(why: string): void {
    this.lastFullPublish = Date.now();
    // With no groups there is nothing to say: the heartbeat timer keeps the ACL Manager alive.
    // In an order that is safe for an ACL Manager that holds nothing yet.
    const { steps, known } = planGroups(new Map(), this.target);
    this.publishSteps(steps);
    this.known = known;
    this.log.debug(
      { why, groups: this.target.size, updates: steps.length },
      "published all groups",
    );
  }

  private onState(state: State): void {
    if (this.stopping) return;
    this.target = groupsOf(state);
    const dangling = danglingRules(this.target);
    const text = JSON.stringify([...dangling]);
    if (text !== this.warnedDangling && dangling.size > 0) {
      this.log.warn(
        { groups: Object.fromEntries(dangling) },
        "rules naming a group without members are not published until it has members",
      );
    }
    this.warnedDangling = text;
    this.publishChangesSoon();
  }

  /** The groups' changes now, or at the end of the interval if one was published lately. */
  private publishChangesSoon(): void {
    if (this.changeTimer) return; // due already: it publishes the newest groups
    const every = this.opts.groupUpdateIntervalMs ?? GROUP_UPDATE_INTERVAL_MS;
    const wait = this.lastChangePublish + every - Date.now();
    if (wait <= 0) {
      this.publishChanges();
      return;
    }
    this.changeTimer = setTimeout(() => {
      this.changeTimer = null;
      if (!this.stopping) this.publishChanges();
    }, wait);
  }

  private publishChanges(): void {
    const { steps, known } = planGroups(this.known, this.target);
    if (steps.length > 0) this.lastChangePublish = Date.now();
    this.publishSteps(steps);
    this.known = known;
    for (const st of steps) {
      const members = Object.keys(st.members).length;
      if (members === 0) this.log.info({ group: st.name }, "group deleted (no members left)");
      else this.log.info({ group: st.name, members }, "group published");
    }
  }
}
