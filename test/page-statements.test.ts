import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type PageRequest, pageQuery } from '../src/db/asset-queries.js';
import { PageStatements } from '../src/db/page-statements.js';
import type { Tenant } from '../src/db/types.js';
import { createTestApp, forEachDialect, type TestApp } from './helpers.js';

/** The kept statements of `app`'s repositories: what the tests count compilations on. */
function statementsOf(app: TestApp): PageStatements {
  const statements = app.repositories.assets.statements;
  assert.ok(statements, 'the gateway keeps page statements');
  return statements;
}

const TITLES = `query($filter: AssetFilter, $first: Int, $after: String, $last: Int, $before: String, $order: AssetOrder) {
  assets(filter: $filter, first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
    edges { node { id title } }
    pageInfo { endCursor startCursor hasNextPage hasPreviousPage }
  }
}`;

forEachDialect(() => {
  describe('page statements compiled once per shape', () => {
    let app: TestApp;
    let otherKey: string;
    /** Asset ids of org acme by title, and when each was made. */
    const made = new Map<string, { id: string; createdAt: string }>();

    const titles = async (variables: Record<string, unknown>, key = app.key) => {
      const result = await app.gql(TITLES, variables, { authorization: `Bearer ${key}` });
      assert.equal(result.status, 200, JSON.stringify(result.errors));
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      const { edges, pageInfo } = result.data.assets;
      return { titles: edges.map((e: { node: { title: string } }) => e.node.title) as string[], pageInfo };
    };

    before(async () => {
      // Four statements kept: the bound test below pushes past them.
      app = await createTestApp({ DOCUMENT_CACHE_MAX: '4' });
      otherKey = await app.createKey('other');
      const create = async (title: string, tags: string[], key = app.key) => {
        const result = await app.gql(
          'mutation($input: CreateAssetInput!) { createAsset(input: $input) { asset { id createdAt } } }',
          { input: { type: 'LINK', externalUrl: `https://example.com/${title}`, title, tags } },
          { authorization: `Bearer ${key}` },
        );
        assert.equal(result.status, 200, JSON.stringify(result.errors));
        return result.data.createAsset.asset as { id: string; createdAt: string };
      };
      for (let i = 0; i < 6; i++) {
        made.set(`Link ${i}`, await create(`Link ${i}`, ['all', `t${i}`]));
        // Distinct creation times, so that a date filter tells them apart.
        await new Promise((r) => setTimeout(r, 5));
      }
      await create('Other 0', ['all', 't0'], otherKey);
    });
    after(() => app.dispose());

    test('two requests of one shape read their own values: tags, ids, dates and the tenant', async () => {
      const statements = statementsOf(app);
      const cases: [Record<string, unknown>, Record<string, unknown>, string[], string[]][] = [
        [{ tags: ['t1'] }, { tags: ['t2'] }, ['Link 1'], ['Link 2']],
        [
          { ids: [made.get('Link 0')!.id, made.get('Link 3')!.id] },
          { ids: [made.get('Link 4')!.id, made.get('Link 5')!.id] },
          ['Link 3', 'Link 0'],
          ['Link 5', 'Link 4'],
        ],
        [
          { createdAfter: made.get('Link 3')!.createdAt, tags: ['all'] },
          { createdAfter: made.get('Link 0')!.createdAt, tags: ['t1'] },
          ['Link 5', 'Link 4'],
          ['Link 1'],
        ],
      ];
      for (const [first, second, firstTitles, secondTitles] of cases) {
        assert.deepEqual((await titles({ filter: first, first: 10 })).titles, firstTitles);
        const compiled = statements.compiled;
        assert.deepEqual((await titles({ filter: second, first: 10 })).titles, secondTitles);
        assert.equal(statements.compiled, compiled, 'the second request ran the statement kept for the first');
      }
      // Another tenant, the same shape: its own rows only.
      assert.deepEqual((await titles({ filter: { tags: ['t0'] }, first: 10 })).titles, ['Link 0']);
      const compiled = statements.compiled;
      assert.deepEqual((await titles({ filter: { tags: ['t0'] }, first: 10 }, otherKey)).titles, ['Other 0']);
      assert.equal(statements.compiled, compiled, 'the other tenant ran the same statement');
    });

    test('cursor pagination walks every row once, forwards and backwards, on kept statements', async () => {
      const statements = statementsOf(app);
      for (const order of [
        { field: 'CREATED_AT', direction: 'ASC' },
        { field: 'TITLE', direction: 'DESC' },
      ]) {
        const all = (await titles({ order, first: 100 })).titles;
        assert.equal(all.length, 6);
        const forwards: string[] = [];
        let page = await titles({ order, first: 2 });
        forwards.push(...page.titles);
        let compiled = -1;
        for (let n = 1; page.pageInfo.hasNextPage; n++) {
          page = await titles({ order, first: 2, after: page.pageInfo.endCursor });
          forwards.push(...page.titles);
          // From the third page on, the statement with a cursor is the one the second page compiled.
          if (n === 1) compiled = statements.compiled;
          else assert.equal(statements.compiled, compiled, `page ${n + 1} ran a kept statement`);
        }
        assert.deepEqual(forwards, all);
        const backwards: string[] = [];
        page = await titles({ order, last: 2 });
        backwards.unshift(...page.titles);
        while (page.pageInfo.hasPreviousPage) {
          page = await titles({ order, last: 2, before: page.pageInfo.startCursor });
          backwards.unshift(...page.titles);
        }
        assert.deepEqual(backwards, all);
      }
    });

    test('past DOCUMENT_CACHE_MAX shapes, the least recently used statement goes and is compiled again', async () => {
      const statements = statementsOf(app);
      assert.equal(statements.max, 4);
      // Each page size is a shape of its own (the limit is written into the SQL): any caller can make many.
      let compiled = statements.compiled;
      for (let first = 1; first <= 6; first++) {
        assert.equal((await titles({ filter: { types: ['LINK'] }, first })).titles.length, first);
        assert.equal(statements.compiled, ++compiled, `first: ${first} is a shape of its own`);
        assert.ok(statements.size <= 4, `${statements.size} statements kept`);
      }
      assert.equal(statements.size, 4);
      assert.deepEqual((await titles({ filter: { types: ['LINK'] }, first: 6 })).titles.length, 6);
      assert.equal(statements.compiled, compiled, 'the most recent shape is kept');
      assert.deepEqual((await titles({ filter: { types: ['LINK'] }, first: 1 })).titles, ['Link 5']);
      assert.equal(statements.compiled, compiled + 1, 'the first shape was pushed out, and compiled again');
      assert.equal(statements.size, 4);
    });

    test('a kept statement is the one Kysely compiles for the request itself: the same SQL, each value in its place', async () => {
      const statements = new PageStatements(100);
      const build = (input: { tenant: Tenant; request: PageRequest }) => pageQuery(app.db, input);
      const page = (request: Partial<PageRequest>): PageRequest => ({
        filter: {},
        column: 'created_at',
        direction: 'desc',
        limit: 20,
        backward: false,
        ...request,
      });
      // Every filter, a cursor, some columns and the tags, each value made of `n`.
      const everything = (n: number) =>
        page({
          filter: {
            ids: [`a${n}`, `b${n}`],
            types: [n ? 'LINK' : 'IMAGE'],
            statuses: n ? ['READY', 'FAILED'] : ['WAITING', 'PROCESSING'],
            tags: [`x${n}`, `y${n}`],
            directoryId: `d${n}`,
            isPublic: true,
            createdAfter: `202${n}-01-01T00:00:00.000Z`,
            createdBefore: `203${n}-01-01T00:00:00.000Z`,
            checksum: `sha256:${String(n).repeat(64)}`,
          },
          cursor: { value: `202${n + 4}-01-01T00:00:00.000Z`, id: `c${n}` },
          columns: ['title', 'size'],
          withTags: true,
        });
      // Pairs of one shape with every value different.
      const pairs: [PageRequest, PageRequest][] = [
        [everything(0), everything(1)],
        [10, 99].map((value, n) =>
          page({
            column: 'size',
            direction: 'asc',
            backward: true,
            cursor: { value, id: `c${n}` },
            filter: { trashed: true },
          }),
        ) as [PageRequest, PageRequest],
        [
          page({ filter: { createdAfter: '', directoryId: '' } }),
          page({ filter: { createdAfter: '', directoryId: '' } }),
        ],
      ];
      const tenants: [Tenant, Tenant] = [
        { orgId: 'acme', mode: 'live' },
        { orgId: 'other', mode: 'test' },
      ];
      for (const [first, second] of pairs) {
        const compiled = statements.compiled;
        statements.statement(app.db, { tenant: tenants[0], request: first });
        const kept = statements.statement(app.db, { tenant: tenants[1], request: second });
        assert.equal(statements.compiled, compiled + 1, 'the second request of the shape compiled nothing');
        const own = build({ tenant: tenants[1], request: second }).compile();
        assert.equal(kept.sql, own.sql);
        assert.deepEqual(kept.parameters, own.parameters);
      }
      // Shapes that differ in what the SQL holds are not confused: a boolean's value, an absent filter.
      for (const [a, b] of [
        [{ isPublic: true }, { isPublic: false }],
        [{ createdAfter: '' }, { createdAfter: '2020-01-01T00:00:00.000Z' }],
        [{}, { ids: [] }],
      ] as const) {
        const one = statements.statement(app.db, { tenant: tenants[0], request: page({ filter: a }) });
        const two = statements.statement(app.db, { tenant: tenants[0], request: page({ filter: b }) });
        const own = build({ tenant: tenants[0], request: page({ filter: b }) }).compile();
        assert.notDeepEqual([one.sql, one.parameters], [two.sql, two.parameters]);
        assert.equal(two.sql, own.sql);
        assert.deepEqual(two.parameters, own.parameters);
      }
      // A search is compiled for each request: its words are parameters of their own making.
      const compiled = statements.compiled;
      const searched = statements.statement(app.db, {
        tenant: tenants[0],
        request: page({ filter: { search: 'red fox' } }),
      });
      assert.equal(statements.compiled, compiled);
      assert.deepEqual(
        searched.parameters,
        build({ tenant: tenants[0], request: page({ filter: { search: 'red fox' } }) }).compile().parameters,
      );
    });
  });
});

describe('PageStatements', () => {
  test('refuses a bound that keeps nothing', () => {
    assert.throws(() => new PageStatements(0), RangeError);
  });
});
