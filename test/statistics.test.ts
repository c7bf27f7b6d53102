import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createTestApp, forEachDialect, type TestApp, waitFor } from './helpers.js';

/** What PostgreSQL knows of a table: when it was last analysed, and rows changed and dead since. */
async function statsOf(app: TestApp, table: string) {
  const { rows } = await sql<{ analyzed: Date | null; changed: string; dead: string }>`
    select coalesce(last_analyze, last_autoanalyze) as analyzed, n_mod_since_analyze as changed, n_dead_tup as dead
    from pg_stat_user_tables where schemaname = current_schema() and relname = ${table}`.execute(app.db);
  return { analyzed: rows[0].analyzed, changed: Number(rows[0].changed), dead: Number(rows[0].dead) };
}

/** Waits until the statistics collector shows what a statement did (it reports within seconds). */
function statsUntil(app: TestApp, table: string, done: (s: Awaited<ReturnType<typeof statsOf>>) => boolean) {
  return waitFor(() => statsOf(app, table), done, 30_000);
}

forEachDialect((dialect) => {
  describe('finished jobs are deleted in batches after JOB_RETENTION; statistics stay fresh', () => {
    let app: TestApp;
    const HOUR = 3_600_000;
    before(async () => {
      app = await createTestApp({ JOB_CONCURRENCY: '0', SWEEP_INTERVAL: '0', JOB_RETENTION: '3600' });
    });
    after(() => app.dispose());

    test('the sweep deletes finished jobs past JOB_RETENTION, keeps younger ones and every waiting one', async () => {
      const created = await app.gql(
        'mutation { createUploadUrl(input: { filename: "a.txt", size: 1 }) { asset { id } } }',
      );
      assert.equal(created.status, 200, JSON.stringify(created.errors));
      const asset = await app.db.selectFrom('assets').select(['id', 'org_id']).executeTakeFirstOrThrow();
      const old = new Date(Date.now() - 2 * HOUR).toISOString();
      const recent = new Date(Date.now() - HOUR / 2).toISOString();
      // 2,500 jobs finished two hours ago (more than one batch), 10 half an hour ago, 3 waiting since long.
      const seed = (n: number, status: string, at: string) =>
        // A recursive count: SQLite has no generate_series.
        sql`insert into jobs (id, kind, asset_id, org_id, status, run_at, created_at, updated_at)
            with recursive g(n) as (select 1 union all select n + 1 from g where n < ${n})
            select ${status} || '-' || ${at} || '-' || n, 'extract', ${asset.id}, ${asset.org_id}, ${status}, ${at}, ${at}, ${at}
            from g`.execute(app.db);
      await seed(2000, 'done', old);
      await seed(500, 'failed', old);
      await seed(10, 'done', recent);
      await seed(3, 'queued', old);
      const report = await app.sweeper.sweep();
      assert.equal(report.finishedJobs, 2500);
      const left = await app.db
        .selectFrom('jobs')
        .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
        .groupBy('status')
        .orderBy('status')
        .execute();
      assert.deepEqual(
        left.map((r) => [r.status, Number(r.n)]),
        [
          ['done', 10],
          ['queued', 3],
        ],
      );
    });

    if (dialect !== 'postgres') return;

    test('PostgreSQL: tables are analysed once migrated, and again by the sweep once they grew by a tenth', async () => {
      assert.ok((await statsOf(app, 'assets')).analyzed, 'assets analysed at start');
      assert.ok((await statsOf(app, 'jobs')).analyzed, 'jobs analysed at start');
      const asset = await app.db.selectFrom('assets').select(['id', 'org_id']).executeTakeFirstOrThrow();
      const at = new Date(Date.now() - 2 * 3_600_000).toISOString();
      await sql`insert into jobs (id, kind, asset_id, org_id, status, run_at, created_at, updated_at)
          select 'bulk-' || g, 'extract', ${asset.id}, ${asset.org_id}, 'done', ${at}, ${at}, ${at}
          from generate_series(1, 5000) as g`.execute(app.db);
      await statsUntil(app, 'jobs', (s) => s.changed >= 5000);
      const report = await app.sweeper.sweep();
      assert.equal(report.finishedJobs, 5000);
      // The deletions left 5,000 dead rows: the sweep vacuumed (and analysed) the table.
      assert.ok(report.statistics.includes('jobs'), JSON.stringify(report.statistics));
      const after = await statsUntil(app, 'jobs', (s) => s.dead < 1000);
      assert.ok(after.changed < 500, `changes since ANALYZE: ${after.changed}`);
      // Nothing changed since: the next sweep leaves the tables alone.
      assert.deepEqual((await app.sweeper.sweep()).statistics, []);
    });
  });
});
