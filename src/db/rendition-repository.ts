import type { Insertable } from 'kysely';
import { atomic, type Db } from './database.js';
import type { RenditionRow, RenditionsTable } from './types.js';

/** What names one kept rendition (with the blob it was recorded with) and what it occupies. */
export type RenditionKey = Pick<RenditionRow, 'asset_id' | 'variant' | 'blob_key' | 'size'>;

/** Image renditions kept as derived blobs: a cache, bounded by bytes and per asset (see RenditionService). */
export class RenditionRepository {
  constructor(private readonly db: Db) {}

  find(assetId: string, variant: string): Promise<RenditionRow | undefined> {
    return this.db
      .selectFrom('renditions')
      .selectAll()
      .where('asset_id', '=', assetId)
      .where('variant', '=', variant)
      .executeTakeFirst();
  }

  /**
   * Records a rendition unless one of the same variant is there already (another gateway
   * made it meanwhile); the row that stands. Only while the asset exists: a rendition of
   * an asset deleted meanwhile is not recorded (undefined), and its blob is the caller's to delete.
   */
  async insert(row: Insertable<RenditionsTable>): Promise<RenditionRow | undefined> {
    return atomic(this.db, async (trx) => {
      const asset = await trx.selectFrom('assets').select('id').where('id', '=', row.asset_id).executeTakeFirst();
      if (!asset) return undefined;
      await trx
        .insertInto('renditions')
        .values(row)
        .onConflict((oc) => oc.columns(['asset_id', 'variant']).doNothing())
        .execute();
      return trx
        .selectFrom('renditions')
        .selectAll()
        .where('asset_id', '=', row.asset_id)
        .where('variant', '=', row.variant)
        .executeTakeFirst();
    });
  }

  /** Forgets an asset's renditions; their blob keys, to delete once the transaction is done. */
  async deleteAll(assetId: string): Promise<string[]> {
    const rows = await this.db.deleteFrom('renditions').where('asset_id', '=', assetId).returning('blob_key').execute();
    return rows.map((row) => row.blob_key);
  }

  /**
   * Forgets renditions, each only while it still has the blob it was recorded with (one made
   * again meanwhile has another). The ones forgotten: their blobs are the caller's to delete.
   */
  async remove(rows: readonly RenditionKey[]): Promise<RenditionKey[]> {
    if (rows.length === 0) return [];
    return this.db
      .deleteFrom('renditions')
      .where((eb) =>
        eb.or(
          rows.map((row) =>
            eb.and([
              eb('asset_id', '=', row.asset_id),
              eb('variant', '=', row.variant),
              eb('blob_key', '=', row.blob_key),
            ]),
          ),
        ),
      )
      .returning(['asset_id', 'variant', 'blob_key', 'size'])
      .execute();
  }

  /** Records that a rendition was served at `at` (an ISO time): it is evicted later. */
  async touch(row: RenditionKey, at: string): Promise<void> {
    await this.db
      .updateTable('renditions')
      .set({ used_at: at })
      .where('asset_id', '=', row.asset_id)
      .where('variant', '=', row.variant)
      .execute();
  }

  /** How many renditions of one asset are kept. */
  async countOf(assetId: string): Promise<number> {
    const row = await this.db
      .selectFrom('renditions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('asset_id', '=', assetId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Bytes every kept rendition occupies, of every org. */
  async totalBytes(): Promise<number> {
    const row = await this.db
      .selectFrom('renditions')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size'), eb.lit(0)).as('bytes'))
      .executeTakeFirstOrThrow();
    return Number(row.bytes);
  }

  /**
   * The `limit` least recently used renditions (of one asset, when given), leaving out
   * `spare`: the one just made, which its caller is about to serve.
   */
  leastRecentlyUsed(options: { assetId?: string; limit: number; spare: RenditionKey }): Promise<RenditionKey[]> {
    let query = this.db
      .selectFrom('renditions')
      .select(['asset_id', 'variant', 'blob_key', 'size'])
      .where((eb) =>
        eb.not(eb.and([eb('asset_id', '=', options.spare.asset_id), eb('variant', '=', options.spare.variant)])),
      )
      .orderBy('used_at')
      .orderBy('created_at')
      .limit(options.limit);
    if (options.assetId) query = query.where('asset_id', '=', options.assetId);
    return query.execute();
  }

  /** Bytes an org's renditions occupy, and how many there are. */
  async usage(orgId: string): Promise<{ count: number; bytes: number }> {
    const row = await this.db
      .selectFrom('renditions')
      .select((eb) => [
        eb.fn.countAll<number>().as('n'),
        eb.fn.coalesce(eb.fn.sum<number>('size'), eb.lit(0)).as('bytes'),
      ])
      .where('org_id', '=', orgId)
      .executeTakeFirstOrThrow();
    return { count: Number(row.n), bytes: Number(row.bytes) };
  }

  /** Every rendition, page by page, for the consistency check. */
  async pageAll(after: { assetId: string; variant: string } | null, limit: number): Promise<RenditionRow[]> {
    let query = this.db.selectFrom('renditions').selectAll().orderBy('asset_id').orderBy('variant').limit(limit);
    if (after) {
      query = query.where((eb) =>
        eb.or([
          eb('asset_id', '>', after.assetId),
          eb.and([eb('asset_id', '=', after.assetId), eb('variant', '>', after.variant)]),
        ]),
      );
    }
    return query.execute();
  }
}
