/** Runs an in-process plugin against fake peers, with short timers, and cleans up. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TestContext } from "node:test";
import {
  EndpointPlugin,
  NetworkPlugin,
  type EndpointPluginOptions,
  type NetworkPluginOptions,
} from "../src/index.js";
import {
  captureLogger,
  endpointId,
  endpointText,
  felixText,
  macOf,
  tmpDir,
  type CapturedLogger,
  type EndpointSpec,
} from "./helpers.js";
import { FakeAclManager, FakeFelix } from "./peers.js";

export interface HostSpec {
  readonly host: string;
  readonly ip: string;
}

/** Endpoint n (1-based) on `host` in `group`: 192.168.x.y, deterministic id and MAC. */
export function ep(n: number, host: string, group = "g"): EndpointSpec {
  return {
    name: `ep${n}`,
    id: endpointId(`ep${n}`),
    ip: `192.168.${Math.floor(n / 250)}.${(n % 250) + 1}`,
    mac: macOf(n),
    host,
    group,
  };
}

export interface EndpointRig {
  readonly dir: string;
  readonly log: CapturedLogger;
  readonly plugin: EndpointPlugin;
  readonly felixes: FakeFelix[];
  readonly pluginAddress: string;
  writeEndpoint(e: EndpointSpec): Promise<void>;
  restartPlugin(): Promise<EndpointPlugin>;
}

export async function endpointRig(
  t: TestContext,
  opts: {
    readonly basePort: number;
    readonly hosts: readonly HostSpec[];
    readonly endpoints?: readonly EndpointSpec[];
    /** Fake Felix peers to run (by host name); default: all hosts. */
    readonly felixFor?: readonly string[];
    readonly plugin?: Partial<EndpointPluginOptions>;
  },
): Promise<EndpointRig> {
  const dir = await tmpDir(`ep${opts.basePort}`);
  t.after(() => dir.remove());
  await writeFile(join(dir.path, "felix.txt"), felixText(opts.hosts));
  const writeEndpoint = (e: EndpointSpec): Promise<void> =>
    writeFile(join(dir.path, `${e.name}.txt`), endpointText(e));
  for (const e of opts.endpoints ?? []) await writeEndpoint(e);
  const pluginPort = opts.basePort + 1;
  const felixPort = opts.basePort + 2;
  const pluginAddress = `tcp://127.0.0.1:${pluginPort}`;
  const felixes: FakeFelix[] = [];
  for (const h of opts.hosts) {
    if (opts.felixFor && !opts.felixFor.includes(h.host)) continue;
    const f = new FakeFelix({ hostname: h.host, ip: h.ip, port: felixPort, plugin: pluginAddress });
    await f.start();
    felixes.push(f);
  }
  t.after(() => Promise.all(felixes.map((f) => f.stop())));
  const log = captureLogger("info");
  const options: EndpointPluginOptions = {
    dataDir: dir.path,
    logger: log.logger,
    bind: "127.0.0.1",
    port: pluginPort,
    felixPort,
    resyncDelayMs: 100,
    felixTimeoutMs: 400,
    heartbeatIntervalMs: 5000,
    retryBaseMs: 50,
    retryMaxMs: 400,
    rescanIntervalMs: 0,
    ...opts.plugin,
  };
  let plugin = new EndpointPlugin(options);
  await plugin.start();
  t.after(() => plugin.stop());
  return {
    dir: dir.path,
    log,
    get plugin() {
      return plugin;
    },
    felixes,
    pluginAddress,
    writeEndpoint,
    async restartPlugin() {
      await plugin.stop();
      plugin = new EndpointPlugin(options);
      await plugin.start();
      return plugin;
    },
  };
}

export interface NetworkRig {
  readonly dir: string;
  readonly log: CapturedLogger;
  readonly plugin: NetworkPlugin;
  readonly acl: FakeAclManager;
  writeEndpoint(e: EndpointSpec): Promise<void>;
  restartPlugin(): Promise<NetworkPlugin>;
}

export async function networkRig(
  t: TestContext,
  opts: {
    readonly basePort: number;
    readonly endpoints?: readonly EndpointSpec[];
    readonly groupsTxt?: string;
    readonly plugin?: Partial<NetworkPluginOptions>;
    /** The level of the plugin's captured log (`log`): default "info". */
    readonly logLevel?: string;
  },
): Promise<NetworkRig> {
  const dir = await tmpDir(`net${opts.basePort}`);
  t.after(() => dir.remove());
  await writeFile(join(dir.path, "felix.txt"), felixText([{ host: "h1", ip: "127.0.0.2" }]));
  if (opts.groupsTxt !== undefined) await writeFile(join(dir.path, "groups.txt"), opts.groupsTxt);
  const writeEndpoint = (e: EndpointSpec): Promise<void> =>
    writeFile(join(dir.path, `${e.name}.txt`), endpointText(e));
  for (const e of opts.endpoints ?? []) await writeEndpoint(e);
  const log = captureLogger(opts.logLevel ?? "info");
  const options: NetworkPluginOptions = {
    dataDir: dir.path,
    logger: log.logger,
    bind: "127.0.0.1",
    groupsPort: opts.basePort + 3,
    publishPort: opts.basePort + 4,
    republishIntervalMs: 60_000,
    rescanIntervalMs: 0,
    ...opts.plugin,
  };
  let plugin = new NetworkPlugin(options);
  await plugin.start();
  t.after(() => plugin.stop());
  const acl = new FakeAclManager({
    groups: `tcp://127.0.0.1:${opts.basePort + 3}`,
    publish: `tcp://127.0.0.1:${opts.basePort + 4}`,
  });
  await acl.start();
  t.after(() => acl.stop());
  return {
    dir: dir.path,
    log,
    get plugin() {
      return plugin;
    },
    acl,
    writeEndpoint,
    async restartPlugin() {
      await plugin.stop();
      plugin = new NetworkPlugin(options);
      await plugin.start();
      return plugin;
    },
  };
}

/**
 * For tests that run the plugin as a process: a data directory holding one Felix host
 * (`host1` at 127.0.0.2) and one endpoint, a log directory, and a fake Felix listening on
 * `felixPort` that resyncs with the plugin at `127.0.0.1:<pluginPort>`. Cleaned up after `t`.
 */
export async function oneEndpointProcessRig(
  t: TestContext,
  name: string,
  ports: { readonly plugin: number; readonly felix: number },
): Promise<{ data: string; logs: string; endpoint: EndpointSpec; felix: FakeFelix }> {
  const data = await tmpDir(`${name}-data`);
  const logs = await tmpDir(`${name}-logs`);
  t.after(() => Promise.all([data.remove(), logs.remove()]));
  await writeFile(join(data.path, "felix.txt"), felixText([{ host: "host1", ip: "127.0.0.2" }]));
  const endpoint = ep(1, "host1");
  await writeFile(join(data.path, "ep1.txt"), endpointText(endpoint));
  const felix = new FakeFelix({
    hostname: "host1",
    ip: "127.0.0.2",
    port: ports.felix,
    plugin: `tcp://127.0.0.1:${ports.plugin}`,
  });
  await felix.start();
  t.after(() => felix.stop());
  return { data: data.path, logs: logs.path, endpoint, felix };
}
