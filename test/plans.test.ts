import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CompiledQuery, sql } from 'kysely';
import { createDatabase } from '../src/db/database.js';
import { createTestApp, DIALECTS, postgresSchema, type TestApp, waitFor } from './helpers.js';

const ASSETS = 100_000;

/**
 * Seeds `count` READY assets in the default org: a template row copied by one statement (ids and
 * slugs made unique), every one named "seed.txt" and titled "seed" and one of 150 numbers (their
 * search rows made by the trigger): words as varied as real names, for PostgreSQL estimates
 * prefix searches from its statistics only when it knows at least 100 common words.
 */
async function seed(app: TestApp, count: number): Promise<void> {
  const made = await app.gql('mutation { createUploadUrl(input: { filename: "seed.txt", size: 1 }) { asset { id } } }');
  assert.equal(made.status, 200, JSON.stringify(made.errors));
  const { rows: columns } = await sql<{ name: string }>`
    select column_name as name from information_schema.columns
    where table_schema = current_schema() and table_name = 'assets' order by ordinal_position`.execute(app.db);
  const value = (name: string) =>
    name === 'id' || name === 'slug'
      ? sql`${sql.ref(name)} || '-' || g`
      : name === 'status'
        ? sql`'READY'`
        : name === 'title'
          ? sql`'seed ' || (g % 150)`
          : name === 'upload_expires_at'
            ? sql`null`
            : sql.ref(name);
  const names = columns.map((c) => c.name);
  await sql`insert into assets (${sql.join(names.map((n) => sql.ref(n)))})
    select ${sql.join(names.map(value))} from assets, generate_series(1, ${count - 1}) as g`.execute(app.db);
}

/** Sweeps until sweeps have analysed every one of `tables` (the collector reports an insert within seconds). */
async function sweepAnalysing(app: TestApp, ...tables: string[]): Promise<void> {
  const analysed = new Set<string>();
  const sweep = async () => {
    for (const table of (await app.sweeper.sweep()).statistics) analysed.add(table);
    return [...analysed];
  };
  await waitFor(sweep, (done) => tables.every((table) => done.includes(table)), 30_000);
}

/** Every node of a JSON plan, with the relation (and index) it reads. */
function scansOf(plan: any): { type: string; relation?: string; index?: string }[] {
  const node = { type: plan['Node Type'], relation: plan['Relation Name'], index: plan['Index Name'] };
  return [node, ...(plan.Plans ?? []).flatMap(scansOf)];
}

/**
 * A PostgreSQL app in a schema of its own for the suite that calls it (made before its tests,
 * dropped after), no sweep or jobs of its own, and the statements it runs.
 */
function plannedApp(): { app: () => TestApp; statements: CompiledQuery[] } {
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
  return { app: () => app, statements };
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
    const planned = plannedApp();
    const { statements } = planned;
    let app: TestApp;
    before(() => {
      app = planned.app();
    });
    /** The scan nodes PostgreSQL plans for a statement the app ran. */
    const planOf = async (query: CompiledQuery) => {
      const explained = await app.db.executeQuery<{ 'QUERY PLAN': any }>(
        CompiledQuery.raw(`explain (format json) ${query.sql}`, [...query.parameters]),
      );
      return scansOf(explained.rows[0]['QUERY PLAN'][0].Plan);
    };

    test('the first page and totalCount use indexes once the sweep has analysed the seeded rows', async () => {
      await seed(app, ASSETS);
      await sweepAnalysing(app, 'assets');

      statements.length = 0;
      const page = await app.gql('{ assets(first: 50) { totalCount edges { node { id } } } }');
      assert.equal(page.status, 200, JSON.stringify(page.errors));
      assert.equal(page.data.assets.totalCount, ASSETS);
      assert.equal(page.data.assets.edges.length, 50);
      const reads = statements.filter((q) => /from "assets"/.test(q.sql) && /^select/i.test(q.sql));
      assert.ok(reads.length >= 2, `the page and the count: ${reads.map((q) => q.sql).join('\n')}`);
      for (const query of reads) {
        const scans = (await planOf(query)).filter((s) => s.relation === 'assets');
        assert.ok(scans.length > 0, query.sql);
        for (const scan of scans) assert.notEqual(scan.type, 'Seq Scan', `${query.sql}\n${JSON.stringify(scans)}`);
      }
    });

    // Runs after the test above: the same 100,000 assets.
    test('a search every asset matches walks the page index and stops at the page, once the sweep has analysed', () =>
      searchWalksThePageIndex(app, statements));
  },
);

/**
 * A search every asset matches (all are "seed"), as the soak's lists search: PostgreSQL must
 * know from asset_search's statistics that the matches are most rows, and walk the page's index
 * checking each row, instead of joining every match and sorting them (without the statistics it
 * guessed a few dozen matches for thousands: a cost that grew with the org in the scaled-out soak).
 */
async function searchWalksThePageIndex(app: TestApp, statements: CompiledQuery[]): Promise<void> {
  const analysed = await sql<{ analysed: string | null }>`
    select last_analyze as analysed from pg_stat_user_tables
    where schemaname = current_schema() and relname = 'asset_search'`.execute(app.db);
  assert.ok(analysed.rows[0]?.analysed, 'asset_search analysed by a sweep');

  statements.length = 0;
  const page = await app.gql('{ assets(first: 50, filter: { search: "seed" }) { edges { node { id } } } }');
  assert.equal(page.status, 200, JSON.stringify(page.errors));
  assert.equal(page.data.assets.edges.length, 50);
  const read = statements.find((q) => /from "assets"/.test(q.sql) && /asset_search/.test(q.sql));
  assert.ok(read, statements.map((q) => q.sql).join('\n'));
  const explained = await app.db.executeQuery<{ 'QUERY PLAN': any }>(
    CompiledQuery.raw(`explain (format json) ${read.sql}`, [...read.parameters]),
  );
  const nodes = scansOf(explained.rows[0]['QUERY PLAN'][0].Plan);
  const detail = `${read.sql}\n${JSON.stringify(nodes)}`;
  assert.ok(!nodes.some((n) => n.type === 'Sort'), `no sort of the matches: ${detail}`);
  assert.ok(!nodes.some((n) => n.type === 'Seq Scan'), `no sequential scan: ${detail}`);
  assert.ok(
    nodes.some((n) => n.relation === 'assets' && n.index === 'assets_created_at_idx'),
    `the page's index: ${detail}`,
  );
}

/** The same search at 3,000 assets, the size at which the scaled-out soak found it joining every match. */
describe(
  'PostgreSQL plans a search at 3,000 assets in one org',
  { skip: !DIALECTS.includes('postgres') && 'TEST_DIALECTS has no postgres' },
  () => {
    const planned = plannedApp();

    test('a search every asset matches walks the page index once the sweep has analysed asset_search', async () => {
      await seed(planned.app(), 3_000);
      await sweepAnalysing(planned.app(), 'assets', 'asset_search');
      await searchWalksThePageIndex(planned.app(), planned.statements);
    });
  },
);
