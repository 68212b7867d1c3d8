/**
 * The endpoint API: answers Felix's RESYNCSTATE and HEARTBEAT on 9901 and pushes endpoint
 * changes to every Felix host over one REQ socket per host (9902).
 */
import type { Logger } from "pino";
import { Router } from "zeromq";
import {
  endpointsForHost,
  orphanEndpoints,
  resolveHost,
  type State,
  type StateDelta,
} from "./state.js";
import { FelixConnection } from "./felix.js";
import { PeerWarnings, type WarnLimits } from "./peer-warnings.js";
import { invalidReply, jsonType, preview } from "./protocol.js";
import { DataStore, storeTuning, type DataStoreTuning } from "./store.js";
import {
  bindWithRetry,
  MAX_REQUEST_BYTES,
  SendQueue,
  serveRouter,
  tcp,
  type Handled,
  type Peer,
} from "./zmq.js";

/** Longest `hostname` accepted in RESYNCSTATE (a DNS name). */
export const MAX_HOSTNAME = 253;
/** Longest `resync_id` accepted (Felix sends a 36-character UUID); it is sent back to Felix. */
export const MAX_RESYNC_ID = 128;
const RESYNC_ID_RE = /^[\x21-\x7e]+$/;

export interface EndpointPluginOptions extends DataStoreTuning {
  readonly dataDir: string;
  readonly logger: Logger;
  /** Address to bind 9901 on (default 0.0.0.0). */
  readonly bind?: string;
  /** Port of the endpoint API (default 9901). */
  readonly port?: number;
  /** Port of every Felix's REP socket (default 9902). */
  readonly felixPort?: number;
  /** Delay between a RESYNCSTATE reply and its creates (default 1000 ms). */
  readonly resyncDelayMs?: number;
  /** Reply timeout of every request to Felix (default 10000 ms). */
  readonly felixTimeoutMs?: number;
  /** HEARTBEAT to each idle Felix this often (default 10000 ms). */
  readonly heartbeatIntervalMs?: number;
  /** First retry delay of a request Felix did not acknowledge (default 250 ms, doubling). */
  readonly retryBaseMs?: number;
  /** Longest retry delay (default 10000 ms). */
  readonly retryMaxMs?: number;
  /**
   * "push" (default): watch the data and push changes at once. "resync-only": read the
   * data only when a Felix resyncs (how the seed's plugin behaved; used by the bench).
   */
  readonly mode?: "push" | "resync-only";
  /** Rate limits of the warnings a peer can cause (default WARN_LIMITS). */
  readonly peerWarnings?: Partial<WarnLimits>;
}

export class EndpointPlugin {
  private readonly opts: EndpointPluginOptions;
  private readonly log: Logger;
  private readonly store: DataStore;
  private readonly connections = new Map<string, FelixConnection>();
  private router: Router | null = null;
  private serving: Promise<void> | null = null;
  private warnedOrphans = "";
  /** Endpoints on hosts without a [felix] section: name -> `name@host`. */
  private orphans = new Map<string, string>();
  private stopping = false;
  private readonly warnings: PeerWarnings;

  constructor(opts: EndpointPluginOptions) {
    this.opts = opts;
    this.log =
      opts.logger.bindings()["role"] === "endpoint"
        ? opts.logger
        : opts.logger.child({ role: "endpoint" });
    this.warnings = new PeerWarnings(this.log, opts.peerWarnings);
    const push = (opts.mode ?? "push") === "push";
    this.store = new DataStore({
      dir: opts.dataDir,
      logger: this.log,
      watch: push,
      ...storeTuning(opts),
    });
    this.store.on("change", (state, delta) => {
      if (delta && !delta.felixChanged) this.onEndpoints(state, delta);
      else this.onState(state);
    });
  }

  get endpoint(): string {
    return tcp(this.opts.bind ?? "0.0.0.0", this.opts.port ?? 9901);
  }

  /** The Felix connections by host name (for tests and the bench). */
  get felixConnections(): ReadonlyMap<string, FelixConnection> {
    return this.connections;
  }

  async start(): Promise<void> {
    const router = new Router({ linger: 0, maxMessageSize: MAX_REQUEST_BYTES });
    try {
      await bindWithRetry(router, this.endpoint, this.log);
    } catch (err) {
      router.close();
      throw err;
    }
    this.router = router;
    await this.store.start();
    this.onState(this.store.state);
    const queue = new SendQueue(router, this.log);
    this.serving = serveRouter(
      router,
      (req, peer) => this.handle(req, peer),
      this.log,
      queue,
      this.warnings,
    );
    this.log.info({ endpoint: this.endpoint }, "endpoint API listening");
  }

  /** A summary for a status log line (SIGUSR2). */
  status(): Record<string, unknown> {
    const state = this.store.state;
    return {
      hosts: state.felix.size,
      endpoints: state.endpoints.size,
      felix: Object.fromEntries(
        [...this.connections].map(([k, c]) => [
          k,
          { ip: c.ip, settled: c.settled, sockets: c.socketGeneration },
        ]),
      ),
    };
  }

  /** Reads the data directory again, every file (SIGHUP). */
  reload(): Promise<void> {
    return this.store.reload();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.store.stop();
    this.router?.close();
    await this.serving;
    await Promise.all([...this.connections.values()].map((c) => c.close()));
    this.connections.clear();
    this.warnings.stop();
    this.log.info("endpoint API stopped");
  }

  private onState(state: State): void {
    if (this.stopping) return; // a scan that ends after stop() must not open connections
    for (const [key, conn] of this.connections) {
      const f = state.felix.get(key);
      if (!f || f.ip !== conn.ip) {
        this.log.info({ felix: conn.host, ip: conn.ip }, "felix host removed or moved");
        void conn.close();
        this.connections.delete(key);
      }
    }
    for (const [key, f] of state.felix) {
      let conn = this.connections.get(key);
      if (!conn) {
        conn = new FelixConnection({
          host: f.host,
          ip: f.ip,
          port: this.opts.felixPort ?? 9902,
          timeoutMs: this.opts.felixTimeoutMs ?? 10_000,
          heartbeatIntervalMs: this.opts.heartbeatIntervalMs ?? 10_000,
          logger: this.log,
          ...(this.opts.retryBaseMs === undefined ? {} : { retryBaseMs: this.opts.retryBaseMs }),
          ...(this.opts.retryMaxMs === undefined ? {} : { retryMaxMs: this.opts.retryMaxMs }),
        });
        this.connections.set(key, conn);
        this.log.info({ felix: f.host, ip: f.ip }, "felix host added");
      }
      if ((this.opts.mode ?? "push") === "push") conn.setDesired(endpointsForHost(state, f.host));
    }
    this.orphans = new Map(orphanEndpoints(state).map((e) => [e.name, `${e.name}@${e.host}`]));
    this.warnOrphans();
  }

  private warnOrphans(): void {
    const orphans = [...this.orphans.values()];
    const text = orphans.join(",");
    if (text !== this.warnedOrphans && orphans.length > 0) {
      this.log.warn({ endpoints: orphans }, "endpoints on hosts without a [felix] section");
    }
    this.warnedOrphans = text;
  }

  /**
   * Only endpoints changed (the Felix hosts are the same): only the hosts they were and are
   * on are told, and only about them.
   */
  private onEndpoints(state: State, delta: StateDelta): void {
    if (this.stopping) return;
    const push = (this.opts.mode ?? "push") === "push";
    const connOf = (host: string): FelixConnection | undefined => {
      const f = resolveHost(state, host);
      return f ? this.connections.get(f.host.toLowerCase()) : undefined;
    };
    // Removals first: an id may move from one endpoint to another in the same change.
    for (const { before } of delta.endpoints.values()) {
      if (!before) continue;
      if (push) connOf(before.host)?.deleteDesired(before.id);
      this.orphans.delete(before.name);
    }
    for (const { after: e } of delta.endpoints.values()) {
      if (!e) continue;
      const conn = connOf(e.host);
      if (push) conn?.setDesiredOne(e.id, { mac: e.mac, state: e.state, addrs: [e.ip] });
      if (!resolveHost(state, e.host)) this.orphans.set(e.name, `${e.name}@${e.host}`);
    }
    this.warnOrphans();
  }

  private async handle(
    req: { type: string; body: Readonly<Record<string, unknown>> },
    peer: Peer,
  ): Promise<Handled> {
    const { type, body } = req;
    if (type === "HEARTBEAT") {
      return { reply: { type, rc: "SUCCESS", message: "" } };
    }
    if (type !== "RESYNCSTATE") {
      peer.warn({ type }, "unknown request type");
      return { reply: invalidReply(type, `unknown request type ${JSON.stringify(type)}`) };
    }
    const invalid = (message: string): Handled => {
      peer.warn({ type, problem: message }, "invalid RESYNCSTATE");
      return { reply: { type, rc: "INVALID", message, endpoint_count: 0 } };
    };
    const resyncId = body["resync_id"];
    const hostname = body["hostname"];
    if (typeof resyncId !== "string" || resyncId === "") {
      return invalid(`field resync_id must be a non-empty string, got ${jsonType(resyncId)}`);
    }
    if (resyncId.length > MAX_RESYNC_ID || !RESYNC_ID_RE.test(resyncId)) {
      return invalid(
        `field resync_id must be 1-${MAX_RESYNC_ID} printable characters without spaces, got ${resyncId.length} characters: ${JSON.stringify(preview(resyncId))}`,
      );
    }
    if (typeof hostname !== "string" || hostname === "") {
      return invalid(`field hostname must be a non-empty string, got ${jsonType(hostname)}`);
    }
    if (hostname.length > MAX_HOSTNAME) {
      return invalid(
        `field hostname is ${hostname.length} characters long, at most ${MAX_HOSTNAME} are accepted: ${JSON.stringify(preview(hostname))}`,
      );
    }
    if ((this.opts.mode ?? "push") === "resync-only") {
      await this.store.rescan();
      this.onState(this.store.state);
    }
    const state = this.store.state;
    const felix = resolveHost(state, hostname);
    const conn = felix ? this.connections.get(felix.host.toLowerCase()) : undefined;
    if (!felix || !conn) {
      peer.warn({ hostname, resyncId }, "resync from a host not in the data: 0 endpoints");
      return {
        reply: {
          type,
          rc: "SUCCESS",
          message: `host ${hostname} has no endpoints here`,
          endpoint_count: 0,
        },
      };
    }
    const snapshot =
      (this.opts.mode ?? "push") === "push"
        ? conn.snapshot()
        : [...endpointsForHost(state, felix.host).entries()];
    // Felix counts only creates with its newest resync id: an unfinished older resync of this
    // host stops now, before the reply, so none of its creates follows the reply.
    conn.supersedeResync(resyncId);
    this.log.info({ hostname, resyncId, endpoints: snapshot.length }, "resync requested");
    return {
      reply: { type, rc: "SUCCESS", message: "", endpoint_count: snapshot.length },
      after: () =>
        conn.startResync(
          resyncId,
          snapshot,
          this.opts.resyncDelayMs ?? 1000,
          (this.opts.mode ?? "push") === "resync-only",
        ),
    };
  }
}
