import { type Kysely, sql } from 'kysely';

/**
 * Identical bytes are stored once per org and mode. `blobs` is the org's copy of each
 * checksum: the key its bytes live under and how many assets (the trash included) hold
 * it. An asset whose bytes are already stored points at that key; the bytes go when the
 * last asset holding them does.
 *
 * Assets stored before this point each have a blob of their own. The first of each
 * checksum becomes the org's copy and the others point at it; their own blobs are then
 * owned by nothing, and `fsck --repair` frees them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('blobs')
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('checksum', 'text', (c) => c.notNull())
    .addColumn('blob_key', 'text', (c) => c.notNull().unique())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('ref_count', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('blobs_pk', ['org_id', 'mode', 'checksum'])
    .execute();
  await sql`insert into blobs (org_id, mode, checksum, blob_key, size, ref_count, created_at)
    select org_id, mode, checksum, min(blob_key), max(size), count(*), min(created_at)
    from assets where blob_key is not null and checksum is not null
    group by org_id, mode, checksum`.execute(db);
  await sql`update assets set blob_key = (
      select b.blob_key from blobs b
      where b.org_id = assets.org_id and b.mode = assets.mode and b.checksum = assets.checksum)
    where blob_key is not null and checksum is not null and blob_key <> (
      select b.blob_key from blobs b
      where b.org_id = assets.org_id and b.mode = assets.mode and b.checksum = assets.checksum)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('blobs').execute();
}
