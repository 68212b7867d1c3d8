/**
 * The network API: answers the ACL Manager's GETGROUPS on 9903 and publishes groups on
 * 9904 (topic `groups`), with `networkheartbeat` when there are none, at every change and
 * periodically.
 */
import type { Logger } from "pino";
import { Publisher, Router } from "zeromq";
import { groupsOf, type Group, type State } from "./state.js";
import {
  groupUpdate,
  heartbeat,
  invalidReply,
  TOPIC_GROUPS,
  TOPIC_HEARTBEAT,
  type GroupUpdate,
} from "./protocol.js";
import { DataStore, storeTuning, type DataStoreTuning } from "./store.js";
import { bindWithRetry, SendQueue, serveRouter, tcp, type Handled } from "./zmq.js";

export interface NetworkPluginOptions extends DataStoreTuning {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly bind?: string;
  /** GETGROUPS port (default 9903). */
  readonly groupsPort?: number;
  /** PUB port (default 9904). */
  readonly publishPort?: number;
  /** Republish every group (or a heartbeat) this often (default 30000 ms). */
  readonly republishIntervalMs?: number;
}

function groupPrint(g: Group): string {
  const members = Object.keys(g.members)
    .sort()
    .map((id) => [id, g.members[id]]);
  return JSON.stringify([members, g.policy]);
}

export class NetworkPlugin {
  private readonly opts: NetworkPluginOptions;
  private readonly log: Logger;
  private readonly store: DataStore;
  private router: Router | null = null;
  private pub: Publisher | null = null;
  private pubQueue: SendQueue | null = null;
  private serving: Promise<void> | null = null;
  private republishTimer: NodeJS.Timeout | null = null;
  /** The groups as last published, by name. */
  private published = new Map<string, { group: Group; print: string }>();

  constructor(opts: NetworkPluginOptions) {
    this.opts = opts;
    this.log =
      opts.logger.bindings()["role"] === "network"
        ? opts.logger
        : opts.logger.child({ role: "network" });
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
    const pub = new Publisher({ linger: 0 });
    await bindWithRetry(pub, this.endpoints.publish, this.log);
    this.pub = pub;
    this.pubQueue = new SendQueue(pub, this.log);
    const router = new Router({ linger: 0 });
    try {
      await bindWithRetry(router, this.endpoints.groups, this.log);
    } catch (err) {
      pub.close();
      throw err;
    }
    this.router = router;
    await this.store.start();
    this.onState(this.store.state);
    this.serving = serveRouter(router, (req) => this.handle(req), this.log);
    const every = this.opts.republishIntervalMs ?? 30_000;
    this.republishTimer = setInterval(() => this.publishAll("periodic"), every);
    this.log.info(this.endpoints, "network API listening");
  }

  /** Reads the data directory again, every file (SIGHUP). */
  reload(): Promise<void> {
    return this.store.reload();
  }

  async stop(): Promise<void> {
    this.store.stop();
    if (this.republishTimer) clearInterval(this.republishTimer);
    this.republishTimer = null;
    this.router?.close();
    await this.serving;
    this.pub?.close();
    this.log.info("network API stopped");
  }

  private handle(req: { type: string }): Handled {
    if (req.type === "GETGROUPS") {
      return {
        reply: { type: "GETGROUPS", rc: "SUCCESS", message: "" },
        after: () => this.publishAll("GETGROUPS"),
      };
    }
    if (req.type === "HEARTBEAT")
      return { reply: { type: "HEARTBEAT", rc: "SUCCESS", message: "" } };
    this.log.warn({ type: req.type }, "unknown request type");
    return { reply: invalidReply(req.type, `unknown request type ${JSON.stringify(req.type)}`) };
  }

  private send(topic: string, msg: GroupUpdate | { type: "HEARTBEAT"; issued: number }): void {
    if (!this.pubQueue) return;
    void this.pubQueue.send([topic, JSON.stringify(msg)]);
  }

  private publishGroup(g: Group): void {
    this.send(TOPIC_GROUPS, groupUpdate(g.name, g.members, g.policy));
  }

  private publishAll(why: string): void {
    if (this.published.size === 0) {
      this.send(TOPIC_HEARTBEAT, heartbeat());
      this.log.debug({ why }, "published heartbeat (no groups)");
      return;
    }
    for (const { group } of this.published.values()) this.publishGroup(group);
    this.log.debug({ why, groups: this.published.size }, "published all groups");
  }

  private onState(state: State): void {
    const groups = groupsOf(state);
    for (const [name, old] of this.published) {
      if (!groups.has(name)) {
        // An empty member list makes the ACL Manager delete the group.
        this.publishGroup({ ...old.group, members: {} });
        this.published.delete(name);
        this.log.info({ group: name }, "group deleted (no members left)");
      }
    }
    for (const [name, g] of groups) {
      const print = groupPrint(g);
      if (this.published.get(name)?.print === print) continue;
      this.published.set(name, { group: g, print });
      this.publishGroup(g);
      this.log.info({ group: name, members: Object.keys(g.members).length }, "group published");
    }
  }
}
