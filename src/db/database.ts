import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import {
  Kysely,
  type LogEvent,
  PostgresAdapter,
  PostgresDialect,
  type PostgresPool,
  SqliteDialect,
  type SqliteDatabase,
  type SqliteStatement,
  type Transaction,
} from 'kysely';
import pg from 'pg';
import { ServiceUnavailableError } from '../errors.js';
import { FALLBACK_AUTOCHECKPOINT, startCheckpointer } from './checkpointer.js';
import { rowBuilder } from './row-builder.js';
import type { Database } from './types.js';

export type Db = Kysely<Database>;

/** Options for `createDatabase`. */
export interface DatabaseOptions {
  /** `sqlite:<file>`, `sqlite::memory:` or `postgres://…`. */
  url: string;
  /** Called after every statement; tests count statements with it. */
  onQuery?: (event: LogEvent) => void;
  /** Where a failure of background work (SQLite's checkpoint thread) is reported. @default console.error */
  onBackgroundError?: (error: unknown) => void;
  /**
   * SQLite's page cache for the connection, bytes (rounded up to KiB). better-sqlite3 builds
   * SQLite with 16,000 KiB; the gateway's default (SQLITE_CACHE_SIZE) is smaller. @default 8 MiB
   */
  cacheSize?: number;
  /** SQLite statements kept prepared, by SQL text (SQLITE_STATEMENT_CACHE); past it the oldest is dropped. @default 500 */
  statementCacheMax?: number;
  /** PostgreSQL connections opened at most (DATABASE_POOL); SQLite has one. @default 10 */
  poolSize?: number;
  /**
   * Longest wait for a PostgreSQL connection, seconds (DATABASE_POOL_WAIT): past it the query
   * fails with `ServiceUnavailableError` rather than waiting on. @default 10
   */
  poolWait?: number;
}

/** Which SQL engine a `Db` talks to, for the few places that must know. */
export function dialectOf(url: string): 'sqlite' | 'postgres' {
  return url.startsWith('sqlite:') ? 'sqlite' : 'postgres';
}

/**
 * Runs `fn` in a transaction of its own, or, when `db` is a transaction already (a
 * repository bound to a unit of work), in that one: the caller's commit is the commit.
 */
export function atomic<T>(db: Db, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.isTransaction ? fn(db as Transaction<Database>) : db.transaction().execute(fn);
}

/** Whether `db` talks to PostgreSQL, for the few statements the two engines write differently. */
export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/**
 * The pg type parsers of the gateway's pool, given to the pool rather than set on pg's global
 * registry, so that importing this module changes nothing for any other pg client in the process.
 */
export const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    // BIGINT (int8) arrives as a string from pg; sizes and counts fit in a double.
    oid === pg.types.builtins.INT8 && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Opens a database lazily: nothing connects until the first query. SQLite gets WAL,
 * foreign keys, a busy timeout and its checkpoints in a worker thread (`checkpointer.ts`);
 * PostgreSQL a pool of `poolSize` connections whose wait is bounded by `poolWait`.
 */
export function createDatabase({
  url,
  onQuery,
  onBackgroundError = (error) => console.error('[assetgate]', error),
  cacheSize = 8 * 1024 ** 2,
  statementCacheMax = 500,
  poolSize = 10,
  poolWait = 10,
}: DatabaseOptions): Db {
  const log = onQuery ? (event: LogEvent) => onQuery(event) : undefined;
  if (dialectOf(url) === 'sqlite') {
    const file = url.slice('sqlite:'.length);
    return new Kysely<Database>({
      dialect: new SqliteDialect({
        database: async () => {
          if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
          const db = new SQLite(file);
          db.pragma('journal_mode = WAL');
          // WAL + NORMAL: a commit survives a crash of the process (the WAL is in the OS cache); a power
          // cut may lose the last commits, never corrupt. Blobs are fsynced before their row is written.
          db.pragma('synchronous = NORMAL');
          db.pragma('foreign_keys = ON');
          db.pragma('busy_timeout = 5000');
          // Negative: a size in KiB rather than a count of pages, whatever the page size.
          db.pragma(`cache_size = -${Math.ceil(cacheSize / 1024)}`);
          // SQLite's lower() folds ASCII only; PostgreSQL's folds every script. unicode_lower() does
          // here what lower() does there, so that a search for "ärger" finds "ÄRGER".
          db.function('unicode_lower', { deterministic: true }, (text: unknown) =>
            typeof text === 'string' ? text.toLowerCase() : text,
          );
          if (file === ':memory:') return withStatementCache(db, { limit: statementCacheMax });
          db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT}`);
          const checkpointer = startCheckpointer(file, onBackgroundError);
          return withStatementCache(db, {
            limit: statementCacheMax,
            close: () => {
              checkpointer.stop();
              db.close();
            },
          });
        },
      }),
      log,
    });
  }
  return new Kysely<Database>({
    dialect: new PostgresDialect({ pool: async () => boundedPool({ url, poolSize, poolWait, onBackgroundError }) }),
    log,
  });
}

/**
 * pg's pool, whose wait for a connection ends: when all `poolSize` are busy, or a new one
 * does not open, within `poolWait` seconds, the query fails with 503 SERVICE_UNAVAILABLE
 * (pg's own errors carry no code, only these messages), and the request is answered
 * rather than held open until the client gives up.
 */
function boundedPool(options: {
  url: string;
  poolSize: number;
  poolWait: number;
  onBackgroundError: (error: unknown) => void;
}): PostgresPool {
  const { url, poolSize, poolWait, onBackgroundError } = options;
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: Math.max(1, Math.round(poolWait * 1000)),
    types: pgTypes,
  });
  // An idle connection the server ends (a restart, an idle timeout) is reported here; unheard,
  // the event would end the process.
  pool.on('error', onBackgroundError);
  return {
    connect: () =>
      pool.connect().catch((error: unknown) => {
        const message = error instanceof Error ? error.message : '';
        if (message === 'timeout exceeded when trying to connect') {
          throw new ServiceUnavailableError(
            1,
            `Every database connection (${poolSize}) stayed busy for ${poolWait} s; try again in a moment.`,
            { cause: error },
          );
        }
        if (message.startsWith('Connection terminated due to connection timeout')) {
          throw new ServiceUnavailableError(1, `The database did not accept a connection within ${poolWait} s.`, {
            cause: error,
          });
        }
        throw error;
      }),
    end: () => pool.end(),
  };
}

/**
 * What Kysely's SQLite driver is given instead of the raw connection, for speed:
 *
 * - Kysely prepares every statement anew, and preparing costs more than running a
 *   small query. Statements are cached by SQL text (bounded: the product's queries
 *   are a small fixed set, varying only in how many `?` an IN list has; at most
 *   SQLITE_STATEMENT_CACHE, the oldest dropped first).
 * - better-sqlite3 builds each row object property by property, which for a page of
 *   wide rows costs twice what reading them does. Readers fetch rows as arrays and
 *   build objects with a function made once per statement (`row-builder.ts`).
 */
export function withStatementCache(
  db: SQLite.Database,
  { limit, close = () => db.close() }: { limit: number; close?: () => void },
): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close,
    prepare(source: string): SqliteStatement {
      let statement = cache.get(source);
      if (!statement) {
        if (cache.size >= limit) cache.delete(cache.keys().next().value!);
        statement = fastRows(db.prepare(source));
        cache.set(source, statement);
      }
      return statement;
    },
  };
}

function fastRows(statement: SQLite.Statement): SqliteStatement {
  if (!statement.reader) return statement;
  const toRow = rowBuilder(statement.columns().map((column) => column.name));
  if (!toRow) return statement;
  const rows = statement.raw(true);
  return {
    reader: true,
    all: (parameters) => (rows.all(parameters) as unknown[][]).map(toRow),
    run: (parameters) => statement.run(parameters),
    *iterate(parameters) {
      for (const values of rows.iterate(parameters) as IterableIterator<unknown[]>) yield toRow(values);
    },
  };
}

/** True when `error` is a unique-constraint violation on either engine. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}

/** Current time as the ISO string every timestamp column holds. */
export function nowIso(clock: () => number = Date.now): string {
  return new Date(clock()).toISOString();
}
