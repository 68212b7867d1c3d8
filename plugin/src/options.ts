/** Command-line options of `plugin <endpoint|network>`, validated with clear errors. */
import { Argument, Command, InvalidArgumentError, Option } from "commander";
import { LOG_FILE_BYTES, LOG_FILES_KEPT } from "./log.js";
import { isIPv4 } from "./parse.js";
import { GROUP_UPDATE_INTERVAL_MS, NETWORK_HEARTBEAT_MS, REPUBLISH_MS } from "./protocol.js";

export type Role = "endpoint" | "network";

export interface CliOptions {
  readonly role: Role;
  readonly dataDir: string;
  readonly logDir: string;
  readonly bind: string;
  readonly endpointPort: number;
  readonly felixPort: number;
  readonly groupsPort: number;
  readonly publishPort: number;
  readonly resyncDelayMs: number;
  readonly felixTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly republishIntervalMs: number;
  readonly networkHeartbeatMs: number;
  readonly groupUpdateIntervalMs: number;
  readonly logLevel: string;
  readonly logFileBytes: number;
  readonly logFiles: number;
}

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(
        `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
      );
    }
    return Number(value);
  };
}

function address(value: string): string {
  if (!isIPv4(value)) {
    throw new InvalidArgumentError(
      `--bind must be an IPv4 address such as 0.0.0.0, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

const port = (name: string) => integer(name, 1, 65535);
const ms = (name: string) => integer(name, 0, 86_400_000);
const positiveMs = (name: string) => integer(name, 1, 86_400_000);

export function buildCommand(): Command {
  return new Command("plugin")
    .description(
      "Tells Felix (endpoint role) and the ACL Manager (network role) about the endpoints and groups in the data directory.",
    )
    .addArgument(new Argument("<role>", "which API to serve").choices(["endpoint", "network"]))
    .requiredOption("--data-dir <dir>", "directory of *.txt data files (watched)")
    .requiredOption("--log-dir <dir>", "directory for plugin-<role>.log")
    .option("--bind <address>", "IPv4 address to bind the plugin's sockets on", address, "0.0.0.0")
    .option(
      "--endpoint-port <port>",
      "endpoint API port (REP/ROUTER)",
      port("--endpoint-port"),
      9901,
    )
    .option("--felix-port <port>", "port of each Felix's REP socket", port("--felix-port"), 9902)
    .option("--groups-port <port>", "GETGROUPS port", port("--groups-port"), 9903)
    .option("--publish-port <port>", "group publication (PUB) port", port("--publish-port"), 9904)
    .option(
      "--resync-delay-ms <ms>",
      "delay between a RESYNCSTATE reply and its creates",
      ms("--resync-delay-ms"),
      1000,
    )
    .option(
      "--felix-timeout-ms <ms>",
      "reply timeout of every request to Felix",
      positiveMs("--felix-timeout-ms"),
      10_000,
    )
    .option(
      "--heartbeat-interval-ms <ms>",
      "HEARTBEAT each idle Felix this often",
      positiveMs("--heartbeat-interval-ms"),
      10_000,
    )
    .option(
      "--republish-interval-ms <ms>",
      "republish every group this often, as a safety net (each costs Felix a reprogramming of every endpoint's ACLs)",
      positiveMs("--republish-interval-ms"),
      REPUBLISH_MS,
    )
    .option(
      "--network-heartbeat-ms <ms>",
      "publish a networkheartbeat this often (the ACL Manager exits after 65 s of silence)",
      integer("--network-heartbeat-ms", 1, 60_000),
      NETWORK_HEARTBEAT_MS,
    )
    .option(
      "--group-update-interval-ms <ms>",
      "publish a change of the groups at once, then at most once per this interval (each costs Felix a reprogramming of every endpoint's ACLs)",
      integer("--group-update-interval-ms", 0, 600_000),
      GROUP_UPDATE_INTERVAL_MS,
    )
    .addOption(
      new Option("--log-level <level>", "log level")
        .choices(["fatal", "error", "warn", "info", "debug", "trace"])
        .default("info"),
    )
    .option(
      "--log-file-bytes <bytes>",
      "rotate plugin-<role>.log at this size",
      integer("--log-file-bytes", 4096, 1024 ** 3),
      LOG_FILE_BYTES,
    )
    .option(
      "--log-files <n>",
      "rotated log files kept (plugin-<role>.log.1 ...)",
      integer("--log-files", 1, 100),
      LOG_FILES_KEPT,
    );
}

interface RawOptions {
  dataDir: string;
  logDir: string;
  bind: string;
  endpointPort: number;
  felixPort: number;
  groupsPort: number;
  publishPort: number;
  resyncDelayMs: number;
  felixTimeoutMs: number;
  heartbeatIntervalMs: number;
  republishIntervalMs: number;
  networkHeartbeatMs: number;
  groupUpdateIntervalMs: number;
  logLevel: string;
  logFileBytes: number;
  logFiles: number;
}

/** Parses `argv` (without node and script). Throws a CommanderError on bad input. */
export function parseCli(argv: readonly string[], command = buildCommand()): CliOptions {
  command.exitOverride();
  command.parse([...argv], { from: "user" });
  const role = command.args[0] as Role;
  const o = command.opts<RawOptions>();
  return { role, ...o };
}
