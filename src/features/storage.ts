import { type BlobStore, createBlobStore } from '../blob/index.js';
import type { Config } from '../config.js';
import { createDatabase, type Db } from '../db/database.js';
import { migrateOrThrow } from '../db/migrate.js';
import { refreshStatistics } from '../db/statistics.js';
import { PageStatements } from '../db/page-statements.js';
import { createRepositories, type UnitOfWork } from '../db/repositories.js';
import type { Feature } from './feature.js';

/** The database (migrated), its repositories and the blob store: what the gateway and the CLI stand on. */
export interface Storage extends Feature {
  db: Db;
  repos: UnitOfWork;
  blobs: BlobStore;
}

/** The database, migrated, and its repositories: what `assetgate keys` needs. */
export interface DatabaseFeature extends Feature {
  db: Db;
  repos: UnitOfWork;
}

/** Opens the configured database (or the one given) and brings its schema up to date. */
export async function openDatabase(
  config: Config,
  given: { db?: Db; logError?: (error: unknown) => void } = {},
): Promise<DatabaseFeature> {
  const db =
    given.db ??
    createDatabase({
      url: config.databaseUrl,
      onBackgroundError: given.logError,
      cacheSize: config.sqliteCacheSize,
      statementCacheMax: config.sqliteStatementCache,
      poolSize: config.databasePool,
      poolWait: config.databasePoolWait,
    });
  try {
    await migrateOrThrow(db);
    // Plans need statistics from the start: PostgreSQL without autovacuum would have none.
    await refreshStatistics(db, { all: true });
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const pageStatements = new PageStatements(config.documentCacheMax);
  return { db, repos: createRepositories(db, { pageStatements }), close: () => db.destroy() };
}

/** Opens the configured database and store (or the ones given) and brings the schema up to date. */
export async function openStorage(
  config: Config,
  given: { db?: Db; blobs?: BlobStore; logError?: (error: unknown) => void } = {},
): Promise<Storage> {
  const database = await openDatabase(config, given);
  const blobs = given.blobs ?? createBlobStore(config.blobStore, config.dataDir, config.s3);
  return {
    ...database,
    blobs,
    async close() {
      await blobs.close();
      await database.close();
    },
  };
}
