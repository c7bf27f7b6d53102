import { type Kysely, type Migration, type MigrationResultSet, Migrator, sql } from 'kysely';
import { isPostgres } from './database.js';
import * as initial from './migrations/0001-initial.js';
import * as apiKeys from './migrations/0002-api-keys.js';
import * as signedUrls from './migrations/0003-signed-urls.js';
import * as jobs from './migrations/0004-jobs.js';
import * as quota from './migrations/0005-quota.js';
import * as fairJobs from './migrations/0006-fair-jobs.js';
import * as resumableUploads from './migrations/0007-resumable-uploads.js';
import * as renditions from './migrations/0008-renditions.js';
import * as lifecycle from './migrations/0009-lifecycle.js';
import * as eventsAndWebhooks from './migrations/0010-events-and-webhooks.js';
import * as fullTextSearch from './migrations/0011-full-text-search.js';
import * as storedOnce from './migrations/0012-stored-once.js';
import * as renditionCache from './migrations/0013-rendition-cache.js';
import * as liveAssetsCount from './migrations/0014-live-assets-count.js';

/** Every migration, in order. Static imports: the build carries them, no folder scan at run time. */
const MIGRATIONS: Record<string, Migration> = {
  '0001-initial': initial,
  '0002-api-keys': apiKeys,
  '0003-signed-urls': signedUrls,
  '0004-jobs': jobs,
  '0005-quota': quota,
  '0006-fair-jobs': fairJobs,
  '0007-resumable-uploads': resumableUploads,
  '0008-renditions': renditions,
  '0009-lifecycle': lifecycle,
  '0010-events-and-webhooks': eventsAndWebhooks,
  '0011-full-text-search': fullTextSearch,
  '0012-stored-once': storedOnce,
  '0013-rendition-cache': renditionCache,
  '0014-live-assets-count': liveAssetsCount,
};

/**
 * Brings the schema up to date. Returns Kysely's result set (like its Migrator)
 * so callers decide how to report; `migrateOrThrow` is the start-up shortcut.
 */
export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResultSet> {
  return (await migratorOf(db)).migrateToLatest();
}

/** Brings the schema up to migration `name` (an upgrade is tested from the version before it). */
export async function migrateTo(db: Kysely<any>, name: keyof typeof MIGRATIONS & string): Promise<MigrationResultSet> {
  return (await migratorOf(db)).migrateTo(name);
}

async function migratorOf(db: Kysely<any>): Promise<Migrator> {
  return new Migrator({
    db,
    provider: { getMigrations: async () => MIGRATIONS },
    migrationTableName: 'assetgate_migrations',
    migrationLockTableName: 'assetgate_migrations_lock',
    // On PostgreSQL the migrator looks for its tables in every schema: name ours, or a
    // second deployment in another schema of the same database would find the first's.
    ...(isPostgres(db) && { migrationTableSchema: await currentSchema(db) }),
  });
}

async function currentSchema(db: Kysely<any>): Promise<string> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  return rows[0].schema;
}

/** Runs the migrations and throws with the failing migration's name when one fails. */
export async function migrateOrThrow(db: Kysely<any>): Promise<void> {
  const { error, results } = await migrateToLatest(db);
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    // Outside any one migration (the connection, the migrations' own table or lock): say what failed.
    const what = failed ? `database migration ${failed} failed` : 'database migrations could not run';
    throw new Error(`${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
