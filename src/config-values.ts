/**
 * Reading one environment variable: sizes and durations with units, whole numbers in a
 * range, switches, URLs and lists. Each refuses a bad value with a `ConfigError` naming the
 * variable; `config.ts` composes them into the configuration.
 */
import { ConfigError } from './errors.js';

/** The environment a configuration is read from. */
export type Env = Readonly<Record<string, string | undefined>>;

/** What a process does: see `Config.role`. */
export const ROLES = ['all', 'api', 'worker'] as const;
export type Role = (typeof ROLES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** Parses `1048576`, `10MB`, `200MiB`, `4 GiB` into bytes. */
export function parseBytes(variable: string, raw: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
  const unit = match ? UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new ConfigError(variable, `"${raw}" is not a size (use bytes or a unit: KB, MB, GB, KiB, MiB, GiB).`);
  }
  const bytes = Math.floor(Number(match[1]) * unit);
  if (bytes < 1) throw new ConfigError(variable, 'must be at least 1 byte.');
  return bytes;
}

const SECONDS: Record<string, number> = { '': 1, ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** Parses `90`, `90s`, `15m`, `1h`, `7d`, `250ms` into seconds. */
export function parseDuration(variable: string, raw: string): number {
  const match = /^\s*(\d+)\s*(ms|[smhd]?)\s*$/i.exec(raw);
  if (!match) throw new ConfigError(variable, `"${raw}" is not a duration (seconds, or a number with s, m, h or d).`);
  return Number(match[1]) * SECONDS[match[2].toLowerCase()];
}

/** A duration in seconds: `fallback` when unset, refused below `min` (1 second unless told) and past `max`. */
export function duration(
  env: Env,
  variable: string,
  { fallback, min = 1, max = Infinity }: { fallback: number; min?: number; max?: number },
): number {
  const raw = env[variable];
  const value = raw === undefined || raw === '' ? fallback : parseDuration(variable, raw);
  if (value < min) throw new ConfigError(variable, `must be at least ${min} seconds.`);
  if (value > max) throw new ConfigError(variable, `must be at most ${max} seconds.`);
  return value;
}

export function secret(env: Env, variable: string): string | null {
  const raw = env[variable];
  if (raw === undefined || raw === '') return null;
  if (raw.length < 32) throw new ConfigError(variable, 'must be at least 32 characters.');
  return raw;
}

/** A whole number: `fallback` when unset, refused outside `min`..`max`. */
export function integer(
  env: Env,
  variable: string,
  { fallback, min, max }: { fallback: number; min: number; max: number },
): number {
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(variable, `"${raw}" is not a whole number.`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(variable, `must be between ${min} and ${max}.`);
  return value;
}

export function bytes(env: Env, variable: string, fallback: number): number {
  const raw = env[variable];
  return raw === undefined || raw === '' ? fallback : parseBytes(variable, raw);
}

export function boolean(env: Env, variable: string, fallback: boolean): boolean {
  const raw = env[variable]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(variable, `"${raw}" is not a boolean (true/false).`);
}

export function url(variable: string, raw: string): string {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch (cause) {
    throw new ConfigError(variable, `"${raw}" is not an absolute URL.`, { cause });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(variable, 'must be an http or https URL.');
  }
  return raw.replace(/\/+$/, '');
}

/**
 * Reads and validates the configuration. Throws `ConfigError` naming the first
 * bad variable; never reads `process.env` itself (the caller passes it).
 */

export function list(env: Env, variable: string): string[] {
  return (env[variable] ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}
