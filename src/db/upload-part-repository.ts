import { atomic, type Db } from './database.js';
import type { AssetRow, UploadPartRow } from './types.js';

/** A chunk just written to the store, to be recorded as the next part of its upload. */
export interface NewPart {
  assetId: string;
  offset: number;
  size: number;
  blobKey: string;
  /** Bytes of quota the part holds from now on, added to the upload's reservation. */
  reserved: number;
}

/**
 * The parts of resumable uploads. A part is recorded in the same statement group that
 * moves its asset's `received_bytes` from exactly `offset` to `offset + size`, so two
 * writers racing for one offset (on one gateway or several) can never both land.
 */
export class UploadPartRepository {
  constructor(private readonly db: Db) {}

  /**
   * Records `part` and the quota it holds (`part.reserved`), and extends the upload's life to
   * `expiresAt`, if the upload is still WAITING at `part.offset` and not expired at `now`.
   * The updated asset and the blob keys of parts it superseded (for the caller to delete), or
   * undefined when another chunk, a delete or the expiry came first.
   */
  async append(
    part: NewPart,
    expiresAt: string,
    now: string,
  ): Promise<{ asset: AssetRow; stale: string[] } | undefined> {
    return atomic(this.db, async (trx) => {
      const row = await trx
        .updateTable('assets')
        .set((eb) => ({
          received_bytes: part.offset + part.size,
          upload_reserved: eb('upload_reserved', '+', part.reserved),
          upload_expires_at: expiresAt,
          updated_at: now,
        }))
        .where('id', '=', part.assetId)
        .where('status', '=', 'WAITING')
        .where('received_bytes', '=', part.offset)
        .where('upload_expires_at', '>', now)
        .returningAll()
        .executeTakeFirst();
      if (!row) return undefined;
      // Parts at or past this offset are what a refused or failed finish left before a crash: superseded.
      const stale = await trx
        .deleteFrom('upload_parts')
        .where('asset_id', '=', part.assetId)
        .where('offset', '>=', part.offset)
        .returning('blob_key')
        .execute();
      if (part.size > 0) {
        await trx
          .insertInto('upload_parts')
          .values({
            asset_id: part.assetId,
            offset: part.offset,
            size: part.size,
            blob_key: part.blobKey,
            created_at: now,
          })
          .execute();
      }
      return { asset: row, stale: stale.map((r) => r.blob_key) };
    });
  }

  /** The parts of an upload, in order. */
  list(assetId: string): Promise<UploadPartRow[]> {
    return this.db.selectFrom('upload_parts').selectAll().where('asset_id', '=', assetId).orderBy('offset').execute();
  }

  /** Forgets an upload's parts; returns their blob keys for the caller to delete (after its transaction). */
  async deleteAll(assetId: string): Promise<string[]> {
    const rows = await this.db
      .deleteFrom('upload_parts')
      .where('asset_id', '=', assetId)
      .returning('blob_key')
      .execute();
    return [...new Set(rows.map((row) => row.blob_key))];
  }

  /**
   * Forgets the parts that no upload needs any more (its asset went, or has its bytes:
   * a crash between the two steps of finishing left them); returns the blob keys to delete,
   * leaving out one that became its asset's blob (an upload that grew in place).
   */
  async deleteSettled(): Promise<string[]> {
    const settled = await this.db
      .selectFrom('upload_parts')
      .leftJoin('assets', 'assets.id', 'upload_parts.asset_id')
      .select(['upload_parts.asset_id', 'upload_parts.offset', 'upload_parts.blob_key', 'assets.blob_key as kept'])
      // An asset without its blob yet may be finishing from these very parts right now.
      .where((eb) => eb.or([eb('assets.id', 'is', null), eb('assets.blob_key', 'is not', null)]))
      .execute();
    const keys = new Set<string>();
    for (const part of settled) {
      await this.db
        .deleteFrom('upload_parts')
        .where('asset_id', '=', part.asset_id)
        .where('offset', '=', part.offset)
        .execute();
      if (part.blob_key !== part.kept) keys.add(part.blob_key);
    }
    return [...keys];
  }

  /** Every part's blob key, for the consistency check (parts are owned blobs, not orphans). */
  async allKeys(): Promise<Set<string>> {
    const rows = await this.db.selectFrom('upload_parts').select('blob_key').execute();
    return new Set(rows.map((row) => row.blob_key));
  }
}
