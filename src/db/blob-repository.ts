import { sql } from 'kysely';
import { atomic, type Db, isPostgres } from './database.js';
import type { AssetRow, BlobRow, Tenant } from './types.js';

/** What the consistency check found wrong with one copy's count. */
export interface RefCountMismatch {
  key: string;
  orgId: string;
  /** Null: assets hold the key, but no copy records it. */
  recorded: number | null;
  actual: number;
}

/**
 * The org's one copy of each content (per mode), counted by reference. Every change of
 * an asset's bytes claims or releases in the transaction that changes its row, so a
 * count always equals the rows that hold the key: two uploads of the same bytes meet on
 * the primary key, and an upload racing the release of the last holder either counts
 * before it (the copy stays) or finds the copy gone and keeps its own bytes.
 *
 * Lock order: a transaction that changes both the org's row (its stored bytes) and a
 * copy changes the org's row first. Uploads and deletes of the same bytes then queue on
 * the org instead of each holding what the other waits for (a deadlock on PostgreSQL).
 */
export class BlobRepository {
  readonly #postgres: boolean;

  constructor(private readonly db: Db) {
    this.#postgres = isPostgres(db);
  }

  /**
   * Run these in the transaction that changes the asset's row (a repository of the unit of
   * work's `transaction`).
   *
   * Counts `asset`, just written with fresh bytes under its `blob_key`, as a holder of its
   * org's copy of them: when the org has no copy yet, that key becomes it. When it had one,
   * the row (and `asset`) is pointed at it and the fresh key is returned: those bytes are
   * redundant, to be deleted once this commits.
   */
  async hold(asset: AssetRow, now: string): Promise<string | null> {
    const { org_id, mode, checksum, blob_key, size } = asset;
    if (!blob_key || !checksum) throw new Error(`asset ${asset.id} holds no bytes to count`);
    const { blob_key: key } = await this.db
      .insertInto('blobs')
      .values({ org_id, mode, checksum, blob_key, size, ref_count: 1, created_at: now })
      .onConflict((oc) =>
        oc.columns(['org_id', 'mode', 'checksum']).doUpdateSet({ ref_count: sql`blobs.ref_count + 1` }),
      )
      .returning('blob_key')
      .executeTakeFirstOrThrow();
    if (key === blob_key) return null;
    await this.db.updateTable('assets').set({ blob_key: key }).where('id', '=', asset.id).execute();
    asset.blob_key = key;
    return blob_key;
  }

  /** Counts one more holder of the tenant's copy of `checksum`, if it has one: its key and size. */
  async claimExisting(tenant: Tenant, checksum: string): Promise<{ blob_key: string; size: number } | undefined> {
    const row = await this.db
      .updateTable('blobs')
      .set({ ref_count: sql`ref_count + 1` })
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .where('checksum', '=', checksum)
      .returning(['blob_key', 'size'])
      .executeTakeFirst();
    return row && { blob_key: row.blob_key, size: Number(row.size) };
  }

  /**
   * One holder of `key` less; true when it was the last, and the bytes are to be deleted
   * once the transaction commits. A key no copy records (stored before copies were
   * counted) had one holder.
   */
  async release(key: string): Promise<boolean> {
    const row = await this.db
      .updateTable('blobs')
      .set({ ref_count: sql`ref_count - 1` })
      .where('blob_key', '=', key)
      .returning('ref_count')
      .executeTakeFirst();
    if (row && row.ref_count > 0) return false;
    if (row) await this.db.deleteFrom('blobs').where('blob_key', '=', key).where('ref_count', '<=', 0).execute();
    return true;
  }

  /** Bytes the tenant's copies occupy: each content once. */
  async occupied(tenant: Tenant): Promise<number> {
    const row = await this.db
      .selectFrom('blobs')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size'), eb.lit(0)).as('bytes'))
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .executeTakeFirstOrThrow();
    return Number(row.bytes);
  }

  /** Every key a copy records, for the consistency check. */
  async allKeys(): Promise<Set<string>> {
    const rows = await this.db.selectFrom('blobs').select('blob_key').execute();
    return new Set(rows.map((row) => row.blob_key));
  }

  /**
   * Copies whose count differs from the assets holding their key, and keys assets hold
   * that no copy records: one statement, one snapshot.
   */
  async mismatches(): Promise<RefCountMismatch[]> {
    const counted = await sql<{ blob_key: string; org_id: string; ref_count: number; actual: number }>`
      select blob_key, org_id, ref_count, actual from (
        select b.blob_key, b.org_id, b.ref_count,
          (select count(*) from assets a where a.blob_key = b.blob_key) as actual
        from blobs b) counted
      where ref_count <> actual`.execute(this.db);
    const unrecorded = await sql<{ blob_key: string; org_id: string; actual: number }>`
      select a.blob_key, min(a.org_id) as org_id, count(*) as actual from assets a
      where a.blob_key is not null and not exists (select 1 from blobs b where b.blob_key = a.blob_key)
      group by a.blob_key`.execute(this.db);
    return [
      ...counted.rows.map((r) => ({
        key: r.blob_key,
        orgId: r.org_id,
        recorded: Number(r.ref_count),
        actual: Number(r.actual),
      })),
      ...unrecorded.rows.map((r) => ({ key: r.blob_key, orgId: r.org_id, recorded: null, actual: Number(r.actual) })),
    ];
  }

  /**
   * Sets the count of `key` to the assets holding it now, with the copy locked so no claim
   * or release runs between the count and the write; records a copy for a key assets hold
   * without one. True when no asset holds the key any more: the copy is forgotten and its
   * bytes are to be deleted.
   */
  async recount(key: string, now: string): Promise<boolean> {
    return atomic(this.db, async (trx) => {
      let lock = trx.selectFrom('blobs').select('blob_key').where('blob_key', '=', key);
      if (this.#postgres) lock = lock.forUpdate();
      const copy = await lock.executeTakeFirst();
      const holders = await trx
        .selectFrom('assets')
        .select(['org_id', 'mode', 'checksum', 'size'])
        .where('blob_key', '=', key)
        .execute();
      if (holders.length === 0) {
        if (copy) await trx.deleteFrom('blobs').where('blob_key', '=', key).execute();
        return true;
      }
      if (copy) {
        await trx.updateTable('blobs').set({ ref_count: holders.length }).where('blob_key', '=', key).execute();
        return false;
      }
      const [first] = holders;
      if (first.checksum === null) return false;
      await trx
        .insertInto('blobs')
        .values({
          org_id: first.org_id,
          mode: first.mode,
          checksum: first.checksum,
          blob_key: key,
          size: first.size,
          ref_count: holders.length,
          created_at: now,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
      return false;
    });
  }

  /** The tenant's copy of `checksum`, if it has one. */
  async find(tenant: Tenant, checksum: string): Promise<BlobRow | undefined> {
    return this.db
      .selectFrom('blobs')
      .selectAll()
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .where('checksum', '=', checksum)
      .executeTakeFirst();
  }
}
