import type { Kysely } from 'kysely';

/**
 * Signed URLs: a version on each asset that outstanding URLs must match, counters
 * for issued URLs, what a two-step upload declared, and fetch-limited download tokens.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const columns: [string, 'integer' | 'text' | 'bigint', boolean][] = [
    ['url_version', 'integer', true],
    ['download_urls_issued', 'integer', true],
    ['exhausted_at', 'text', false],
    ['upload_expires_at', 'text', false],
    ['declared_size', 'bigint', false],
    ['declared_checksum', 'text', false],
  ];
  for (const [name, type, counter] of columns) {
    await db.schema
      .alterTable('assets')
      .addColumn(name, type, (c) => (counter ? c.notNull().defaultTo(0) : c))
      .execute();
  }
  await db.schema.createIndex('assets_waiting_idx').on('assets').columns(['status', 'upload_expires_at']).execute();

  await db.schema
    .createTable('download_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('asset_id', 'text', (c) => c.notNull().references('assets.id').onDelete('cascade'))
    .addColumn('max_fetches', 'integer', (c) => c.notNull())
    .addColumn('fetches', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('download_tokens_expiry_idx').on('download_tokens').columns(['expires_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('download_tokens').execute();
  for (const name of [
    'declared_checksum',
    'declared_size',
    'upload_expires_at',
    'exhausted_at',
    'download_urls_issued',
    'url_version',
  ]) {
    await db.schema.alterTable('assets').dropColumn(name).execute();
  }
}
