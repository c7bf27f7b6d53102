import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { decodeGlobalId, encodeGlobalId } from '../src/global-id.js';
import { createBlobKey } from '../src/blob/index.js';
import {
  assertConsistent,
  createTestApp,
  forEachDialect,
  listen,
  multipartForm,
  png,
  postMultipart,
  processed,
  storedKeys,
  type TestApp,
} from './helpers.js';

const DAY = 86_400_000;
const TENANT = { orgId: 'acme', mode: 'live' } as const;

/** Uploads `text` as a file straight through the service and waits for processing; the asset's API id. */
async function upload(app: TestApp, text: string, filename = 'notes.txt', isPublic = false): Promise<string> {
  const row = await app.services.assets.upload(TENANT, { stream: Readable.from([Buffer.from(text)]), filename });
  const id = encodeGlobalId('Asset', row.id);
  if (isPublic)
    await app.gql('mutation($id: ID!) { updateAsset(input: { id: $id, isPublic: true }) { asset { id } } }', { id });
  await processed(app, id);
  return id;
}

const DELETE = 'mutation($id: ID!, $p: Boolean) { deleteAsset(input: { id: $id, permanently: $p }) { deletedId } }';
const RESTORE = 'mutation($id: ID!) { restoreAsset(input: { id: $id }) { asset { id title trashedAt } } }';
const LIST = 'query($f: AssetFilter) { assets(first: 50, filter: $f) { totalCount edges { node { id trashedAt } } } }';
const USAGE = '{ viewer { usage { assetCount bytesStored trashedCount trashedBytes orgBytesStored } } }';
const sha256 = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

forEachDialect((dialect) => {
  describe(`the trash (${dialect})`, () => {
    let now = Date.parse('2026-03-01T00:00:00Z');
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    before(async () => {
      app = await createTestApp({ SWEEP_INTERVAL: '0', TRASH_RETENTION: '7d' }, { clock: () => now }, dialect);
      server = await listen(app.handler);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });
    const ids = async (filter: Record<string, unknown> = {}) =>
      (await app.gql(LIST, { f: filter })).data.assets.edges.map((e: any) => e.node.id);

    test('a delete moves the asset to the trash: gone from lists, downloads and URLs at once; restore brings it back', async () => {
      const id = await upload(app, 'trash me, then restore me', 'restore.txt', true);
      const signed = (await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', { id }))
        .data.createDownloadUrl.url;
      const signedPath = new URL(signed).pathname;
      assert.equal((await fetch(`${server.url}${signedPath}`)).status, 200);
      assert.equal((await fetch(`${server.url}/download/${id}`)).status, 200, 'public: anyone may fetch it');
      const usageBefore = (await app.gql(USAGE)).data.viewer.usage;

      const deleted = await app.gql(DELETE, { id });
      assert.equal(deleted.status, 200);
      assert.equal(deleted.data.deleteAsset.deletedId, id);

      assert.ok(!(await ids()).includes(id), 'not listed');
      assert.deepEqual(await ids({ trashed: true }), [id], 'listed in the trash');
      const single = await app.gql('query($id: ID!) { asset(id: $id) { id } }', { id });
      assert.equal(single.errors?.[0].extensions.code, 'NOT_FOUND');
      for (const path of [`/download/${id}`, signedPath]) {
        const anonymous = await fetch(`${server.url}${path}`);
        assert.ok([403, 404].includes(anonymous.status), `${path}: ${anonymous.status}`);
        assert.equal((await anonymous.text()).includes('trash me'), false);
      }
      assert.equal((await fetch(`${server.url}/download/${id}`, { headers: app.authHeaders })).status, 404);
      const url = await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', { id });
      assert.equal(url.errors?.[0].extensions.code, 'NOT_FOUND', 'no new URL for a trashed asset');
      const update = await app.gql(
        'mutation($id: ID!) { updateAsset(input: { id: $id, title: "x" }) { asset { id } } }',
        {
          id,
        },
      );
      assert.equal(update.errors?.[0].extensions.code, 'NOT_FOUND', 'a trashed asset is not edited');
      // The bytes and the quota stay until it is purged.
      const usage = (await app.gql(USAGE)).data.viewer.usage;
      assert.equal(usage.bytesStored, usageBefore.bytesStored);
      assert.equal(usage.orgBytesStored, usageBefore.orgBytesStored);
      assert.equal(usage.trashedCount, usageBefore.trashedCount + 1);
      assert.equal(usage.trashedBytes, usageBefore.trashedBytes + 'trash me, then restore me'.length);

      const restored = await app.gql(RESTORE, { id });
      assert.equal(restored.status, 200);
      assert.equal(restored.data.restoreAsset.asset.id, id);
      assert.equal(restored.data.restoreAsset.asset.trashedAt, null);
      assert.ok((await ids()).includes(id), 'listed again');
      assert.ok(!(await ids({ trashed: true })).includes(id));
      const back = await fetch(`${server.url}/download/${id}`);
      assert.equal(back.status, 200, 'public again');
      assert.equal(await back.text(), 'trash me, then restore me');
      assert.equal((await fetch(`${server.url}${signedPath}`)).status === 200, false, 'URLs from before stay dead');
      const again = await app.gql(RESTORE, { id });
      assert.equal(again.errors?.[0].extensions.code, 'NOT_FOUND', 'a live asset is not in the trash');
      await assertConsistent(app);
    });

    test('the sweep purges the trash after TRASH_RETENTION, bytes, renditions and quota with it', async () => {
      const id = await upload(app, 'purged after a week', 'week.txt');
      const blobKey = createBlobKey(decodeGlobalId(id).id);
      const before = (await app.gql(USAGE)).data.viewer.usage;
      await app.gql(DELETE, { id });
      assert.ok(await app.blobs.head(blobKey), 'the bytes are kept in the trash');

      now += 6 * DAY;
      assert.equal((await app.sweeper.sweep()).purgedFromTrash, 0, 'not yet: six days');
      assert.deepEqual(await ids({ trashed: true }), [id]);

      now += 2 * DAY;
      assert.equal((await app.sweeper.sweep()).purgedFromTrash, 1);
      assert.deepEqual(await ids({ trashed: true }), []);
      assert.equal(await app.blobs.head(blobKey), null, 'the bytes are gone');
      assert.equal((await app.gql(RESTORE, { id })).errors?.[0].extensions.code, 'NOT_FOUND', 'past restoring');
      const after = (await app.gql(USAGE)).data.viewer.usage;
      assert.equal(after.bytesStored, before.bytesStored - 'purged after a week'.length);
      assert.equal(after.orgBytesStored, before.orgBytesStored - 'purged after a week'.length);
      assert.equal(after.assetCount, before.assetCount - 1);
      await assertConsistent(app);
    });

    test('permanently deletes at once, from the list or from the trash', async () => {
      const live = await upload(app, 'gone for good', 'good.txt');
      const trashed = await upload(app, 'trashed, then gone for good', 'later.txt');
      const keys = async () => (await storedKeys(app)).length;
      const stored = await keys();
      const before = (await app.gql(USAGE)).data.viewer.usage;
      assert.equal((await app.gql(DELETE, { id: live, p: true })).data.deleteAsset.deletedId, live);
      assert.equal(await keys(), stored - 1, 'its bytes went with it');
      await app.gql(DELETE, { id: trashed });
      assert.equal(await keys(), stored - 1, 'to the trash: the bytes stay');
      assert.equal((await app.gql(DELETE, { id: trashed, p: true })).data.deleteAsset.deletedId, trashed);
      assert.equal(await keys(), stored - 2, 'emptied from the trash');
      const usage = (await app.gql(USAGE)).data.viewer.usage;
      assert.equal(
        usage.bytesStored,
        before.bytesStored - 'gone for good'.length - 'trashed, then gone for good'.length,
      );
      assert.equal(usage.trashedCount, before.trashedCount);
      for (const id of [live, trashed]) {
        assert.equal((await app.gql(RESTORE, { id })).errors?.[0].extensions.code, 'NOT_FOUND');
      }
      const twice = await app.gql(DELETE, { id: live, p: true });
      assert.equal(twice.errors?.[0].extensions.code, 'NOT_FOUND');
      await assertConsistent(app);
    });

    test('the trash is the org’s own; restoring needs delete:assets, and its payload needs read:assets', async () => {
      const id = await upload(app, 'acme only', 'mine.txt');
      await app.gql(DELETE, { id });
      const other = await app.createKey('globex');
      const theirs = await app.gql(RESTORE, { id }, { authorization: `Bearer ${other}` });
      assert.equal(theirs.errors?.[0].extensions.code, 'NOT_FOUND');
      const theirList = await app.gql(LIST, { f: { trashed: true } }, { authorization: `Bearer ${other}` });
      assert.equal(theirList.data.assets.totalCount, 0);
      const reader = await app.createKey('acme', ['read:assets']);
      const refused = await app.gql(RESTORE, { id }, { authorization: `Bearer ${reader}` });
      assert.equal(refused.errors?.[0].extensions.code, 'FORBIDDEN');
      assert.deepEqual(await ids({ trashed: true }), [id], 'still in the trash');
      const deleter = await app.createKey('acme', ['delete:assets']);
      const blind = await app.gql(RESTORE, { id }, { authorization: `Bearer ${deleter}` });
      assert.equal(blind.status, 200);
      assert.equal(blind.data?.restoreAsset?.asset?.title, undefined, 'the title is not for a key that may not read');
      assert.ok(blind.errors?.length);
      for (const error of blind.errors ?? []) {
        assert.equal(error.extensions.code, 'FORBIDDEN');
        assert.deepEqual(error.path?.slice(0, 2), ['restoreAsset', 'asset']);
      }
      assert.ok((await ids()).includes(id), 'restored all the same');
    });

    test('an open assetUpdated stream on a public asset ends when the asset goes to the trash', async () => {
      const id = await upload(app, 'watched', 'watched.txt', true);
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({
          query: 'subscription($id: ID!) { assetUpdated(id: $id) { title } }',
          variables: { id },
        }),
      });
      assert.equal(response.status, 200);
      const reader = response.body!.getReader();
      await app.gql('mutation($id: ID!) { updateAsset(input: { id: $id, title: "seen" }) { asset { id } } }', { id });
      let text = '';
      while (!text.includes('"seen"')) text += new TextDecoder().decode((await reader.read()).value);
      await app.gql(DELETE, { id });
      // The stream ends without another event: read to its end.
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      assert.equal(text.match(/"title"/g)?.length, 1, text);
    });
  });

  describe(`TRASH_RETENTION=0 (${dialect})`, () => {
    test('a delete is final at once, as without a trash', async () => {
      const app = await createTestApp({ SWEEP_INTERVAL: '0', TRASH_RETENTION: '0' }, {}, dialect);
      try {
        const id = await upload(app, 'no trash here');
        const stored = (await storedKeys(app)).length;
        await app.gql(DELETE, { id });
        assert.equal((await storedKeys(app)).length, stored - 1);
        assert.equal((await app.gql(LIST, { f: { trashed: true } })).data.assets.totalCount, 0);
        assert.equal((await app.gql(RESTORE, { id })).errors?.[0].extensions.code, 'NOT_FOUND');
        await assertConsistent(app);
      } finally {
        await app.dispose();
      }
    });
  });

  describe(`duplicates by checksum (${dialect})`, () => {
    test('assets(filter: { checksum }) finds every asset of the org holding the same bytes, and only those', async () => {
      const app = await createTestApp({ SWEEP_INTERVAL: '0' }, {}, dialect);
      try {
        const first = await upload(app, 'the same bytes', 'a.txt');
        const second = await upload(app, 'the same bytes', 'b.txt');
        await upload(app, 'other bytes', 'c.txt');
        const other = await app.createKey('globex');
        await app.services.assets.upload(
          { orgId: 'globex', mode: 'live' },
          { stream: Readable.from([Buffer.from('the same bytes')]), filename: 'theirs.txt' },
        );
        const found = await app.gql(LIST, { f: { checksum: sha256('the same bytes') } });
        assert.deepEqual(found.data.assets.edges.map((e: any) => e.node.id).sort(), [first, second].sort());
        const theirs = await app.gql(
          LIST,
          { f: { checksum: sha256('the same bytes') } },
          {
            authorization: `Bearer ${other}`,
          },
        );
        assert.equal(theirs.data.assets.totalCount, 1, 'each org sees its own copy only');
        for (const checksum of ['the same bytes', 'sha256:ABC', `sha1:${'0'.repeat(40)}`]) {
          const bad = await app.gql(LIST, { f: { checksum } });
          assert.equal(bad.status, 200);
          assert.equal(bad.errors?.[0].extensions.code, 'BAD_USER_INPUT', checksum);
        }
        await app.jobs?.idle();
      } finally {
        await app.dispose();
      }
    });
  });

  describe(`replace in place (${dialect})`, () => {
    const REPLACE =
      'mutation($id: ID!, $f: Upload!) { replaceAssetFile(input: { id: $id, file: $f }) { asset { id version status size checksum filename url } } }';
    const READ =
      'query($id: ID!) { asset(id: $id) { id version status size width height checksum filename thumbnailUrl versions { version checksum size mimeType filename createdAt replacedAt } } }';
    let now = Date.parse('2026-04-01T00:00:00Z');
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    before(async () => {
      app = await createTestApp({ SWEEP_INTERVAL: '0', MAX_FILE_SIZE: '4096' }, { clock: () => now }, dialect);
      server = await listen(app.handler);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });
    const replace = (id: string, bytes: Buffer, filename: string, headers = app.authHeaders) =>
      postMultipart(
        server.url,
        multipartForm(REPLACE, { id, f: null }, [['variables.f', new Blob([new Uint8Array(bytes)]), filename]]),
        headers,
      );
    const usage = async () => (await app.gql(USAGE)).data.viewer.usage;

    test('same id and URL, version bumped, old URLs dead at once, metadata and thumbnails made again, old bytes released', async () => {
      const first = png(8, 6);
      const upload = await postMultipart(
        server.url,
        multipartForm(
          'mutation($f: Upload!) { uploadAsset(input: { file: $f, isPublic: true }) { asset { id url } } }',
          { f: null },
          [['variables.f', new Blob([new Uint8Array(first)]), 'logo.png']],
        ),
        app.authHeaders,
      );
      const { id, url } = upload.json.data.uploadAsset.asset;
      const v1 = await processed(app, id, 'checksum width height thumbnailUrl');
      assert.equal(v1.width, 8);
      const signed = new URL(
        (await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', { id })).data
          .createDownloadUrl.url,
      ).pathname;
      assert.equal((await fetch(`${server.url}${signed}`)).status, 200);
      const rendition = `/download/${id}?w=64&format=webp`;
      assert.equal((await fetch(`${server.url}${rendition}`)).status, 200);
      const v1Thumbnail = new URL(v1.thumbnailUrl);
      const drawn = await fetch(`${server.url}${v1Thumbnail.pathname}${v1Thumbnail.search}`);
      assert.equal(drawn.status, 200, 'the first thumbnail is drawn on request');
      const thumbnailEtag = drawn.headers.get('etag');
      const oldKeys = await storedKeys(app);
      const before = await usage();

      now += 60_000;
      const second = png(20, 10);
      const replaced = await replace(id, second, 'logo-v2.png');
      assert.equal(replaced.status, 200, JSON.stringify(replaced.json));
      const asset = replaced.json.data.replaceAssetFile.asset;
      assert.equal(asset.id, id);
      assert.equal(asset.url, url, 'the same public URL');
      assert.equal(asset.version, 2);
      assert.equal(asset.size, second.length);
      assert.equal(asset.filename, 'logo-v2.png');
      assert.equal(asset.checksum, `sha256:${createHash('sha256').update(second).digest('hex')}`);

      assert.ok([403, 404].includes((await fetch(`${server.url}${signed}`)).status), 'the old signed URL is dead');
      const direct = Buffer.from(await (await fetch(`${server.url}${new URL(url).pathname}`)).arrayBuffer());
      assert.ok(direct.equals(second), 'the URL serves the new bytes');

      const v2 = await processed(app, id, READ.match(/asset\(id: \$id\) \{ (.*) \} \}$/)![1]);
      assert.equal(v2.status, 'READY');
      assert.deepEqual([v2.width, v2.height], [20, 10], 'metadata read from the new bytes');
      assert.equal(v2.versions.length, 1);
      assert.deepEqual(
        { ...v2.versions[0], createdAt: undefined, replacedAt: undefined },
        {
          version: 1,
          checksum: v1.checksum,
          size: first.length,
          mimeType: 'image/png',
          filename: 'logo.png',
          createdAt: undefined,
          replacedAt: undefined,
        },
      );
      assert.equal(v2.versions[0].replacedAt, new Date(now).toISOString());
      const thumbnail = new URL(v2.thumbnailUrl);
      const thumb = await fetch(`${server.url}${thumbnail.pathname}${thumbnail.search}`);
      assert.equal(thumb.status, 200);
      assert.notEqual(thumb.headers.get('etag'), thumbnailEtag, 'the thumbnail of the new bytes');
      assert.equal(
        (await (await import('sharp')).default(Buffer.from(await thumb.arrayBuffer())).metadata()).width,
        20,
      );
      const fresh = await fetch(`${server.url}${rendition}`);
      assert.equal(fresh.status, 200);
      assert.equal(
        (await (await import('sharp')).default(Buffer.from(await fresh.arrayBuffer())).metadata()).width,
        20,
        'renditions made again',
      );

      const keys = await storedKeys(app);
      const gone = oldKeys.filter((key) => !keys.includes(key));
      assert.ok(
        gone.some((key) => key === createBlobKey(decodeGlobalId(id).id)),
        'the old bytes are deleted',
      );
      assert.ok(
        gone.filter((key) => key.startsWith(`${decodeGlobalId(id).id.slice(0, 2)}/${decodeGlobalId(id).id}.r`))
          .length >= 2,
        'the old thumbnail and rendition are deleted',
      );
      const after = await usage();
      assert.equal(after.bytesStored, before.bytesStored - first.length + second.length);
      assert.equal(after.orgBytesStored, before.orgBytesStored - first.length + second.length);
      await assertConsistent(app);
    });

    test('a refused file changes nothing; links, other orgs and keys without write:assets cannot replace', async () => {
      const id = await upload(app, 'the original text', 'keep.txt');
      const before = await usage();
      const keys = await storedKeys(app);
      const tooBig = await replace(id, Buffer.alloc(5000, 7), 'big.bin');
      assert.equal(tooBig.status, 413);
      assert.equal(tooBig.json.errors[0].extensions.code, 'PAYLOAD_TOO_LARGE');
      const read = (await app.gql(READ, { id })).data.asset;
      assert.equal(read.version, 1);
      assert.deepEqual(read.versions, []);
      assert.equal(
        await (await fetch(`${server.url}/download/${id}`, { headers: app.authHeaders })).text(),
        'the original text',
      );
      assert.deepEqual(await usage(), before);
      assert.deepEqual((await storedKeys(app)).sort(), keys.sort(), 'no blob left behind');

      const link = (
        await app.gql(
          'mutation { createAsset(input: { title: "L", type: LINK, externalUrl: "https://example.com/" }) { asset { id } } }',
        )
      ).data.createAsset.asset.id;
      const notFile = await replace(link, Buffer.from('x'), 'x.txt');
      assert.equal(notFile.status, 200);
      assert.equal(notFile.json.errors[0].extensions.code, 'BAD_USER_INPUT');

      const other = await app.createKey('globex');
      const foreign = await replace(id, Buffer.from('hijack'), 'x.txt', { authorization: `Bearer ${other}` });
      assert.equal(foreign.json.errors[0].extensions.code, 'NOT_FOUND');
      const reader = await app.createKey('acme', ['read:assets']);
      const readOnly = await replace(id, Buffer.from('hijack'), 'x.txt', { authorization: `Bearer ${reader}` });
      assert.equal(readOnly.json.errors[0].extensions.code, 'FORBIDDEN');
      await app.gql(DELETE, { id });
      const trashed = await replace(id, Buffer.from('into the trash?'), 'x.txt');
      assert.equal(trashed.json.errors[0].extensions.code, 'NOT_FOUND');
      assert.equal(await (await fetch(`${server.url}/download/${id}`, { headers: app.authHeaders })).status, 404);
      assert.deepEqual((await storedKeys(app)).sort(), keys.sort());
      await assertConsistent(app);
    });

    test('createReplaceUrl: one PUT of the raw bytes replaces them, as the mutation does; the URL is spent after', async () => {
      const REPLACE_URL =
        'mutation($i: CreateReplaceUrlInput!) { createReplaceUrl(input: $i) { uploadUrl expiresAt asset { id version } } }';
      const id = await upload(app, 'first words', 'words.txt');
      const signed = new URL(
        (await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', { id })).data
          .createDownloadUrl.url,
      ).pathname;
      const text = 'second words, by URL';
      const made = await app.gql(REPLACE_URL, {
        i: { id, filename: 'words-2.txt', size: text.length, checksum: sha256(text) },
      });
      assert.equal(made.status, 200, JSON.stringify(made.errors));
      assert.equal(made.data.createReplaceUrl.asset.version, 1);
      const path = new URL(made.data.createReplaceUrl.uploadUrl).pathname;
      const put = (body: string, to = path) => fetch(`${server.url}${to}`, { method: 'PUT', body });

      // A tus request on it, or bytes unlike those declared: refused, nothing changes.
      const tus = await fetch(`${server.url}${path}`, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } });
      assert.equal(tus.status, 400);
      const wrong = await put('other words, other sum');
      assert.equal(wrong.status, 400);
      assert.equal(((await wrong.json()) as any).error.code, 'BAD_USER_INPUT');
      assert.equal((await app.gql(READ, { id })).data.asset.version, 1, 'a refused PUT changes nothing');

      const done = await put(text);
      assert.equal(done.status, 200);
      const body = (await done.json()) as any;
      assert.equal(body.id, id, 'same asset');
      assert.equal(body.checksum, sha256(text));
      const read = (await app.gql(READ, { id })).data.asset;
      assert.equal(read.version, 2);
      assert.equal(read.filename, 'words-2.txt');
      assert.equal(read.versions[0].checksum, sha256('first words'));
      assert.equal(
        await (await fetch(`${server.url}/download/${id}`, { headers: app.authHeaders })).text(),
        text,
        'the new bytes are served',
      );
      assert.ok([403, 404].includes((await fetch(`${server.url}${signed}`)).status), 'old download URLs died');

      const again = await put('a third time');
      assert.equal(again.status, 409);
      assert.equal(((await again.json()) as any).error.code, 'CONFLICT');
      assert.equal((await app.gql(READ, { id })).data.asset.version, 2);

      // The URL lives no longer than its key's right to write; other orgs cannot ask for one.
      const writer = await app.createKey('acme', ['write:assets', 'admin:keys']);
      const writerHeaders = { authorization: `Bearer ${writer}` };
      const pending = new URL(
        (
          await app.gql(
            'mutation($i: CreateReplaceUrlInput!) { createReplaceUrl(input: $i) { uploadUrl } }',
            { i: { id } },
            writerHeaders,
          )
        ).data.createReplaceUrl.uploadUrl,
      ).pathname;
      const me = (await app.gql('{ viewer { apiKey { id } } }', {}, writerHeaders)).data.viewer.apiKey.id;
      await app.gql('mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { id } } }', { id: me });
      const revoked = await put('after the revoke', pending);
      assert.equal(revoked.status, 403);
      assert.equal((await app.gql(READ, { id })).data.asset.version, 2);
      const other = await app.createKey('globex');
      const foreign = await app.gql(REPLACE_URL, { i: { id } }, { authorization: `Bearer ${other}` });
      assert.equal(foreign.errors?.[0].extensions.code, 'NOT_FOUND');
      await assertConsistent(app);
    });

    test('two replacements at once: one version each, no blob left behind', async () => {
      const id = await upload(app, 'racing', 'race.txt');
      const results = await Promise.all(
        ['first racer', 'second racer', 'third racer'].map((text) => replace(id, Buffer.from(text), 'race.txt')),
      );
      const won = results.filter((r) => r.json.data?.replaceAssetFile);
      const lost = results.filter((r) => !r.json.data?.replaceAssetFile);
      assert.ok(won.length >= 1);
      for (const r of lost) assert.equal(r.json.errors[0].extensions.code, 'CONFLICT');
      const read = (await app.gql(READ, { id })).data.asset;
      assert.equal(read.version, 1 + won.length);
      assert.equal(read.versions.length, won.length);
      await assertConsistent(app);
    });
  });
});
