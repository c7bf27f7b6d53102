import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { GraphQLObjectType } from 'graphql';
import { buildSchema } from '../src/schema/index.js';
import { DocumentCache } from '../src/schema/document-cache.js';
import { createTestApp, forEachDialect, type TestApp } from './helpers.js';

describe('DocumentCache', () => {
  test('keeps at most its bound, the least recently used going first', () => {
    const cache = new DocumentCache<object, number>(2);
    const [a, b, c] = [{}, {}, {}];
    let made = 0;
    const make = () => ++made;
    assert.equal(cache.get(a, make), 1);
    assert.equal(cache.get(b, make), 2);
    assert.equal(cache.get(a, make), 1, 'kept: not made again');
    assert.equal(cache.get(c, make), 3, 'past the bound: b, the least recently used, goes');
    assert.equal(cache.size, 2);
    assert.equal(cache.get(a, make), 1, 'a was used after b: still kept');
    assert.equal(cache.get(b, make), 4, 'b was dropped: made again');
    assert.equal(cache.size, 2);
  });

  test('refuses a bound that keeps nothing', () => {
    assert.throws(() => new DocumentCache(0), RangeError);
  });
});

describe('what a list reads is declared by its fields', () => {
  test('every field of Asset says which columns it reads', () => {
    const type = buildSchema().getType('Asset') as GraphQLObjectType;
    for (const field of Object.values(type.getFields())) {
      const columns = (field.extensions as { columns?: unknown }).columns;
      assert.ok(Array.isArray(columns) && columns.length > 0, `Asset.${field.name} declares no columns`);
    }
  });
});

forEachDialect(() => {
  describe('per-document work past DOCUMENT_CACHE_MAX', () => {
    let app: TestApp;

    before(async () => {
      // One document kept: every other request below pushes the one before out.
      app = await createTestApp({ DOCUMENT_CACHE_MAX: '1' });
      for (let i = 0; i < 3; i++) {
        const made = await app.gql(
          'mutation($input: CreateAssetInput!) { createAsset(input: $input) { asset { id } } }',
          { input: { type: 'LINK', externalUrl: `https://example.com/${i}`, title: `Link ${i}`, tags: [`t${i}`] } },
        );
        assert.equal(made.errors, undefined, JSON.stringify(made.errors));
      }
    });
    after(() => app.dispose());

    test('each of several documents is estimated by its own plan, page sizes from each request', async () => {
      const fields = 'id title tags directory { parent { parent { parent { id } } } }';
      const aliases = (first: string, n: number) =>
        Array.from({ length: n }, (_, i) => `a${i}: assets(first: ${first}) { edges { node { ${fields} } } }`).join(
          ' ',
        );
      const costly = `query($n: Int) { ${aliases('$n', 25)} }`;
      const cheap = `query($n: Int) { ${aliases('$n', 1)} }`;
      const inline = `{ ${aliases('100', 25)} }`;
      for (let round = 0; round < 2; round++) {
        const refused = await app.gql(costly, { n: 100 });
        assert.equal(refused.status, 400);
        assert.equal(refused.errors?.[0]?.extensions.code, 'BAD_USER_INPUT');
        assert.match(refused.errors![0]!.message, /cost limit/);
        // The same document with a small page size: the plan is kept, not the figure.
        const small = await app.gql(costly, { n: 1 });
        assert.equal(small.status, 200, JSON.stringify(small.errors));
        assert.equal(small.data.a0.edges.length, 1);
        const cheapOne = await app.gql(cheap, { n: 100 });
        assert.equal(cheapOne.status, 200, JSON.stringify(cheapOne.errors));
        assert.equal(cheapOne.data.a0.edges.length, 3);
        const inlined = await app.gql(inline);
        assert.equal(inlined.status, 400);
        assert.equal(inlined.errors?.[0]?.extensions.code, 'BAD_USER_INPUT');
      }
    });

    test('each document reads the columns its own fields need, whichever was kept', async () => {
      const titles = '{ assets(first: 3) { edges { node { id title } } } }';
      const links = '{ assets(first: 3) { edges { node { externalUrl tags } } } }';
      for (let round = 0; round < 2; round++) {
        let result: any;
        const titleSql = (await app.recordQueries(async () => (result = await app.gql(titles)))).join('\n');
        assert.equal(result.status, 200, JSON.stringify(result.errors));
        assert.deepEqual(
          result.data.assets.edges.map((e: any) => e.node.title),
          ['Link 2', 'Link 1', 'Link 0'],
        );
        assert.match(titleSql, /"title"/);
        assert.doesNotMatch(titleSql, /"external_url"/, 'a page reads only what its fields need');
        const linkSql = (await app.recordQueries(async () => (result = await app.gql(links)))).join('\n');
        assert.equal(result.status, 200, JSON.stringify(result.errors));
        assert.deepEqual(
          result.data.assets.edges.map((e: any) => [e.node.externalUrl, e.node.tags]),
          [
            ['https://example.com/2', ['t2']],
            ['https://example.com/1', ['t1']],
            ['https://example.com/0', ['t0']],
          ],
        );
        assert.match(linkSql, /"external_url"/);
        assert.doesNotMatch(linkSql, /"title"/);
      }
    });
  });
});
