import type { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from '../config.js';

export type { Logger };

/**
 * The gateway's logger: one JSON object per line on stdout (or `pretty` lines for people).
 * Nothing secret is handed to it: requests are logged by route, never by path (signed
 * URLs carry their token in the path), and by key id, never by key; as a second guard,
 * the fields that could hold a secret are censored.
 */
export function createLogger(
  options: { level: LogLevel; format: 'json' | 'pretty'; bufferBytes?: number },
  destination?: Writable,
): Logger {
  const settings = {
    level: options.level,
    base: { service: 'assetgate' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'key',
        'token',
        'authorization',
        'headers.authorization',
        'headers["x-api-key"]',
        'headers["api-key"]',
        'variables',
      ],
      censor: '[redacted]',
    },
  };
  if (options.format === 'pretty') {
    return pino(settings, pretty({ destination: destination ?? 1, colorize: false, sync: true }));
  }
  return pino(settings, destination ?? asyncStdout(options.bufferBytes ?? 16 * 1024 * 1024));
}

/** Lines are gathered up to this many bytes before a write (and written at least every LOG_FLUSH_MS). */
const LOG_BATCH = 4096;
const LOG_FLUSH_MS = 1000;

/**
 * stdout written asynchronously: a request no longer waits for its line's write(2) (a
 * synchronous write cost the list about a tenth of its requests a second, row O1). Lines
 * go out in writes of about 4 KiB, and within a second when the gateway is quiet. What
 * waits is bounded by `maxBytes` (LOG_BUFFER): while stdout takes nothing (a stuck pipe)
 * and that much waits, new lines are dropped rather than held. Call `flushLog` before
 * the process exits.
 */
export function asyncStdout(maxBytes: number, fd = 1): ReturnType<typeof pino.destination> {
  const minLength = Math.min(LOG_BATCH, Math.floor(maxBytes / 4));
  return pino.destination({ dest: fd, sync: false, minLength, maxLength: maxBytes, periodicFlush: LOG_FLUSH_MS });
}

/**
 * Resolves once every line logged so far is written (or after `deadlineMs`, for a
 * stdout nobody reads). pino's own flush at exit would skip a write that stdout has
 * refused for now (EAGAIN) and is waiting to try again: the line in it would be lost.
 */
export function flushLog(logger: Logger, deadlineMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, deadlineMs);
    // The callback's error is fsync's on a pipe (EINVAL): the lines are written all the same.
    logger.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
