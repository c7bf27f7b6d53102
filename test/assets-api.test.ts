import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { type GraphQLField, type GraphQLObjectType, getNamedType, isNonNullType, isObjectType } from 'graphql';
import { decodeGlobalId, encodeGlobalId } from '../src/global-id.js';
import { createTestApp, forEachDialect, type GqlResult, png, type TestApp } from './helpers.js';

const FIELDS = 'id title slug type status tags isPublic externalUrl embedUrl size createdAt directory { id name }';

async function createLink(app: TestApp, input: Record<string, unknown>) {
  const result = await app.gql(
    `mutation($input: CreateAssetInput!) { createAsset(input: $input) { asset { ${FIELDS} } } }`,
    {
      input: { type: 'LINK', externalUrl: 'https://example.com/', ...input },
    },
  );
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  return result.data.createAsset.asset;
}

forEachDialect((dialect) => {
  describe(`assets over GraphQL (${dialect})`, () => {
    let app: TestApp;
    before(async () => {
      app = await createTestApp({}, {}, dialect);
    });
    after(() => app.dispose());

    test('createAsset makes LINK and EXTERNAL_VIDEO assets with embed URLs', async () => {
      const link = await createLink(app, { title: 'Docs', externalUrl: 'https://example.com/docs', tags: ['Ref'] });
      assert.equal(link.type, 'LINK');
      assert.equal(link.status, 'READY');
      assert.equal(link.slug, 'docs');
      assert.deepEqual(link.tags, ['ref']);
      assert.equal(link.size, null);
      assert.equal(link.embedUrl, null);
      const video = await createLink(app, {
        title: 'Demo',
        type: 'EXTERNAL_VIDEO',
        externalUrl: 'https://youtu.be/dQw4w9WgXcQ',
      });
      assert.equal(video.embedUrl, 'https://www.youtube.com/embed/dQw4w9WgXcQ');
      const again = await createLink(app, { title: 'Docs' });
      assert.notEqual(again.slug, 'docs', 'slugs are unique within an org');
      assert.match(again.slug, /^docs-[0-9a-f]{8}$/);
    });

    test('createAsset refuses file types and bad URLs with BAD_USER_INPUT and a field', async () => {
      for (const [input, field] of [
        [{ title: 'x', type: 'IMAGE', externalUrl: 'https://example.com' }, 'type'],
        [{ title: 'x', type: 'LINK', externalUrl: 'javascript:alert(1)' }, 'externalUrl'],
        [{ title: 'x', type: 'LINK' }, 'externalUrl'],
        [{ title: '   ', type: 'LINK', externalUrl: 'https://example.com' }, 'title'],
        [{ title: 'x'.repeat(501), type: 'LINK', externalUrl: 'https://example.com' }, 'title'],
      ] as const) {
        const result = await app.gql(
          'mutation($input: CreateAssetInput!) { createAsset(input: $input) { asset { id } } }',
          { input },
        );
        assert.equal(result.errors?.[0].extensions.code, 'BAD_USER_INPUT', JSON.stringify(input));
        assert.equal(result.errors?.[0].extensions.field, field);
      }
    });

    test('asset and node find an asset; missing, malformed and wrong-type ids do not', async () => {
      const link = await createLink(app, { title: 'Findable' });
      const byAsset = await app.gql('query($id: ID!) { asset(id: $id) { id title } }', { id: link.id });
      assert.equal(byAsset.data.asset.title, 'Findable');
      const byNode = await app.gql('query($id: ID!) { node(id: $id) { id ... on Asset { title } } }', { id: link.id });
      assert.equal(byNode.data.node.title, 'Findable');

      const missing = encodeGlobalId('Asset', '00000000-0000-4000-8000-000000000000');
      for (const query of ['query($id: ID!) { asset(id: $id) { id } }', 'query($id: ID!) { node(id: $id) { id } }']) {
        const result = await app.gql(query, { id: missing });
        assert.equal(result.errors?.[0].extensions.code, 'NOT_FOUND');
      }
      const wrongType = await app.gql('query($id: ID!) { asset(id: $id) { id } }', {
        id: encodeGlobalId('Directory', '00000000-0000-4000-8000-000000000000'),
      });
      assert.equal(wrongType.errors?.[0].extensions.code, 'NOT_FOUND');
      const malformed = await app.gql('query($id: ID!) { asset(id: $id) { id } }', { id: 'not-an-id!' });
      assert.equal(malformed.errors?.[0].extensions.code, 'BAD_USER_INPUT');
      assert.equal(malformed.errors?.[0].extensions.field, 'id');
    });

    test('updateAsset changes fields, tags and folder; deleteAsset removes it', async () => {
      const link = await createLink(app, { title: 'Before', tags: ['a'] });
      const folder = await app.gql('mutation { createDirectory(input: { name: "Brand" }) { directory { id name } } }');
      const directoryId = folder.data.createDirectory.directory.id;
      const updated = await app.gql(
        `mutation($input: UpdateAssetInput!) { updateAsset(input: $input) { asset { ${FIELDS} description } } }`,
        { input: { id: link.id, title: 'After', description: 'text', tags: ['b', 'c'], isPublic: true, directoryId } },
      );
      const asset = updated.data.updateAsset.asset;
      assert.equal(asset.title, 'After');
      assert.equal(asset.slug, 'before', 'the slug stays stable so links keep working');
      assert.equal(asset.description, 'text');
      assert.deepEqual(asset.tags, ['b', 'c']);
      assert.equal(asset.isPublic, true);
      assert.deepEqual(asset.directory, { id: directoryId, name: 'Brand' });

      const cleared = await app.gql(
        'mutation($id: ID!) { updateAsset(input: { id: $id, directoryId: null, description: null }) { asset { directory { id } description } } }',
        { id: link.id },
      );
      assert.deepEqual(cleared.data.updateAsset.asset, { directory: null, description: null });

      const deleted = await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', {
        id: link.id,
      });
      assert.equal(deleted.data.deleteAsset.deletedId, link.id);
      const gone = await app.gql('query($id: ID!) { asset(id: $id) { id } }', { id: link.id });
      assert.equal(gone.errors?.[0].extensions.code, 'NOT_FOUND');
      const again = await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', {
        id: link.id,
      });
      assert.equal(again.errors?.[0].extensions.code, 'NOT_FOUND');
    });

    test('uploading into a folder that does not exist is NOT_FOUND', async () => {
      const result = await app.gql(
        'mutation($d: ID!) { createAsset(input: { title: "x", type: LINK, externalUrl: "https://e.com", directoryId: $d }) { asset { id } } }',
        {
          d: encodeGlobalId('Directory', '00000000-0000-4000-8000-000000000000'),
        },
      );
      assert.equal(result.errors?.[0].extensions.code, 'NOT_FOUND');
    });

    test('GraphQL mistakes are BAD_USER_INPUT with a field', async () => {
      const cases = [
        '{ assets(first: 101) { totalCount } }',
        '{ assets(last: -1) { totalCount } }',
        '{ assets(first: 1, after: "garbage") { totalCount } }',
        '{ assets(filter: { types: [SPACESHIP] }) { totalCount } }',
        '{ nope }',
        '{ assets(',
        '{ assets(filter: { createdAfter: "yesterday" }) { totalCount } }',
      ];
      for (const query of cases) {
        const result = await app.gql(query);
        assert.equal(result.errors?.[0].extensions.code, 'BAD_USER_INPUT', query);
        assert.equal(typeof result.errors?.[0].extensions.field, 'string', query);
      }
      // The field is what the document names where graphql-js found the mistake.
      for (const [query, variables, field] of [
        ['{ nope }', {}, 'nope'],
        ['{ assets(first: 1, color: RED) { totalCount } }', {}, 'color'],
        ['query($n: Int!) { assets(first: $n) { totalCount } }', { n: 'many' }, 'n'],
      ] as const) {
        const result = await app.gql(query, variables);
        assert.equal(result.status, 400, query);
        assert.equal(result.errors?.[0].extensions.field, field, query);
      }
      const ok = await app.gql('{ assets(first: 1) { totalCount } }');
      assert.equal(ok.errors, undefined, 'the server keeps serving');
    });
  });

  describe(`assets: a list reads only the columns its query selects (${dialect})`, () => {
    let app: TestApp;
    before(async () => {
      // No sweep: its usage recount reads "assets" in a subquery while a test records statements.
      app = await createTestApp({ THUMBNAIL_SIZES: '16', SWEEP_INTERVAL: '0' }, {}, dialect);
    });
    after(() => app.dispose());

    /** A selection of `field` (with every field of the objects below it), from the schema itself. */
    function selectionOf(field: GraphQLField<unknown, unknown>, depth = 0): string {
      const inner = getNamedType(field.type);
      if (!isObjectType(inner)) return field.name;
      if (depth === 2) return `${field.name} { __typename }`;
      return `${field.name} { ${fieldsOf(inner)
        .map((f) => selectionOf(f, depth + 1))
        .join(' ')} }`;
    }
    const fieldsOf = (type: GraphQLObjectType) =>
      Object.values(type.getFields()).filter((field) => field.args.every((arg) => !isNonNullType(arg.type)));

    test('the page query reads the selected columns, not the whole row', async () => {
      await createLink(app, { title: 'Narrow' });
      const [pageSql] = (
        await app.recordQueries(() => app.gql('{ assets(first: 5) { edges { node { title isPublic } } } }'))
      ).filter((text) => /^select (?:(?!\(select ).)* from "assets"/.test(text)); // the page's own, not a subquery's
      const selected = /^select (.*?) from "assets"/.exec(pageSql!)?.[1];
      assert.ok(selected, pageSql);
      assert.ok(!selected.includes('*'), selected);
      for (const column of ['title', 'is_public', 'id', 'created_at'])
        assert.match(selected, new RegExp(`"${column}"`));
      for (const column of ['description', 'metadata', 'checksum', 'embed_url']) {
        assert.doesNotMatch(selected, new RegExp(`"${column}"`), `${column} was not selected`);
      }
    });

    test('every Asset field, selected alone in a list, reads what the whole row gives', async () => {
      const tenant = { orgId: 'acme', mode: 'live' as const };
      const folder = await app.gql('mutation { createDirectory(input: { name: "Shots" }) { directory { id } } }');
      const directoryId = decodeGlobalId(folder.data.createDirectory.directory.id).id;
      const image = await app.services.assets.upload(tenant, {
        stream: Readable.from([png(24, 12)]),
        filename: 'shot.png',
        title: 'Shot',
        description: 'A screenshot',
        tags: ['ui', 'dark'],
        directoryId,
        isPublic: true,
      });
      await app.jobs?.idle();
      await createLink(app, { title: 'Clip', type: 'EXTERNAL_VIDEO', externalUrl: 'https://youtu.be/dQw4w9WgXcQ' });

      const fields = fieldsOf(app.yoga.getEnveloped().schema.getType('Asset') as GraphQLObjectType);
      const everything = fields.map((field) => selectionOf(field)).join(' ');
      const whole = await app.gql(`{ assets(first: 10) { edges { node { ${everything} } } } }`);
      assert.equal(whole.errors, undefined, JSON.stringify(whole.errors));
      const rows: Record<string, any>[] = whole.data.assets.edges.map((edge: { node: unknown }) => edge.node);
      const shot = rows.find((row) => row.id === encodeGlobalId('Asset', image.id))!;
      assert.equal(shot.metadata.thumbnails.length, 1, 'the image was processed');
      assert.equal(shot.directory.name, 'Shots');
      for (const row of rows) {
        const one = await app.gql(`query($id: ID!) { asset(id: $id) { ${everything} } }`, { id: row.id });
        assert.deepEqual(one.data.asset, row, 'a list row and the asset read alone agree');
      }
      for (const field of fields) {
        const alone = await app.gql(`{ assets(first: 10) { edges { node { ${selectionOf(field)} } } } }`);
        assert.equal(alone.errors, undefined, `${field.name}: ${JSON.stringify(alone.errors)}`);
        assert.deepEqual(
          alone.data.assets.edges.map((edge: { node: Record<string, unknown> }) => edge.node[field.name]),
          rows.map((row) => row[field.name]),
          field.name,
        );
      }
    });
  });

  describe(`assets: keyset pages, filters and order (${dialect})`, () => {
    let app: TestApp;
    const ids: string[] = [];
    before(async () => {
      // One instant for every row: the order must come from the id tie-break alone.
      // No background work (job polls, sweeps): the statement count below must see only the page's.
      app = await createTestApp(
        { SWEEP_INTERVAL: '0' },
        { clock: () => Date.parse('2026-01-01T00:00:00Z'), runJobs: false },
        dialect,
      );
      for (let i = 0; i < 25; i++) {
        const asset = await createLink(app, {
          title: `Item ${String(i).padStart(2, '0')}`,
          tags: i % 2 ? ['odd'] : ['even', 'x'],
          isPublic: i % 5 === 0,
        });
        ids.push(asset.id);
      }
    });
    after(() => app.dispose());

    async function walk(direction: 'forward' | 'backward', size: number, orderBy?: unknown, filter?: unknown) {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 50; pages++) {
        const args =
          direction === 'forward'
            ? '(first: $n, after: $c, orderBy: $o, filter: $f)'
            : '(last: $n, before: $c, orderBy: $o, filter: $f)';
        const result: any = await app.gql(
          `query($n: Int, $c: String, $o: AssetOrder, $f: AssetFilter) { assets${args} { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id title } } } }`,
          { n: size, c: cursor, o: orderBy, f: filter },
        );
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        const { edges, pageInfo } = result.data.assets;
        const nodes = edges.map((e: any) => e.node.id);
        if (direction === 'forward') {
          seen.push(...nodes);
          if (!pageInfo.hasNextPage) return { seen, total: result.data.assets.totalCount };
          cursor = pageInfo.endCursor;
        } else {
          seen.unshift(...nodes);
          if (!pageInfo.hasPreviousPage) return { seen, total: result.data.assets.totalCount };
          cursor = pageInfo.startCursor;
        }
      }
      throw new Error('pagination did not end');
    }

    test('forward and backward walks see every asset once, in the same order', async () => {
      const forward = await walk('forward', 7);
      const backward = await walk('backward', 7);
      assert.equal(forward.seen.length, 25);
      assert.equal(new Set(forward.seen).size, 25);
      assert.deepEqual(backward.seen, forward.seen);
      assert.equal(forward.total, 25);
      // Equal timestamps: DESC order falls back to id DESC.
      assert.deepEqual(
        forward.seen,
        [...forward.seen].sort((a, b) => (decode(a) < decode(b) ? 1 : -1)),
      );
    });

    test('every sort field and direction pages consistently', async () => {
      for (const field of ['CREATED_AT', 'UPDATED_AT', 'TITLE', 'SIZE']) {
        for (const direction of ['ASC', 'DESC']) {
          const orderBy = { field, direction };
          const forward = await walk('forward', 4, orderBy);
          const backward = await walk('backward', 4, orderBy);
          assert.equal(forward.seen.length, 25, `${field} ${direction}`);
          assert.deepEqual(backward.seen, forward.seen, `${field} ${direction}`);
        }
      }
      const byTitle = await walk('forward', 10, { field: 'TITLE', direction: 'ASC' });
      assert.deepEqual(byTitle.seen, ids);
    });

    test('filters: tags (all of them), public, ids, search, type, dates', async () => {
      assert.equal((await walk('forward', 100, undefined, { tags: ['odd'] })).seen.length, 12);
      assert.equal((await walk('forward', 100, undefined, { tags: ['even', 'x'] })).seen.length, 13);
      assert.equal((await walk('forward', 100, undefined, { tags: ['even', 'odd'] })).seen.length, 0);
      assert.equal((await walk('forward', 100, undefined, { isPublic: true })).seen.length, 5);
      assert.deepEqual(
        (await walk('forward', 100, undefined, { ids: [ids[3], ids[4]] })).seen.sort(),
        [ids[3], ids[4]].sort(),
      );
      assert.equal((await walk('forward', 100, undefined, { search: 'item 1' })).seen.length, 10);
      assert.equal(
        (await walk('forward', 100, undefined, { search: '%' })).seen.length,
        0,
        'LIKE wildcards are literal',
      );
      assert.equal((await walk('forward', 100, undefined, { types: ['IMAGE'] })).seen.length, 0);
      assert.equal((await walk('forward', 100, undefined, { types: ['LINK'], status: ['READY'] })).seen.length, 25);
      assert.equal(
        (
          await walk('forward', 100, undefined, {
            createdAfter: '2025-12-31T00:00:00Z',
            createdBefore: '2026-01-02T00:00:00Z',
          })
        ).seen.length,
        25,
      );
      assert.equal((await walk('forward', 100, undefined, { createdAfter: '2026-01-01T00:00:00Z' })).seen.length, 0);
    });

    test('a cursor from another order is refused', async () => {
      const first = await app.gql('{ assets(first: 2) { pageInfo { endCursor } } }');
      const cursor = first.data.assets.pageInfo.endCursor;
      const result = await app.gql(
        'query($c: String) { assets(first: 2, after: $c, orderBy: { field: TITLE, direction: ASC }) { totalCount } }',
        { c: cursor },
      );
      assert.equal(result.errors?.[0].extensions.code, 'BAD_USER_INPUT');
    });

    test('a 100-asset page with tags and folders costs a constant number of statements', async () => {
      const folder = await app.gql('mutation { createDirectory(input: { name: "F" }) { directory { id } } }');
      for (let i = 0; i < 100; i++) {
        await createLink(app, {
          title: `Bulk ${i}`,
          tags: ['bulk', `t${i}`],
          directoryId: folder.data.createDirectory.directory.id,
        });
      }
      const query = (n: number) =>
        `{ assets(first: ${n}, filter: { tags: ["bulk"] }) { totalCount edges { node { id title tags directory { id name } } } } }`;
      const statementsFor = (n: number) =>
        app.countQueries(async () => {
          const result = await app.gql(query(n));
          assert.equal(result.data.assets.edges.length, n);
        });
      const one = await statementsFor(1);
      const hundred = await statementsFor(100);
      assert.equal(hundred, one, 'a longer page must not cost more statements');
      // key lookup + page (tags included) + count + folders batch
      assert.ok(hundred <= 4, `expected at most 4 statements, saw ${hundred}`);
    });

    test('a page reads its tags in the page query, sorted, [] for an untagged asset', async () => {
      const tagged = await createLink(app, { title: 'Tagged', tags: ['zeta', 'alpha', 'Mid'] });
      const bare = await createLink(app, { title: 'Bare' });
      let result: GqlResult<any> | undefined;
      const statements = await app.recordQueries(async () => {
        result = await app.gql('query($ids: [ID!]) { assets(filter: { ids: $ids }) { edges { node { id tags } } } }', {
          ids: [tagged.id, bare.id],
        });
      });
      const tagsById = Object.fromEntries(
        result!.data.assets.edges.map((edge: { node: { id: string; tags: string[] } }) => [
          edge.node.id,
          edge.node.tags,
        ]),
      );
      assert.deepEqual(tagsById, { [tagged.id]: ['alpha', 'mid', 'zeta'], [bare.id]: [] });
      assert.deepEqual(
        statements.filter((text) => text.includes('"asset_tags"') && !text.includes('from "assets"')),
        [],
        'no statement of its own for the tags',
      );
      const alone = await app.gql('query($id: ID!) { asset(id: $id) { tags } }', { id: tagged.id });
      assert.deepEqual(alone.data.asset.tags, ['alpha', 'mid', 'zeta'], 'read alone, the same');
    });
  });

  describe('search folds case in every script', () => {
    test('"ärger", "ÄRGER" and "Ärger" find each other; "büro" finds "BÜRO"', async () => {
      const app = await createTestApp();
      try {
        for (const title of ['ÄRGER im BÜRO', 'ärger', 'Ordnung']) {
          const created = await app.gql(
            'mutation($t: String!) { createAsset(input: { title: $t, type: LINK, externalUrl: "https://e.com" }) { asset { id } } }',
            { t: title },
          );
          assert.equal(created.errors, undefined);
        }
        const search = async (term: string) =>
          (
            await app.gql('query($s: String!) { assets(filter: { search: $s }) { edges { node { title } } } }', {
              s: term,
            })
          ).data.assets.edges
            .map((e: any) => e.node.title)
            .sort();
        for (const term of ['ärger', 'ÄRGER', 'Ärger'])
          assert.deepEqual(await search(term), ['ärger', 'ÄRGER im BÜRO'].sort(), term);
        assert.deepEqual(await search('büro'), ['ÄRGER im BÜRO']);
        assert.deepEqual(await search('ordnung'), ['Ordnung']);
      } finally {
        await app.dispose();
      }
    });
  });
});

function decode(globalId: string): string {
  return Buffer.from(globalId, 'base64url').toString().split(':')[1];
}

test('introspection and field suggestions can be switched off', async () => {
  const open = await createTestApp();
  const closed = await createTestApp({ GRAPHQL_INTROSPECTION: 'false' });
  try {
    assert.ok((await open.gql('{ __schema { queryType { name } } }')).data.__schema);
    const refused = await closed.gql('{ __schema { queryType { name } } }');
    assert.equal(refused.errors?.[0].extensions.code, 'BAD_USER_INPUT');
    const typo = await closed.gql('{ asets { totalCount } }');
    assert.doesNotMatch(typo.errors![0].message, /Did you mean/);
    assert.match((await open.gql('{ asets { totalCount } }')).errors![0].message, /Did you mean/);
  } finally {
    await open.dispose();
    await closed.dispose();
  }
});
