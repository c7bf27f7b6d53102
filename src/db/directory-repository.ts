import type { Db } from './database.js';
import type { DirectoryRow, Tenant } from './types.js';

/** Folders that group assets. Every method is scoped to a tenant. */
export class DirectoryRepository {
  constructor(private readonly db: Db) {}

  /** Rows for `ids` in the tenant, aligned with `ids`. */
  async findByIds(tenant: Tenant, ids: readonly string[]): Promise<(DirectoryRow | undefined)[]> {
    if (ids.length === 0) return [];
    const rows = await this.db
      .selectFrom('directories')
      .selectAll()
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .where('id', 'in', ids)
      .execute();
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id));
  }

  /** Children of `parentId` (top level when null), by name. */
  async list(tenant: Tenant, parentId: string | null): Promise<DirectoryRow[]> {
    return this.db
      .selectFrom('directories')
      .selectAll()
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .where('parent_id', parentId === null ? 'is' : '=', parentId)
      .orderBy('name')
      .orderBy('id')
      .execute();
  }

  async insert(row: DirectoryRow): Promise<DirectoryRow> {
    return this.db.insertInto('directories').values(row).returningAll().executeTakeFirstOrThrow();
  }

  /** Deletes a folder and its subfolders; their assets stay, without a folder. */
  async delete(tenant: Tenant, id: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('directories')
      .where('id', '=', id)
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }
}
