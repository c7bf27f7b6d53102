import type { Kysely } from 'kysely';

/**
 * Image renditions, made on request and kept as derived blobs (one row each, keyed by the
 * normalised variant: dimensions, fit, format, quality, focal point and the bytes' digest),
 * and the focal point `fit=cover` crops around.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('renditions')
    .addColumn('asset_id', 'text', (c) => c.notNull())
    .addColumn('variant', 'text', (c) => c.notNull())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('blob_key', 'text', (c) => c.notNull())
    .addColumn('mime_type', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('width', 'integer', (c) => c.notNull())
    .addColumn('height', 'integer', (c) => c.notNull())
    .addColumn('checksum', 'text', (c) => c.notNull())
    .addColumn('animated', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('renditions_pk', ['asset_id', 'variant'])
    .execute();
  await db.schema.createIndex('renditions_org_idx').on('renditions').column('org_id').execute();
  await db.schema.alterTable('assets').addColumn('focal_x', 'real').execute();
  await db.schema.alterTable('assets').addColumn('focal_y', 'real').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('assets').dropColumn('focal_y').execute();
  await db.schema.alterTable('assets').dropColumn('focal_x').execute();
  await db.schema.dropTable('renditions').execute();
}
