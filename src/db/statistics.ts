import { sql, type Kysely } from 'kysely';
import { isPostgres } from './database.js';

/**
 * The tables whose plans depend on statistics: pages and counts of assets, searches, the job
 * queue's lookups. Without fresh statistics PostgreSQL guesses (an org's page through the slug
 * index, estimated at 1 row for thousands; a search matching every asset estimated at a few
 * dozen rows, so the page joined every match and sorted them instead of walking the page's
 * index and stopping at the first rows that match).
 */
const TABLES = [
  'assets',
  'asset_search',
  'jobs',
  'asset_tags',
  'asset_events',
  'blobs',
  'renditions',
  'webhook_deliveries',
] as const;

/** A table changed by more than this share of its rows since its last ANALYZE is analysed again. */
const GROWTH = 0.1;
/** ...and by at least this many rows: small tables are planned well whatever their statistics. */
const MIN_CHANGES = 500;

/**
 * Keeps PostgreSQL's statistics and free space current, for servers that run without
 * autovacuum (or with one too slow for a burst). `all` analyses every table (after the
 * migrations); otherwise only the tables changed by more than 10% (and 500 rows) since their
 * last ANALYZE are analysed, and those with more dead rows, or rows inserted since their last
 * VACUUM, than 20% of their live ones (the job queue updates and deletes all the time; a bulk
 * import adds rows not yet all-visible) are vacuumed and analysed, so the work stays bounded.
 * Returns the tables touched. SQLite needs neither: nothing to do there.
 */
export async function refreshStatistics(db: Kysely<any>, { all = false } = {}): Promise<string[]> {
  if (!isPostgres(db)) return [];
  const stats = await sql<{ table: string; live: string; dead: string; changed: string; inserted: string }>`
    select relname as "table", n_live_tup as live, n_dead_tup as dead, n_mod_since_analyze as changed,
      n_ins_since_vacuum as inserted
    from pg_stat_user_tables where schemaname = current_schema()`.execute(db);
  const touched: string[] = [];
  for (const table of TABLES) {
    const row = stats.rows.find((r) => r.table === table);
    if (!row) continue;
    const [live, dead, changed, inserted] = [row.live, row.dead, row.changed, row.inserted].map(Number);
    // Rows inserted since the last VACUUM are not yet marked all-visible: until they are,
    // counts cannot be answered from an index alone (autovacuum vacuums after inserts too).
    const bloated = (dead > MIN_CHANGES && dead > live * 0.2) || (inserted > MIN_CHANGES && inserted > live * 0.2);
    const grown = changed > MIN_CHANGES && changed > live * GROWTH;
    if (bloated) await sql`vacuum (analyze) ${sql.table(table)}`.execute(db);
    else if (all || grown) await sql`analyze ${sql.table(table)}`.execute(db);
    else continue;
    touched.push(table);
  }
  return touched;
}
