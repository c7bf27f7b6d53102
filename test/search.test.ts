import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { CompiledQuery } from 'kysely';
import { pageQuery } from '../src/db/asset-queries.js';
import { decodeGlobalId, encodeGlobalId } from '../src/global-id.js';
import {
  createTestApp,
  forEachDialect,
  listen,
  multipartForm,
  postMultipart,
  processed,
  type TestApp,
} from './helpers.js';
import { pdfWithText } from './samples.js';

const TENANT = { orgId: 'acme', mode: 'live' } as const;

forEachDialect((dialect) => {
  describe(`full-text search (${dialect})`, () => {
    let app: TestApp;
    const ids: Record<string, string> = {};

    /** Stores a file with the given fields and waits until its text is read. */
    const file = async (
      name: string,
      bytes: Buffer,
      fields: { title?: string; description?: string; tags?: string[] },
    ) => {
      const row = await app.services.assets.upload(TENANT, {
        stream: Readable.from([bytes]),
        filename: name,
        ...fields,
      });
      ids[name] = encodeGlobalId('Asset', row.id);
      await processed(app, ids[name]);
    };
    const link = async (key: string, title: string, description?: string) => {
      const made = await app.gql(
        'mutation($t: String!, $d: String) { createAsset(input: { title: $t, description: $d, type: LINK, externalUrl: "https://e.com" }) { asset { id } } }',
        { t: title, d: description },
      );
      ids[key] = made.data.createAsset.asset.id;
    };
    const search = async (text: string, orderBy?: unknown, extra = '') => {
      const result = await app.gql(
        `query($s: String!, $o: AssetOrder) { assets(first: 50, filter: { search: $s }, orderBy: $o${extra}) { edges { cursor node { id } } } }`,
        { s: text, o: orderBy },
      );
      assert.equal(result.status, 200);
      assert.equal(result.errors, undefined, `${text}: ${JSON.stringify(result.errors)}`);
      return result.data.assets.edges.map((e: any) => e.node.id) as string[];
    };
    const names = (found: string[]) => found.map((id) => Object.keys(ids).find((key) => ids[key] === id) ?? id).sort();

    before(async () => {
      app = await createTestApp({ SWEEP_INTERVAL: '0' }, {}, dialect);
      await file('IMG_2044-final.jpg.txt', Buffer.from('nothing to see'), {
        title: 'Sunset over the harbour',
        description: 'Golden hour at the pier',
        tags: ['travel', 'coast'],
      });
      await file('minutes.txt', Buffer.from('The committee discussed zebra crossings and the quarterly budget.'), {
        title: 'Meeting notes',
      });
      await file('report.pdf', pdfWithText(2), { title: 'Annual figures' });
      await link('cotton', '100% cotton shirt');
      await link('snake', 'snake_case names');
    });
    after(() => app.dispose());

    test('words match as prefixes in the title, tags, filename, description and the text read from the bytes', async () => {
      assert.deepEqual(names(await search('harb')), ['IMG_2044-final.jpg.txt'], 'title, prefix');
      assert.deepEqual(names(await search('GOLDEN')), ['IMG_2044-final.jpg.txt'], 'description, any case');
      assert.deepEqual(names(await search('coas')), ['IMG_2044-final.jpg.txt'], 'tag');
      assert.deepEqual(names(await search('img 2044')), ['IMG_2044-final.jpg.txt'], 'filename words');
      assert.deepEqual(names(await search('zebra')), ['minutes.txt'], 'a text file’s contents');
      assert.deepEqual(names(await search('brave world')), ['report.pdf'], 'a PDF’s words');
      assert.deepEqual(names(await search('quarterly zebra')), ['minutes.txt'], 'every word must match');
      assert.deepEqual(await search('zebra harbour'), []);
      assert.deepEqual(await search('ebra'), [], 'words match from their start, not inside');
      // The index lives beside the assets: no asset row read for a page, a download or an event carries the text.
      const [row] = await app.repositories.assets.findByIds(TENANT, [decodeGlobalId(ids['minutes.txt']).id]);
      assert.equal(row?.title, 'Meeting notes');
      assert.ok(!JSON.stringify(row).includes('zebra'), Object.keys(row!).join(', '));
    });

    test('% and _ are ordinary characters, and no search is syntax to the engine', async () => {
      assert.deepEqual(names(await search('100%')), ['cotton']);
      assert.deepEqual(names(await search('%')), ['cotton'], 'a lone % is matched literally');
      assert.deepEqual(names(await search('_')), ['IMG_2044-final.jpg.txt', 'snake'], 'a lone _ is matched literally');
      assert.deepEqual(names(await search('snake_case')), ['snake']);
      for (const hostile of [
        '"',
        '" OR *',
        'title:zebra',
        'NEAR(zebra quarterly)',
        "') or 1=1 --",
        'zebra & !x | y:*',
        '*',
        '-zebra',
        '^zebra',
      ]) {
        const found = await search(hostile);
        assert.ok(Array.isArray(found), hostile);
      }
      assert.deepEqual(
        names(await search('notes:zebra')),
        ['minutes.txt'],
        '"notes" and "zebra" are just words, not a column filter',
      );
    });

    test('RELEVANCE orders by how well assets match: title above description above the text; cursors page through it', async () => {
      const row = async (name: string, title: string, description: string | null, text: string) => {
        await file(name, Buffer.from(text), { title, ...(description && { description }) });
      };
      await row('in-text.txt', 'Plain', null, 'an otter swims here');
      await row('in-title.txt', 'Otter at dawn', null, 'nothing');
      await row('in-description.txt', 'Riverbank', 'a shy otter', 'nothing');
      const ranked = await search('otter', { field: 'RELEVANCE', direction: 'DESC' });
      assert.deepEqual(
        ranked.map((id) => Object.keys(ids).find((key) => ids[key] === id)),
        ['in-title.txt', 'in-description.txt', 'in-text.txt'],
      );
      // One at a time, following the cursors: the same order, nothing twice.
      const paged: string[] = [];
      let after: string | null = null;
      for (let i = 0; i < 5; i++) {
        const result: any = await app.gql(
          'query($c: String) { assets(first: 1, after: $c, filter: { search: "otter" }, orderBy: { field: RELEVANCE, direction: DESC }) { edges { cursor node { id } } pageInfo { hasNextPage } } }',
          { c: after },
        );
        paged.push(...result.data.assets.edges.map((e: any) => e.node.id));
        if (!result.data.assets.pageInfo.hasNextPage) break;
        after = result.data.assets.edges[0].cursor;
      }
      assert.deepEqual(paged, ranked);
      const without = await app.gql('{ assets(orderBy: { field: RELEVANCE, direction: DESC }) { totalCount } }');
      assert.equal(without.errors?.[0].extensions.code, 'BAD_USER_INPUT');
    });

    test('the index follows changes: new title and tags, replaced bytes, the trash', async () => {
      const id = ids['minutes.txt'];
      await app.gql(
        'mutation($id: ID!) { updateAsset(input: { id: $id, title: "Board minutes", tags: ["governance"] }) { asset { id } } }',
        {
          id,
        },
      );
      assert.deepEqual(names(await search('board govern')), ['minutes.txt']);
      assert.deepEqual(await search('meeting'), [], 'the old title is forgotten');
      const server = await listen(app.handler);
      try {
        const replaced = await postMultipart(
          server.url,
          multipartForm(
            'mutation($id: ID!, $f: Upload!) { replaceAssetFile(input: { id: $id, file: $f }) { asset { id } } }',
            { id, f: null },
            [['variables.f', new Blob(['Nothing about crossings any more, only llamas.']), 'minutes.txt']],
          ),
          app.authHeaders,
        );
        assert.equal(replaced.status, 200, JSON.stringify(replaced.json));
      } finally {
        await server.close();
      }
      await processed(app, id);
      assert.deepEqual(await search('zebra'), [], 'the old text went with the old bytes');
      assert.deepEqual(names(await search('llamas')), ['minutes.txt']);
      await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', { id });
      assert.deepEqual(await search('llamas'), [], 'trashed: out of the results');
      const trash = await app.gql('{ assets(filter: { search: "llamas", trashed: true }) { edges { node { id } } } }');
      assert.deepEqual(
        trash.data.assets.edges.map((e: any) => e.node.id),
        [id],
        'searchable in the trash',
      );
    });
  });
});

describe('a search page on SQLite reads its matches, not the whole org', () => {
  let app: TestApp;
  before(async () => {
    app = await createTestApp({ SWEEP_INTERVAL: '0' }, {}, 'sqlite');
  });
  after(async () => {
    await app.dispose();
  });

  test('found by rowid from the full-text matches and sorted, never by walking the order index; the pages are the same', async () => {
    // 600 assets, one in six matching: the page of a search, newest first, through every cursor.
    for (let i = 0; i < 600; i += 25) {
      const fields = Array.from(
        { length: 25 },
        (_, j) =>
          `a${j}: createAsset(input: { title: "${(i + j) % 6 === 0 ? 'otter' : 'heron'} ${i + j}", type: LINK, externalUrl: "https://e.com" }) { asset { id } }`,
      );
      assert.equal((await app.gql(`mutation { ${fields.join(' ')} }`)).errors, undefined);
    }
    const request = (cursor?: { value: string | number; id: string }) => ({
      column: 'created_at' as const,
      direction: 'desc' as const,
      backward: false,
      limit: 30,
      filter: { search: 'otter' },
      ...(cursor && { cursor }),
    });
    const plan = async (statement: { sql: string; parameters: readonly unknown[] }) =>
      (
        await app.db.executeQuery<{ detail: string }>(
          CompiledQuery.raw(`explain query plan ${statement.sql}`, [...statement.parameters]),
        )
      ).rows.map((row) => row.detail);
    const steps = await plan(pageQuery(app.db, { tenant: TENANT, request: request() }).compile());
    assert.ok(
      steps.some((step) => /SEARCH assets USING INTEGER PRIMARY KEY \(rowid=\?\)/.test(step)),
      steps.join('\n'),
    );
    assert.ok(!steps.some((step) => /^(SCAN|SEARCH) assets USING (COVERING )?INDEX/.test(step)), steps.join('\n'));

    // Every matching asset once, newest first, as the unsearched order says.
    const seen: string[] = [];
    let cursor: { value: string | number; id: string } | undefined;
    for (;;) {
      const { rows, hasMore } = await app.repositories.assets.page(TENANT, request(cursor));
      seen.push(...rows.map((row) => row.id));
      if (!hasMore) break;
      const last = rows[rows.length - 1];
      cursor = { value: String(last.created_at), id: last.id };
    }
    const expected = await app.db
      .selectFrom('assets')
      .select('id')
      .where('title', 'like', 'otter %')
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    assert.equal(expected.length, 100);
    assert.deepEqual(
      seen,
      expected.map((row) => row.id),
    );
  });
});
