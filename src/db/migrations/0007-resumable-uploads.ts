import type { Kysely } from 'kysely';

/**
 * Resumable (tus) uploads: an asset WAITING for its bytes knows how many have arrived
 * and how much quota they hold; each acknowledged chunk is a part blob, in order, until
 * the last one arrives and the parts become the asset's one blob.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('assets').addColumn('received_bytes', 'bigint').execute();
  await db.schema
    .alterTable('assets')
    .addColumn('upload_reserved', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createTable('upload_parts')
    .addColumn('asset_id', 'text', (c) => c.notNull())
    .addColumn('offset', 'bigint', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('blob_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('upload_parts_pk', ['asset_id', 'offset'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('upload_parts').execute();
  await db.schema.alterTable('assets').dropColumn('upload_reserved').execute();
  await db.schema.alterTable('assets').dropColumn('received_bytes').execute();
}
