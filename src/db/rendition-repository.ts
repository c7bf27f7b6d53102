import type { Insertable } from 'kysely';
import { atomic, type Db } from './database.js';
import type { RenditionRow, RenditionsTable } from './types.js';

/** Image renditions kept as derived blobs. */
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

  /** Forgets one rendition whose blob is gone (it is made again on the next request). */
  async forget(assetId: string, variant: string): Promise<void> {
    await this.db.deleteFrom('renditions').where('asset_id', '=', assetId).where('variant', '=', variant).execute();
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
