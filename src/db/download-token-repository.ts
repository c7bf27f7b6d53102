import type { Db } from './database.js';

/** Fetch counters of fetch-limited download URLs. */
export class DownloadTokenRepository {
  constructor(private readonly db: Db) {}

  async insert(row: { id: string; asset_id: string; max_fetches: number; expires_at: string; created_at: string }) {
    await this.db.insertInto('download_tokens').values(row).execute();
  }

  /**
   * Takes one fetch if any is left: a single conditional UPDATE, so concurrent
   * fetches can never take more than the limit. Returns the fetches left after
   * this one, or null when none was left (or the token is gone).
   */
  async consume(id: string): Promise<number | null> {
    const row = await this.db
      .updateTable('download_tokens')
      .set((eb) => ({ fetches: eb('fetches', '+', 1) }))
      .where('id', '=', id)
      .whereRef('fetches', '<', 'max_fetches')
      .returning(['fetches', 'max_fetches'])
      .executeTakeFirst();
    return row ? row.max_fetches - row.fetches : null;
  }

  /** Fetches left, or null when the token is gone. */
  async remaining(id: string): Promise<number | null> {
    const row = await this.db
      .selectFrom('download_tokens')
      .select(['fetches', 'max_fetches'])
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? row.max_fetches - row.fetches : null;
  }

  /** Removes tokens that expired before `now`; returns how many. */
  async deleteExpired(now: string): Promise<number> {
    const result = await this.db.deleteFrom('download_tokens').where('expires_at', '<', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
