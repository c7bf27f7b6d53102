import { sql } from 'kysely';
import type { Db } from './database.js';

/** Organizations: the unit of tenancy and of storage accounting. Created on demand. */
export class OrgRepository {
  constructor(private readonly db: Db) {}

  /** Creates the org; false when it existed already (another caller made it first). */
  async createIfAbsent(id: string, now: string): Promise<boolean> {
    const row = await this.db
      .insertInto('orgs')
      .values({ id, created_at: now })
      .onConflict((oc) => oc.column('id').doNothing())
      .returning('id')
      .executeTakeFirst();
    return row !== undefined;
  }

  async ensure(id: string, now: string): Promise<void> {
    await this.db
      .insertInto('orgs')
      .values({ id, created_at: now })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }

  /**
   * Reserves `bytes` for an upload if stored plus reserved bytes stay within `quota`
   * (always, without a quota): one conditional UPDATE, so parallel uploads can never
   * overshoot. False when it does not fit.
   */
  async reserve(orgId: string, bytes: number, quota: number | null): Promise<boolean> {
    let query = this.db
      .updateTable('orgs')
      .set((eb) => ({ reserved_bytes: eb('reserved_bytes', '+', bytes) }))
      .where('id', '=', orgId);
    if (quota !== null) query = query.where(sql<boolean>`used_bytes + reserved_bytes + ${bytes} <= ${quota}`);
    const result = await query.executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Turns a reservation into stored bytes (`stored` of them); run it in the asset's transaction. */
  async settle(orgId: string, reserved: number, stored: number): Promise<void> {
    await this.db
      .updateTable('orgs')
      .set((eb) => ({
        reserved_bytes: eb('reserved_bytes', '-', reserved),
        used_bytes: eb('used_bytes', '+', stored),
      }))
      .where('id', '=', orgId)
      .execute();
  }

  /** Gives back a reservation an upload did not use. */
  async release(orgId: string, reserved: number): Promise<void> {
    if (reserved > 0) await this.settle(orgId, reserved, 0);
  }

  /** Frees stored bytes of a deleted asset; run it in the delete's transaction. */
  async free(orgId: string, bytes: number): Promise<void> {
    if (bytes > 0) await this.settle(orgId, 0, -bytes);
  }

  async usage(orgId: string): Promise<{ used: number; reserved: number }> {
    const row = await this.db
      .selectFrom('orgs')
      .select(['used_bytes', 'reserved_bytes'])
      .where('id', '=', orgId)
      .executeTakeFirst();
    return { used: Number(row?.used_bytes ?? 0), reserved: Number(row?.reserved_bytes ?? 0) };
  }

  /** Sets every org's stored bytes to the sum of its assets' sizes; returns the orgs that were off. */
  async recount(): Promise<{ orgId: string; recorded: number; actual: number }[]> {
    const rows = await this.db
      .selectFrom('orgs')
      .select((eb) => [
        'orgs.id',
        'orgs.used_bytes',
        eb
          .selectFrom('assets')
          .select((inner) => inner.fn.coalesce(inner.fn.sum<number>('size'), inner.lit(0)).as('s'))
          .whereRef('assets.org_id', '=', 'orgs.id')
          .as('actual'),
      ])
      .execute();
    return rows
      .map((row) => ({ orgId: row.id, recorded: Number(row.used_bytes), actual: Number(row.actual ?? 0) }))
      .filter((row) => row.recorded !== row.actual);
  }

  /**
   * Sets an org's stored bytes to the sum of its assets' sizes in one statement: an
   * upload settling meanwhile cannot be lost between a read and a write.
   */
  async resetUsed(orgId: string): Promise<void> {
    await this.db
      .updateTable('orgs')
      .set((eb) => ({
        used_bytes: eb
          .selectFrom('assets')
          .select((inner) => inner.fn.coalesce(inner.fn.sum<number>('size'), inner.lit(0)).as('s'))
          .whereRef('assets.org_id', '=', 'orgs.id'),
      }))
      .where('id', '=', orgId)
      .execute();
  }
}
