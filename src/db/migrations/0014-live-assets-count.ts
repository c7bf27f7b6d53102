import type { Kysely } from 'kysely';
import { sql } from 'kysely';

/**
 * `totalCount` counts an org's live assets (not trashed, not exhausted) in one mode: a partial
 * index of exactly those rows lets PostgreSQL count them from the index alone (an index-only
 * scan, once the table is vacuumed) instead of reading the whole table. SQLite uses it too.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('assets_live_idx')
    .on('assets')
    .columns(['org_id', 'mode'])
    .where(sql.ref('trashed_at'), 'is', null)
    .where(sql.ref('exhausted_at'), 'is', null)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('assets_live_idx').execute();
}
