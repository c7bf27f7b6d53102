import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, type LogEvent, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './types.js';

export type Db = Kysely<Database>;

/** Options for `createDatabase`. */
export interface DatabaseOptions {
  /** `sqlite:<file>`, `sqlite::memory:` or `postgres://…`. */
  url: string;
  /** Called after every statement; tests count statements with it. */
  onQuery?: (event: LogEvent) => void;
}

/** Which SQL engine a `Db` talks to, for the few places that must know. */
export function dialectOf(url: string): 'sqlite' | 'postgres' {
  return url.startsWith('sqlite:') ? 'sqlite' : 'postgres';
}

// BIGINT (int8) arrives as a string from pg; sizes fit in a double.
pg.types.setTypeParser(20, (value) => Number(value));

/**
 * Opens a database lazily: nothing connects until the first query. SQLite gets WAL,
 * foreign keys and a busy timeout; PostgreSQL a small pool.
 */
export function createDatabase({ url, onQuery }: DatabaseOptions): Db {
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
          return withStatementCache(db);
        },
      }),
      log,
    });
  }
  return new Kysely<Database>({
    dialect: new PostgresDialect({ pool: async () => new pg.Pool({ connectionString: url, max: 10 }) }),
    log,
  });
}

/**
 * Kysely prepares every statement anew; preparing costs more than running a small
 * query. Statements are cached by SQL text (bounded: the product's queries are a
 * small fixed set, varying only in how many `?` an IN list has).
 */
function withStatementCache(db: SQLite.Database, limit = 500): SQLite.Database {
  const cache = new Map<string, SQLite.Statement>();
  const prepare = db.prepare.bind(db);
  db.prepare = ((source: string) => {
    let statement = cache.get(source);
    if (!statement) {
      if (cache.size >= limit) cache.delete(cache.keys().next().value!);
      statement = prepare(source);
      cache.set(source, statement);
    }
    return statement;
  }) as SQLite.Database['prepare'];
  return db;
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
