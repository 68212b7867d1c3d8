/** Structured logs (pino) to stdout and to `<log-dir>/plugin-<role>.log`. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import pino, { type Logger } from "pino";

export interface PluginLogger {
  readonly logger: Logger;
  readonly file: string;
  /** Flushes and closes the log file. */
  close(): void;
}

export function createLogger(role: string, logDir: string, level = "info"): PluginLogger {
  mkdirSync(logDir, { recursive: true });
  const file = join(logDir, `plugin-${role}.log`);
  const fileStream = pino.destination({ dest: file, sync: true, mkdir: true });
  const stdout = pino.destination({ dest: 1, sync: true });
  const logger = pino(
    { level, base: { role, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.multistream([
      { stream: stdout, level: level as pino.Level },
      { stream: fileStream, level: level as pino.Level },
    ]),
  );
  return {
    logger,
    file,
    close: () => {
      fileStream.flushSync();
      fileStream.end();
    },
  };
}
