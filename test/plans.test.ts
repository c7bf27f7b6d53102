import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CompiledQuery, sql } from 'kysely';
import { createDatabase } from '../src/db/database.js';
import { createTestApp, DIALECTS, postgresSchema, type TestApp } from './helpers.js';

const ASSETS = 100_000;

/** Every scan node of a JSON plan, with the relation it reads. */
function scansOf(plan: any): { type: string; relation?: string; index?: string }[] {
  const node = { type: plan['Node Type'], relation: plan['Relation Name'], index: plan['Index Name'] };
  return [node, ...(plan.Plans ?? []).flatMap(scansOf)];
}

/**
 * An org with 100,000 assets on PostgreSQL, its statistics refreshed by the sweep: the page
 * the API serves first (`assets(first: 50)`, in the API's order) and its `totalCount` read
 * through indexes, not the whole table.
 */
describe(
  'PostgreSQL plans at 100,000 assets in one org',
  { skip: !DIALECTS.includes('postgres') && 'TEST_DIALECTS has no postgres' },
  () => {
    let app: TestApp;
    let schema: Awaited<ReturnType<typeof postgresSchema>>;
    const statements: CompiledQuery[] = [];
    before(async () => {
      schema = await postgresSchema();
      const db = createDatabase({
        url: schema.url,
        onQuery: (event) => {
          if (event.level === 'query') statements.push(event.query);
        },
      });
      app = await createTestApp(
        { DATABASE_URL: schema.url, SWEEP_INTERVAL: '0', JOB_CONCURRENCY: '0' },
        { db },
        'postgres',
      );
    });
    after(async () => {
      await app.dispose();
      await schema.drop();
    });

    test('the first page and totalCount use indexes once the sweep has analysed the seeded rows', async () => {
      const made = await app.gql(
        'mutation { createUploadUrl(input: { filename: "seed.txt", size: 1 }) { asset { id } } }',
      );
      assert.equal(made.status, 200, JSON.stringify(made.errors));
      // One statement copies the template row 99,999 times (ids and slugs made unique), as READY assets.
      const { rows: columns } = await sql<{ name: string }>`
        select column_name as name from information_schema.columns
        where table_schema = current_schema() and table_name = 'assets' order by ordinal_position`.execute(app.db);
      const value = (name: string) =>
        name === 'id' || name === 'slug'
          ? sql`${sql.ref(name)} || '-' || g`
          : name === 'status'
            ? sql`'READY'`
            : name === 'upload_expires_at'
              ? sql`null`
              : sql.ref(name);
      const names = columns.map((c) => c.name);
      await sql`insert into assets (${sql.join(names.map((n) => sql.ref(n)))})
        select ${sql.join(names.map(value))} from assets, generate_series(1, ${ASSETS - 1}) as g`.execute(app.db);

      // The collector reports the insert within seconds; then the sweep finds the table grown.
      let report;
      for (let i = 0; i < 300; i++) {
        report = await app.sweeper.sweep();
        if (report.statistics.includes('assets')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(report?.statistics.includes('assets'), 'the sweep analysed the grown table');

      statements.length = 0;
      const page = await app.gql('{ assets(first: 50) { totalCount edges { node { id } } } }');
      assert.equal(page.status, 200, JSON.stringify(page.errors));
      assert.equal(page.data.assets.totalCount, ASSETS);
      assert.equal(page.data.assets.edges.length, 50);
      const reads = statements.filter((q) => /from "assets"/.test(q.sql) && /^select/i.test(q.sql));
      assert.ok(reads.length >= 2, `the page and the count: ${reads.map((q) => q.sql).join('\n')}`);
      for (const query of reads) {
        const explained = await app.db.executeQuery<{ 'QUERY PLAN': any }>(
          CompiledQuery.raw(`explain (format json) ${query.sql}`, [...query.parameters]),
        );
        const scans = scansOf(explained.rows[0]['QUERY PLAN'][0].Plan).filter((s) => s.relation === 'assets');
        assert.ok(scans.length > 0, query.sql);
        for (const scan of scans) assert.notEqual(scan.type, 'Seq Scan', `${query.sql}\n${JSON.stringify(scans)}`);
      }
    });
  },
);
