import type { Repositories } from '../../db/repositories.js';
import type { AssetVersionRow, Tenant } from '../../db/types.js';
import { type AssetPage, type AssetPageQuery, pageAssets } from './pagination.js';

/** What `viewer.usage` reports of a tenant and its org, besides the quota. */
export interface TenantUsage {
  assetCount: number;
  bytesStored: number;
  trashedCount: number;
  trashedBytes: number;
  /** Bytes the tenant's copies occupy: each content once. */
  bytesOccupied: number;
  renditionCount: number;
  renditionBytes: number;
  orgBytesStored: number;
  orgBytesReserved: number;
}

/**
 * The reads GraphQL makes of assets beyond access-checked loads: pages, the tags and
 * versions of assets it holds already (batched by per-request loaders), and usage.
 */
export class AssetReads {
  constructor(private readonly repos: Repositories) {}

  /** One keyset page of the tenant's assets. */
  page(tenant: Tenant, query: AssetPageQuery): Promise<AssetPage> {
    return pageAssets(this.repos.assets, tenant, query);
  }

  /** Tags of each asset, aligned with `assetIds`, sorted: of assets the caller was allowed to load. */
  tagsOf(assetIds: readonly string[]): Promise<string[][]> {
    return this.repos.assets.tagsOfAnyTenant(assetIds);
  }

  /** Earlier versions of each asset, newest first, aligned with `assetIds`: of assets the caller was allowed to load. */
  versionsOf(assetIds: readonly string[]): Promise<AssetVersionRow[][]> {
    return this.repos.assets.versionsOfAnyTenant(assetIds);
  }

  /** What the tenant's assets hold and occupy, and what its org stores and reserves. */
  async usage(tenant: Tenant): Promise<TenantUsage> {
    const [mode, occupied, org, renditions] = await Promise.all([
      this.repos.assets.usage(tenant),
      this.repos.copies.occupied(tenant),
      this.repos.orgs.usage(tenant.orgId),
      this.repos.renditions.usage(tenant.orgId),
    ]);
    return {
      ...mode,
      bytesOccupied: occupied,
      renditionCount: renditions.count,
      renditionBytes: renditions.bytes,
      orgBytesStored: org.used,
      orgBytesReserved: org.reserved,
    };
  }
}
