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
export function createLogger(options: { level: LogLevel; format: 'json' | 'pretty' }, destination?: Writable): Logger {
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
  return pino(settings, destination ?? pino.destination({ dest: 1, sync: true }));
}

/** A logger that drops everything: for code run without a server (the CLI, tests that do not read logs). */
export const silentLogger: Logger = pino({ level: 'silent' });
