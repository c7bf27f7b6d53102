import { type Expression, type Insertable, type SqlBool, sql, type Transaction, type Updateable } from 'kysely';
import {
  type AssetBuilder,
  type AssetQueryFilter,
  countOf,
  type TenantAssetUsage,
  usageOf,
  filterExpression,
  type PageRequest,
  type PageRow,
  pageOf,
  writeSearchText,
} from './asset-queries.js';
import { visibleSql } from './asset-visibility.js';
import type { PageStatements } from './page-statements.js';

import { atomic, type Db, isPostgres } from './database.js';
import type { AssetRow, AssetsTable, AssetVersionRow, Database, Tenant } from './types.js';

/** Asset `id` of `tenant` while it is live: neither used up (exhausted) nor in the trash. */
function liveAsset(eb: AssetBuilder, tenant: Tenant, id: string): Expression<SqlBool> {
  return eb.and([eb('assets.id', '=', id), visibleSql(eb, { shelf: 'live', audience: tenant })]);
}

/** An asset's tags as the one string search indexes (`search_tags`). */
function searchTagsOf(tags: readonly string[]): string | null {
  return tags.length ? [...tags].sort().join(' ') : null;
}

async function insertTags(trx: Transaction<Database>, asset: AssetRow, tags: readonly string[]): Promise<void> {
  if (tags.length === 0) return;
  await trx
    .insertInto('asset_tags')
    .values(tags.map((tag) => ({ asset_id: asset.id, org_id: asset.org_id, mode: asset.mode, tag })))
    .execute();
}

/** Data access for assets and their tags. Every method is scoped to a tenant. */
export class AssetRepository {
  private readonly postgres: boolean;

  /** `statements`: page statements compiled per shape, shared by the repositories of one database. */
  constructor(
    private readonly db: Db,
    readonly statements: PageStatements,
  ) {
    this.postgres = isPostgres(db);
  }

  /** Rows for `ids` in the tenant, aligned with `ids` (`undefined` where there is none). */
  async findByIds(tenant: Tenant, ids: readonly string[]): Promise<(AssetRow | undefined)[]> {
    if (ids.length === 0) return [];
    const rows = await this.db
      .selectFrom('assets')
      .selectAll()
      .where((eb) => filterExpression(eb, { tenant, filter: { ids }, postgres: this.postgres }))
      .execute();
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id));
  }

  /** Public rows among `ids`, whatever their tenant: what an anonymous caller may read. */
  async findPublicByIds(ids: readonly string[]): Promise<(AssetRow | undefined)[]> {
    if (ids.length === 0) return [];
    const rows = await this.db
      .selectFrom('assets')
      .selectAll()
      .where('id', 'in', ids)
      .where((eb) => visibleSql(eb, { shelf: 'live', audience: 'anyone' }))
      .execute();
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id));
  }

  /** One keyset page, plus whether more rows lie beyond it in the walking direction. */
  page(tenant: Tenant, request: PageRequest): Promise<{ rows: PageRow[]; hasMore: boolean }> {
    return pageOf(this.db, { statement: this.statements.statement(this.db, { tenant, request }), request });
  }

  /** How many of the tenant's assets pass `filter`. */
  count(tenant: Tenant, filter: AssetQueryFilter): Promise<number> {
    return countOf(this.db, tenant, filter);
  }

  /** Tags of each asset, aligned with `assetIds`, sorted. */
  async tagsOfAnyTenant(assetIds: readonly string[]): Promise<string[][]> {
    if (assetIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('asset_tags')
      .select(['asset_id', 'tag'])
      .where('asset_id', 'in', assetIds)
      .orderBy('tag')
      .execute();
    const byAsset = new Map<string, string[]>();
    for (const row of rows) {
      const list = byAsset.get(row.asset_id);
      if (list) list.push(row.tag);
      else byAsset.set(row.asset_id, [row.tag]);
    }
    return assetIds.map((id) => byAsset.get(id) ?? []);
  }

  /**
   * Inserts an asset with its tags (in one transaction, or in the unit of work's). The
   * slug is made unique in the tenant: on a clash the id's first characters are appended.
   */
  async insert(
    row: Insertable<AssetsTable> & { id: string; slug: string },
    tags: readonly string[],
  ): Promise<AssetRow> {
    const suffixed = { ...row, slug: `${row.slug}-${row.id.slice(0, 8)}` };
    return atomic(this.db, async (trx) => {
      const values = (slug: Insertable<AssetsTable>) => ({ ...slug, search_tags: searchTagsOf(tags) });
      // A taken slug (another asset's, or a writer's picking the same at once) inserts nothing
      // here, and the suffixed one is taken instead: one statement when the slug is free, no
      // look beforehand. Not by catching the unique violation: on PostgreSQL that would abort
      // the caller's transaction.
      const inserted =
        (await trx
          .insertInto('assets')
          .values(values(row))
          .onConflict((oc) => oc.columns(['org_id', 'mode', 'slug']).doNothing())
          .returningAll()
          .executeTakeFirst()) ??
        (await trx.insertInto('assets').values(values(suffixed)).returningAll().executeTakeFirstOrThrow());
      await insertTags(trx, inserted, tags);
      return inserted;
    });
  }

  /** Applies `patch` (and replaces the tags when given); `undefined` when there is no such asset. */
  async update(
    tenant: Tenant,
    id: string,
    { patch, tags }: { patch: Updateable<AssetsTable>; tags?: readonly string[] },
  ): Promise<AssetRow | undefined> {
    const withTags = tags ? { ...patch, search_tags: searchTagsOf(tags) } : patch;
    // Making a public asset private kills every URL handed out for it, at once.
    const set =
      withTags.is_public === 0
        ? { ...withTags, url_version: sql<number>`url_version + (case when is_public = 1 then 1 else 0 end)` }
        : withTags;
    return atomic(this.db, async (trx) => {
      const updated = await trx
        .updateTable('assets')
        .set(set)
        .where((eb) => liveAsset(eb, tenant, id))
        .returningAll()
        .executeTakeFirst();
      if (!updated || !tags) return updated;
      await trx.deleteFrom('asset_tags').where('asset_id', '=', id).execute();
      await insertTags(trx, updated, tags);
      return updated;
    });
  }

  /**
   * Deletes the row (tags cascade; only while in `status` when given) and returns it, or
   * `undefined` when there was none. What it held beside the row is the caller's to
   * forget in the same transaction.
   */
  async delete(tenant: Tenant, id: string, status?: AssetRow['status']): Promise<AssetRow | undefined> {
    return this.db
      .deleteFrom('assets')
      .where('id', '=', id)
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .$if(status !== undefined, (q) => q.where('status', '=', status!))
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Moves a live asset to the trash: gone from lists and downloads, and every URL handed
   * out for it dies at once (its `url_version` moves on). `undefined` when there is no
   * live asset by that id.
   */
  async trash(tenant: Tenant, id: string, now: string): Promise<AssetRow | undefined> {
    return this.db
      .updateTable('assets')
      .set((eb) => ({ trashed_at: now, updated_at: now, url_version: eb('url_version', '+', 1) }))
      .where((eb) => liveAsset(eb, tenant, id))
      .returningAll()
      .executeTakeFirst();
  }

  /** Takes an asset out of the trash; `undefined` when the trash holds none by that id. */
  async restore(tenant: Tenant, id: string, now: string): Promise<AssetRow | undefined> {
    return this.db
      .updateTable('assets')
      .set({ trashed_at: null, updated_at: now })
      .where('id', '=', id)
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .where('trashed_at', 'is not', null)
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Swaps in new bytes for a live asset still at `previous.version` with
   * `previous.blob_key` (not replaced, deleted or trashed meanwhile): version and `url_version` move on (every
   * URL handed out for the old bytes dies), what was read from the old bytes is
   * forgotten, and the old version's facts go to `asset_versions`. `undefined` when
   * the asset changed meanwhile.
   */
  async replaceFile(previous: AssetRow, patch: Updateable<AssetsTable>, now: string): Promise<AssetRow | undefined> {
    return atomic(this.db, async (trx) => {
      const updated = await trx
        .updateTable('assets')
        .set((eb) => ({
          ...patch,
          version: eb('version', '+', 1),
          url_version: eb('url_version', '+', 1),
          updated_at: now,
        }))
        .where('id', '=', previous.id)
        .where('version', '=', previous.version)
        .where('blob_key', '=', previous.blob_key)
        .where('exhausted_at', 'is', null)
        .where('trashed_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (!updated) return undefined;
      // The old bytes were stored when the version before them was replaced (or with the asset).
      const before = await trx
        .selectFrom('asset_versions')
        .select('replaced_at')
        .where('asset_id', '=', previous.id)
        .orderBy('version', 'desc')
        .limit(1)
        .executeTakeFirst();
      await trx
        .insertInto('asset_versions')
        .values({
          asset_id: previous.id,
          version: previous.version,
          checksum: previous.checksum,
          size: previous.size,
          mime_type: previous.mime_type,
          filename: previous.filename,
          created_at: before?.replaced_at ?? previous.created_at,
          replaced_at: now,
        })
        .execute();
      // What search found in the old bytes goes with them.
      await writeSearchText(trx, this.postgres, { id: previous.id, blobKey: null, text: null });
      return updated;
    });
  }

  /**
   * What search finds in an asset's bytes (the text extraction read), while the asset
   * still holds `blobKey`; null forgets it (its bytes were replaced).
   */
  async setSearchText(id: string, blobKey: string | null, text: string | null): Promise<void> {
    await writeSearchText(this.db, this.postgres, { id, blobKey, text });
  }

  /** Earlier versions of each asset, newest first, aligned with `assetIds`. */
  async versionsOfAnyTenant(assetIds: readonly string[]): Promise<AssetVersionRow[][]> {
    if (assetIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('asset_versions')
      .selectAll()
      .where('asset_id', 'in', assetIds)
      .orderBy('version', 'desc')
      .execute();
    return assetIds.map((id) => rows.filter((row) => row.asset_id === id));
  }

  /**
   * Deletes (tags cascade) up to `limit` assets trashed before `before`, oldest first, in
   * every tenant; what they held beside their rows is the caller's to forget in the same transaction.
   */
  async purgeTrashedAllTenants(before: string, limit: number): Promise<AssetRow[]> {
    const due = this.db
      .selectFrom('assets')
      .select('id')
      .where('trashed_at', '<', before)
      .orderBy('trashed_at')
      .limit(limit);
    return this.db.deleteFrom('assets').where('id', 'in', due).returningAll().execute();
  }

  /** How many assets the tenant has and how many bytes they hold, and of those, how many are in the trash. */
  usage(tenant: Tenant): Promise<TenantAssetUsage> {
    return usageOf(this.db, tenant);
  }

  /** A row by id alone, exhausted or not: for signed URLs, which are capabilities in themselves. */
  async findByIdAnyTenant(id: string): Promise<AssetRow | undefined> {
    return this.db.selectFrom('assets').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Counts one more download URL handed out: the row as it is now. With a `limit`, the one
   * that reaches it marks the asset exhausted (`exhausted_at`), and none is handed out after
   * that: `undefined`.
   */
  async countIssuedUrl(
    tenant: Tenant,
    id: string,
    { limit, now }: { limit: number | null; now: string },
  ): Promise<AssetRow | undefined> {
    return this.db
      .updateTable('assets')
      .set((eb) => ({
        download_urls_issued: eb('download_urls_issued', '+', 1),
        ...(limit !== null && {
          exhausted_at: eb
            .case()
            .when('download_urls_issued', '>=', limit - 1)
            .then(now)
            .else(null)
            .end(),
        }),
      }))
      .where((eb) => liveAsset(eb, tenant, id))
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Moves a WAITING upload to PROCESSING if its URL (of `version`) is still good at `now`:
   * the one PUT that may fill it.
   */
  async claimUploadAnyTenant(
    id: string,
    { version, now, whole, takeReserved }: { version: number; now: string; whole?: boolean; takeReserved?: number },
  ): Promise<AssetRow | undefined> {
    let query = this.db
      .updateTable('assets')
      .set({ status: 'PROCESSING', updated_at: now, ...(takeReserved !== undefined && { upload_reserved: 0 }) })
      .where('id', '=', id)
      .where('url_version', '=', version)
      .where('status', '=', 'WAITING')
      .where('upload_expires_at', '>', now);
    // The whole file at once: not while parts of a resumable upload are in.
    // The parts' quota passes to the caller, exactly as much as it saw.
    if (takeReserved !== undefined) query = query.where('upload_reserved', '=', takeReserved);
    if (whole) query = query.where((eb) => eb.or([eb('received_bytes', 'is', null), eb('received_bytes', '=', 0)]));
    return query.returningAll().executeTakeFirst();
  }

  /** Sets fields of a row whatever its tenant, if it is in `status`; for the upload and processing paths. */
  async updateIfStatusAnyTenant(
    id: string,
    status: string,
    patch: Updateable<AssetsTable>,
  ): Promise<AssetRow | undefined> {
    return this.db
      .updateTable('assets')
      .set(patch)
      .where('id', '=', id)
      .where('status', '=', status)
      .returningAll()
      .executeTakeFirst();
  }

  /** Sets fields of a row as long as it still holds `blobKey`: not deleted or replaced meanwhile. */
  async updateIfBlobAnyTenant(
    id: string,
    blobKey: string,
    patch: Updateable<AssetsTable>,
  ): Promise<AssetRow | undefined> {
    return this.db
      .updateTable('assets')
      .set(patch)
      .where('id', '=', id)
      .where('blob_key', '=', blobKey)
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Deletes two-step uploads that never got their bytes and whose URL expired before
   * `before`; what they held is the caller's to forget in the same transaction.
   */
  async deleteAbandonedUploadsAllTenants(before: string): Promise<AssetRow[]> {
    return (
      this.db
        .deleteFrom('assets')
        .where('blob_key', 'is', null)
        .where('upload_expires_at', '<', before)
        // An upload under way (PROCESSING without bytes) is kept alive by its heartbeat: only one whose
        // heartbeat stopped (its gateway died) is abandoned.
        .where((eb) =>
          eb.or([
            eb('status', '=', 'WAITING'),
            eb.and([eb('status', '=', 'PROCESSING'), eb('updated_at', '<', before)]),
          ]),
        )
        .returningAll()
        .execute()
    );
  }

  /** The heartbeat of a signed upload whose bytes are arriving: keeps the sweep away from it. */
  async touchUploadAnyTenant(id: string, now: string): Promise<void> {
    await this.db
      .updateTable('assets')
      .set({ updated_at: now })
      .where('id', '=', id)
      .where('status', '=', 'PROCESSING')
      .where('blob_key', 'is', null)
      .execute();
  }

  /** A page of every tenant's assets, by id after `after`: for the consistency check. */
  async pageAllTenants(after: string, limit: number): Promise<AssetRow[]> {
    return this.db.selectFrom('assets').selectAll().where('id', '>', after).orderBy('id').limit(limit).execute();
  }

  /**
   * Marks an asset whose stored bytes were lost or damaged FAILED and forgets its blob,
   * unless its blob changed since it was checked: false then.
   */
  async markBytesLostAnyTenant(id: string, blobKey: string): Promise<boolean> {
    const result = await this.db
      .updateTable('assets')
      .set({
        status: 'FAILED',
        failure_reason: 'The stored bytes were lost or damaged.',
        blob_key: null,
        size: 0,
        checksum: null,
      })
      .where('id', '=', id)
      .where('blob_key', '=', blobKey)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Counts one completed download. */
  async countDownloadAnyTenant(id: string): Promise<void> {
    await this.db
      .updateTable('assets')
      .set((eb) => ({ download_count: eb('download_count', '+', 1) }))
      .where('id', '=', id)
      .execute();
  }
}
