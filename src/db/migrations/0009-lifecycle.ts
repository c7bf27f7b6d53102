import type { Kysely } from 'kysely';

/**
 * The asset lifecycle. The trash: a deleted asset keeps its row and bytes, with the
 * time it was deleted, until it is restored or purged (by the sweep after
 * TRASH_RETENTION, or on request). Versions: replacing an asset's bytes keeps its id
 * and bumps `version`; each earlier version's facts stay in `asset_versions`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('assets').addColumn('trashed_at', 'text').execute();
  await db.schema
    .alterTable('assets')
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
  // The sweep's purge reads the oldest trashed rows; live rows (null) are most of the table.
  await db.schema.createIndex('assets_trashed_idx').on('assets').column('trashed_at').execute();
  // `assets(filter: { checksum })`: an org's copies of the same bytes.
  await db.schema.createIndex('assets_checksum_idx').on('assets').columns(['org_id', 'mode', 'checksum']).execute();
  await db.schema
    .createTable('asset_versions')
    .addColumn('asset_id', 'text', (c) => c.notNull().references('assets.id').onDelete('cascade'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('checksum', 'text')
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('mime_type', 'text')
    .addColumn('filename', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('replaced_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('asset_versions_pk', ['asset_id', 'version'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('asset_versions').execute();
  await db.schema.dropIndex('assets_checksum_idx').execute();
  await db.schema.dropIndex('assets_trashed_idx').execute();
  await db.schema.alterTable('assets').dropColumn('version').execute();
  await db.schema.alterTable('assets').dropColumn('trashed_at').execute();
}
