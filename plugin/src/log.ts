/**
 * Structured logs (pino) to stdout and to `<log-dir>/plugin-<role>.log`. The file is
 * capped: past `fileBytes` it is rotated to `plugin-<role>.log.1` (the older ones move up to
 * `.<files>`, the oldest is dropped), so the log directory never holds more than
 * `fileBytes × (files + 1)` of the plugin's logs.
 */
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import pino, { type Logger } from "pino";
import { createStream, type RotatingFileStream } from "rotating-file-stream";

/** Size at which the log file is rotated (10 MiB). */
export const LOG_FILE_BYTES = 10 * 1024 * 1024;
/** Rotated log files kept beside the current one. */
export const LOG_FILES_KEPT = 4;

export interface PluginLogger {
  readonly logger: Logger;
  readonly file: string;
  /** Flushes and closes the log file. */
  close(): Promise<void>;
}

export interface LogFileLimits {
  /** Bytes at which the file is rotated (default LOG_FILE_BYTES). */
  readonly fileBytes?: number;
  /** Rotated files kept (default LOG_FILES_KEPT). */
  readonly files?: number;
}

export function createLogger(
  role: string,
  logDir: string,
  level = "info",
  limits: LogFileLimits = {},
): PluginLogger {
  mkdirSync(logDir, { recursive: true });
  const name = `plugin-${role}.log`;
  const file = join(logDir, name);
  // Said here, before any line is logged: a log file that cannot be opened (a directory in
  // its place, no permission) is an error of the command line, not a stream error later.
  closeSync(openSync(file, "a"));
  const fileStream: RotatingFileStream = createStream(
    // Classical rotation: the generator gets the index (null for the current file).
    (index: number | Date) => (typeof index === "number" && index > 0 ? `${name}.${index}` : name),
    {
      path: logDir,
      size: `${Math.ceil((limits.fileBytes ?? LOG_FILE_BYTES) / 1024)}K`,
      rotate: limits.files ?? LOG_FILES_KEPT,
    },
  );
  fileStream.on("error", (err) => {
    process.stderr.write(`plugin: log file ${file}: ${err.message}\n`);
  });
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
    close: () =>
      new Promise<void>((resolve) => {
        if (fileStream.writableFinished) resolve();
        else fileStream.end(() => resolve());
      }),
  };
}
