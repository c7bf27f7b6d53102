import type { Db } from './database.js';
import type { ApiKeyRow, Mode } from './types.js';

/** API key records. Secrets are never stored, only their hashes. */
export class ApiKeyRepository {
  constructor(private readonly db: Db) {}

  async insert(row: ApiKeyRow): Promise<ApiKeyRow> {
    return this.db.insertInto('api_keys').values(row).returningAll().executeTakeFirstOrThrow();
  }

  /** The key whose secret hashes to `hash`, whatever its state. */
  async findByHash(hash: string): Promise<ApiKeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('key_hash', '=', hash).executeTakeFirst();
  }

  async findById(id: string): Promise<ApiKeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Keys of one org (and mode), or of every org when `orgId` is undefined; oldest first. */
  async list(orgId?: string, mode?: Mode): Promise<ApiKeyRow[]> {
    let query = this.db.selectFrom('api_keys').selectAll();
    if (orgId !== undefined) query = query.where('org_id', '=', orgId);
    if (mode !== undefined) query = query.where('mode', '=', mode);
    return query.orderBy('created_at').orderBy('id').execute();
  }

  async count(): Promise<number> {
    const row = await this.db
      .selectFrom('api_keys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Marks a key revoked; `undefined` when it does not exist in `orgId` and `mode` (any when undefined). */
  async revoke(
    id: string,
    now: string,
    { orgId, mode }: { orgId?: string; mode?: Mode } = {},
  ): Promise<ApiKeyRow | undefined> {
    let query = this.db
      .updateTable('api_keys')
      .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(now)) }))
      .where('id', '=', id);
    if (orgId !== undefined) query = query.where('org_id', '=', orgId);
    if (mode !== undefined) query = query.where('mode', '=', mode);
    return query.returningAll().executeTakeFirst();
  }

  /** Records use, at most once per `staleBefore` window: a write per minute, not per request. */
  async touch(id: string, now: string, staleBefore: string): Promise<void> {
    await this.db
      .updateTable('api_keys')
      .set({ last_used_at: now })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', staleBefore)]))
      .execute();
  }
}
