import type { Kysely } from 'kysely';

/** Orgs, folders, assets and their tags. Portable DDL: SQLite and PostgreSQL. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('orgs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('directories')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('parent_id', 'text', (c) => c.references('directories.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('directories_tenant_idx')
    .on('directories')
    .columns(['org_id', 'mode', 'parent_id', 'name'])
    .execute();

  await db.schema
    .createTable('assets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('slug', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('failure_reason', 'text')
    .addColumn('filename', 'text')
    .addColumn('mime_type', 'text')
    .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('checksum', 'text')
    .addColumn('blob_key', 'text')
    .addColumn('width', 'integer')
    .addColumn('height', 'integer')
    .addColumn('page_count', 'integer')
    .addColumn('word_count', 'integer')
    .addColumn('duration', 'double precision')
    .addColumn('external_url', 'text')
    .addColumn('embed_url', 'text')
    .addColumn('thumbnail_key', 'text')
    .addColumn('directory_id', 'text', (c) => c.references('directories.id').onDelete('set null'))
    .addColumn('is_public', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('download_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  // One index per sort order, each ending in id: keyset pages seek, never scan.
  for (const column of ['created_at', 'updated_at', 'title', 'size']) {
    await db.schema
      .createIndex(`assets_${column}_idx`)
      .on('assets')
      .columns(['org_id', 'mode', column, 'id'])
      .execute();
  }
  await db.schema.createIndex('assets_slug_idx').on('assets').columns(['org_id', 'mode', 'slug']).unique().execute();
  await db.schema.createIndex('assets_directory_idx').on('assets').columns(['directory_id']).execute();
  await db.schema.createIndex('assets_blob_key_idx').on('assets').columns(['blob_key']).execute();

  await db.schema
    .createTable('asset_tags')
    .addColumn('asset_id', 'text', (c) => c.notNull().references('assets.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('tag', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('asset_tags_pk', ['asset_id', 'tag'])
    .execute();
  await db.schema
    .createIndex('asset_tags_tag_idx')
    .on('asset_tags')
    .columns(['org_id', 'mode', 'tag', 'asset_id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['asset_tags', 'assets', 'directories', 'orgs']) {
    await db.schema.dropTable(table).execute();
  }
}
