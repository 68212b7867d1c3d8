#!/usr/bin/env node
/** `plugin <endpoint|network> --data-dir <dir> --log-dir <dir> [--bind <address>] ...` */
// First: SIGUSR1 must not open the inspector while the rest loads.
import { onInspectorSignal } from "./no-inspector.js";
import { CommanderError } from "commander";
import { EndpointPlugin } from "./endpoint.js";
import { createLogger } from "./log.js";
import { NetworkPlugin } from "./network.js";
import { PeerWarnings } from "./peer-warnings.js";
import { parseCli, type CliOptions } from "./options.js";

async function main(): Promise<void> {
  let opts: CliOptions;
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    throw err;
  }
  let created: ReturnType<typeof createLogger>;
  try {
    created = createLogger(opts.role, opts.logDir, opts.logLevel, {
      fileBytes: opts.logFileBytes,
      files: opts.logFiles,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "EEXIST" || code === "ENOTDIR"
        ? "is not a directory"
        : code === "EISDIR"
          ? `holds a directory named plugin-${opts.role}.log`
          : `cannot be written (${code ?? (err as Error).message})`;
    process.stderr.write(`plugin: --log-dir ${JSON.stringify(opts.logDir)} ${why}\n`);
    process.exit(2);
  }
  const { logger, close, file } = created;
  process.on("unhandledRejection", (err) => {
    logger.error({ err: err instanceof Error ? err.message : String(err) }, "unhandled rejection");
  });
  process.on("uncaughtException", (err) => {
    logger.error({ err: err.message, stack: err.stack }, "uncaught exception; carrying on");
  });
  const plugin =
    opts.role === "endpoint"
      ? new EndpointPlugin({
          dataDir: opts.dataDir,
          logger,
          bind: opts.bind,
          port: opts.endpointPort,
          felixPort: opts.felixPort,
          resyncDelayMs: opts.resyncDelayMs,
          felixTimeoutMs: opts.felixTimeoutMs,
          heartbeatIntervalMs: opts.heartbeatIntervalMs,
        })
      : new NetworkPlugin({
          dataDir: opts.dataDir,
          logger,
          bind: opts.bind,
          groupsPort: opts.groupsPort,
          publishPort: opts.publishPort,
          republishIntervalMs: opts.republishIntervalMs,
          networkHeartbeatMs: opts.networkHeartbeatMs,
          groupUpdateIntervalMs: opts.groupUpdateIntervalMs,
        });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping");
    plugin.stop().then(
      () => {
        logger.info("stopped");
        void close().then(() => process.exit(0));
      },
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, "error while stopping");
        void close().then(() => process.exit(1));
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGQUIT", () => shutdown("SIGQUIT"));
  process.on("SIGHUP", () => {
    logger.info({ signal: "SIGHUP" }, "SIGHUP: re-reading the data directory");
    plugin.reload().catch((err: unknown) => {
      logger.error({ err: (err as Error).message }, "re-reading the data directory failed");
    });
  });
  const signals = new PeerWarnings(logger);
  onInspectorSignal(() =>
    signals.warn(
      "signal",
      { signal: "SIGUSR1" },
      "SIGUSR1 ignored: the plugin never opens Node's inspector",
    ),
  );
  process.on("SIGUSR2", () => {
    logger.info({ signal: "SIGUSR2", ...plugin.status() }, "SIGUSR2: status");
  });
  try {
    await plugin.start();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, "cannot start");
    await close();
    process.exit(1);
  }
  logger.info({ role: opts.role, dataDir: opts.dataDir, logFile: file }, "plugin started");
}

void main();
