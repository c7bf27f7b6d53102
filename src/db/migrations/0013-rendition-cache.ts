import { type Kysely, sql } from 'kysely';

/**
 * Renditions are a cache: each keeps when it was last served (`used_at`, written at most
 * once a minute), so the least recently used go first when the byte budget or the
 * per-asset cap is passed. Renditions made before this point count as used when made.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('renditions').addColumn('used_at', 'text').execute();
  await sql`update renditions set used_at = created_at`.execute(db);
  await db.schema.createIndex('renditions_used_idx').on('renditions').columns(['used_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('renditions_used_idx').execute();
  await db.schema.alterTable('renditions').dropColumn('used_at').execute();
}
