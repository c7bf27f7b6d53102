import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { decodeGlobalId, encodeGlobalId } from '../src/global-id.js';
import { isClean } from '../src/services/lifecycle/fsck.js';
import { createDatabase } from '../src/db/database.js';
import { migrateOrThrow, migrateTo } from '../src/db/migrate.js';
import {
  assertConsistent,
  createTestApp,
  forEachDialect,
  listen,
  multipartForm,
  postMultipart,
  postgresSchema,
  processed,
  storedKeys,
  tempDir,
  type TestApp,
} from './helpers.js';

const ACME = { orgId: 'acme', mode: 'live' } as const;
const DELETE = 'mutation($id: ID!, $p: Boolean) { deleteAsset(input: { id: $id, permanently: $p }) { deletedId } }';
const USAGE = '{ viewer { usage { assetCount bytesStored bytesOccupied orgBytesStored } } }';
const sha256 = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

forEachDialect((dialect) => {
  describe(`identical bytes are stored once per org (${dialect})`, () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    before(async () => {
      app = await createTestApp({ SWEEP_INTERVAL: '0', TRASH_RETENTION: '7d' }, {}, dialect);
      server = await listen(app.handler);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });
    const upload = async (text: string, filename: string, headers = app.authHeaders) => {
      const response = await postMultipart(
        server.url,
        multipartForm(
          'mutation($f: Upload!) { uploadAsset(input: { file: $f }) { asset { id checksum size } } }',
          { f: null },
          [['variables.f', new Blob([text]), filename]],
        ),
        headers,
      );
      assert.equal(response.status, 200, JSON.stringify(response.json));
      const { id } = response.json.data.uploadAsset.asset;
      await processed(app, id);
      return id as string;
    };
    const download = async (id: string, headers = app.authHeaders) => {
      const response = await fetch(`${server.url}/download/${id}`, { headers });
      return { status: response.status, body: await response.text() };
    };
    const keyOf = async (id: string) =>
      (await app.repositories.assets.findByIdAnyTenant(decodeGlobalId(id).id))!.blob_key;
    const copyOf = (checksum: string, tenant: { orgId: string; mode: 'live' | 'test' } = ACME) =>
      app.repositories.copies.find(tenant, checksum);

    test('a second upload of the same bytes points at the first copy; each delete releases one holder, the last the bytes', async () => {
      const text = 'the same report, uploaded twice';
      const usage0 = (await app.gql(USAGE)).data.viewer.usage;
      const keys0 = await storedKeys(app);
      const first = await upload(text, 'report.txt');
      const keys1 = await storedKeys(app);
      const second = await upload(text, 'report-copy.txt');
      assert.notEqual(first, second, 'two assets');
      assert.deepEqual(await storedKeys(app), keys1, 'the second upload stored no bytes of its own');
      assert.equal(await keyOf(second), await keyOf(first), 'both hold the same blob');
      assert.equal((await copyOf(sha256(text)))?.ref_count, 2);

      const usage = (await app.gql(USAGE)).data.viewer.usage;
      assert.equal(usage.bytesStored - usage0.bytesStored, 2 * text.length, 'logically: each asset its size');
      assert.equal(usage.bytesOccupied - usage0.bytesOccupied, text.length, 'physically: once');
      assert.equal(usage.orgBytesStored - usage0.orgBytesStored, 2 * text.length, 'the quota counts each asset');

      // To the trash: still a holder.
      assert.equal((await app.gql(DELETE, { id: first })).data.deleteAsset.deletedId, first);
      assert.equal((await copyOf(sha256(text)))?.ref_count, 2, 'a trashed asset still holds its bytes');
      assert.equal((await app.gql(DELETE, { id: first, p: true })).data.deleteAsset.deletedId, first);
      assert.equal((await copyOf(sha256(text)))?.ref_count, 1);
      assert.deepEqual(await download(second), { status: 200, body: text }, 'the other asset keeps the bytes');
      assert.deepEqual(await storedKeys(app), keys1);

      assert.equal((await app.gql(DELETE, { id: second, p: true })).data.deleteAsset.deletedId, second);
      assert.equal(await copyOf(sha256(text)), undefined, 'the copy is forgotten with its last holder');
      assert.deepEqual(await storedKeys(app), keys0, 'and its bytes deleted');
      const after = (await app.gql(USAGE)).data.viewer.usage;
      assert.equal(after.bytesOccupied, usage0.bytesOccupied);
      assert.equal(after.bytesStored, usage0.bytesStored);
      await assertConsistent(app);
    });

    test('orgs never share bytes, nor do an org’s test and live modes', async () => {
      const text = 'a file two orgs happen to hold';
      const mine = await upload(text, 'mine.txt');
      const globex = { authorization: `Bearer ${await app.createKey('globex')}` };
      const test = { authorization: `Bearer ${await app.createKey('acme', undefined, 'test')}` };
      const keys = await storedKeys(app);
      const theirs = await upload(text, 'theirs.txt', globex);
      const sandbox = await upload(text, 'sandbox.txt', test);
      assert.equal((await storedKeys(app)).length, keys.length + 2, 'a copy each');
      const held = new Set([await keyOf(mine), await keyOf(theirs), await keyOf(sandbox)]);
      assert.equal(held.size, 3);
      // Deleting one org's asset does not touch the other's bytes.
      assert.equal((await app.gql(DELETE, { id: theirs, p: true }, globex)).status, 200);
      assert.deepEqual(await download(mine), { status: 200, body: text });
      assert.deepEqual(await download(sandbox, test), { status: 200, body: text });
      await assertConsistent(app);
    });

    test('concurrent uploads of the same bytes keep one copy counted by all of them', async () => {
      const text = 'twelve clients upload this at once';
      const keys = await storedKeys(app);
      const rows = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          app.services.assets.upload(ACME, { stream: Readable.from([Buffer.from(text)]), filename: `same-${i}.txt` }),
        ),
      );
      assert.equal(new Set(rows.map((row) => row.blob_key)).size, 1, 'one key, as the returned rows say');
      assert.equal((await storedKeys(app)).length, keys.length + 1, 'one blob in the store');
      assert.equal((await copyOf(sha256(text)))?.ref_count, 12);
      await assertConsistent(app);
      await Promise.all(rows.map((row) => app.services.assets.delete(ACME, row.id, { permanently: true })));
      assert.equal(await copyOf(sha256(text)), undefined);
      assert.deepEqual(await storedKeys(app), keys, 'concurrent deletes: the last took the bytes');
      await assertConsistent(app);
    });

    test('an upload racing the delete of the last asset with the same bytes never loses its bytes nor leaves an orphan', async () => {
      const text = 'raced between a delete and an upload';
      const keys = await storedKeys(app);
      // Each round: the last holder deleted while three uploads of its bytes arrive (on
      // PostgreSQL this also proves the transactions take their locks in one order).
      for (let round = 0; round < 20; round++) {
        const old = await app.services.assets.upload(ACME, {
          stream: Readable.from([Buffer.from(text)]),
          filename: 'old.txt',
        });
        const [, ...fresh] = await Promise.all([
          app.services.assets.delete(ACME, old.id, { permanently: true }),
          ...[1, 2, 3].map((i) =>
            app.services.assets.upload(ACME, { stream: Readable.from([Buffer.from(text)]), filename: `new-${i}.txt` }),
          ),
        ]);
        for (const row of fresh) {
          assert.deepEqual(
            await download(encodeGlobalId('Asset', row.id)),
            { status: 200, body: text },
            `round ${round}`,
          );
        }
        assert.equal((await storedKeys(app)).length, keys.length + 1, `round ${round}: exactly one copy`);
        assert.equal((await copyOf(sha256(text)))?.ref_count, 3);
        await Promise.all(fresh.map((row) => app.services.assets.delete(ACME, row.id, { permanently: true })));
        assert.deepEqual(await storedKeys(app), keys, `round ${round}: nothing left`);
      }
      await assertConsistent(app);
    });

    test('replacing with bytes the org stores shares them; replacing a shared file leaves the other holder its bytes', async () => {
      const REPLACE =
        'mutation($id: ID!, $f: Upload!) { replaceAssetFile(input: { id: $id, file: $f }) { asset { id version checksum } } }';
      const replace = (id: string, text: string) =>
        postMultipart(
          server.url,
          multipartForm(REPLACE, { id, f: null }, [['variables.f', new Blob([text]), 'r.txt']]),
          app.authHeaders,
        );
      const a = await upload('version one of a', 'a.txt');
      const b = await upload('what b holds', 'b.txt');
      const keys = await storedKeys(app);
      const replaced = await replace(a, 'what b holds');
      assert.equal(replaced.status, 200, JSON.stringify(replaced.json));
      assert.equal(replaced.json.data.replaceAssetFile.asset.version, 2);
      await processed(app, a);
      assert.equal(await keyOf(a), await keyOf(b), 'a now holds b’s copy');
      assert.equal((await storedKeys(app)).length, keys.length - 1, 'a’s old bytes went; nothing new was kept');
      assert.equal((await copyOf(sha256('what b holds')))?.ref_count, 2);

      // The same bytes again: version moves on, the copy stays.
      assert.equal((await replace(a, 'what b holds')).json.data.replaceAssetFile.asset.version, 3);
      await processed(app, a);
      assert.equal((await copyOf(sha256('what b holds')))?.ref_count, 2);
      assert.deepEqual(await download(b), { status: 200, body: 'what b holds' });

      // Away from the shared copy: b keeps it.
      assert.equal((await replace(a, 'a again, its own')).status, 200);
      await processed(app, a);
      assert.equal((await copyOf(sha256('what b holds')))?.ref_count, 1);
      assert.deepEqual(await download(b), { status: 200, body: 'what b holds' });
      assert.deepEqual(await download(a), { status: 200, body: 'a again, its own' });
      await assertConsistent(app);
    });

    test('createUploadUrl with reuseStored answers at once with an asset on bytes the org stores', async () => {
      const CREATE =
        'mutation($i: CreateUploadUrlInput!) { createUploadUrl(input: $i) { uploadUrl expiresAt asset { id status size checksum filename } } }';
      const text = 'bytes the org already holds';
      const original = await upload(text, 'original.txt');
      const keys = await storedKeys(app);
      const usage0 = (await app.gql(USAGE)).data.viewer.usage;
      const input = { filename: 'again.txt', checksum: sha256(text), size: text.length, reuseStored: true };

      const reused = await app.gql(CREATE, { i: input });
      assert.equal(reused.status, 200, JSON.stringify(reused.errors));
      const { uploadUrl, expiresAt, asset } = reused.data.createUploadUrl;
      assert.equal(uploadUrl, null, 'nothing to upload');
      assert.equal(expiresAt, null);
      assert.notEqual(asset.id, original);
      assert.equal(asset.status, 'PROCESSING');
      assert.equal(asset.size, text.length);
      assert.equal(asset.checksum, sha256(text));
      assert.equal(asset.filename, 'again.txt');
      assert.equal((await processed(app, asset.id, 'status mimeType wordCount')).status, 'READY');
      assert.deepEqual(await download(asset.id), { status: 200, body: text });
      assert.deepEqual(await storedKeys(app), keys, 'no bytes stored');
      assert.equal((await copyOf(sha256(text)))?.ref_count, 2);
      const usage = (await app.gql(USAGE)).data.viewer.usage;
      assert.equal(usage.bytesStored - usage0.bytesStored, text.length, 'charged like any asset');
      assert.equal(usage.bytesOccupied, usage0.bytesOccupied);

      // Without reuseStored, or for bytes the org does not hold: an upload URL as ever.
      for (const i of [
        { ...input, reuseStored: false },
        { ...input, checksum: sha256('never stored'), size: 'never stored'.length },
      ]) {
        const asked = await app.gql(CREATE, { i });
        assert.match(asked.data.createUploadUrl.uploadUrl, /\/up\//);
        assert.equal(asked.data.createUploadUrl.asset.status, 'WAITING');
      }
      // Another org, or the org's test mode, holding nothing: no answer about acme's bytes.
      for (const key of [await app.createKey('globex'), await app.createKey('acme', undefined, 'test')]) {
        const theirs = await app.gql(CREATE, { i: input }, { authorization: `Bearer ${key}` });
        assert.match(theirs.data.createUploadUrl.uploadUrl, /\/up\//, 'told nothing: upload the bytes');
      }
      // Asking needs read:assets; the declared size must match; a checksum is needed.
      const writer = await app.createKey('acme', ['write:assets']);
      const blind = await app.gql(CREATE, { i: input }, { authorization: `Bearer ${writer}` });
      assert.equal(blind.errors?.[0].extensions.code, 'FORBIDDEN');
      assert.match(blind.errors?.[0].message ?? '', /read:assets/);
      const wrongSize = await app.gql(CREATE, { i: { ...input, size: text.length + 1 } });
      assert.equal(wrongSize.errors?.[0].extensions.code, 'BAD_USER_INPUT');
      const noChecksum = await app.gql(CREATE, { i: { filename: 'x.txt', reuseStored: true } });
      assert.equal(noChecksum.errors?.[0].extensions.code, 'BAD_USER_INPUT');
      assert.equal((await copyOf(sha256(text)))?.ref_count, 2, 'refusals counted nothing');
      assert.equal((await app.gql(USAGE)).data.viewer.usage.bytesStored, usage.bytesStored, 'nor charged anything');
      await assertConsistent(app);
    });

    test('fsck reads bytes that several assets share once, and reports each asset when they are lost', async () => {
      const text = 'shared by five assets';
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push(await upload(text, `five-${i}.txt`));
      const key = (await keyOf(ids[0]))!;
      const { get, head } = app.blobs;
      let reads = 0;
      app.blobs.get = (k, range) => ((reads += k === key ? 1 : 0), get.call(app.blobs, k, range));
      app.blobs.head = (k) => ((reads += k === key ? 1 : 0), head.call(app.blobs, k));
      try {
        assert.ok(isClean(await app.fsck({ checksums: true })));
      } finally {
        app.blobs.get = get;
        app.blobs.head = head;
      }
      assert.equal(reads, 2, 'one head and one read to hash it, for five assets');
      await app.blobs.delete(key);
      const lost = await app.fsck({ repair: true });
      assert.deepEqual(
        lost.missingBlobs.map((m) => m.assetId).sort(),
        [...ids].map((id) => decodeGlobalId(id).id).sort(),
      );
      assert.equal(await copyOf(sha256(text)), undefined, 'the copy went with its last holder');
      for (const id of ids) assert.equal((await processed(app, id, 'status')).status, 'FAILED');
      await assertConsistent(app);
    });

    test('fsck finds counts that disagree with the assets holding the bytes, and --repair mends them', async () => {
      const text = 'counted wrongly on purpose';
      const first = await upload(text, 'one.txt');
      const second = await upload(text, 'two.txt');
      const key = (await keyOf(first))!;
      await app.db.updateTable('blobs').set({ ref_count: 5 }).where('blob_key', '=', key).execute();
      const found = await app.fsck();
      assert.deepEqual(found.refCountMismatches, [{ key, orgId: 'acme', recorded: 5, actual: 2 }]);
      assert.equal(isClean(found), false);
      const repaired = await app.fsck({ repair: true });
      assert.equal(repaired.refCountMismatches.length, 1);
      assert.ok(isClean(await app.fsck()), 'clean after the repair');
      // The repaired count is what lets the last delete free the bytes.
      await app.gql(DELETE, { id: first, p: true });
      await app.gql(DELETE, { id: second, p: true });
      assert.equal(await app.blobs.head(key), null, 'the bytes went with their last holder');

      // A key assets hold with no count at all (bytes stored before counting began).
      const third = await upload('held, never counted', 'three.txt');
      const uncounted = (await keyOf(third))!;
      await app.db.deleteFrom('blobs').where('blob_key', '=', uncounted).execute();
      assert.deepEqual((await app.fsck()).refCountMismatches, [
        { key: uncounted, orgId: 'acme', recorded: null, actual: 1 },
      ]);
      await app.fsck({ repair: true });
      assert.equal((await copyOf(sha256('held, never counted')))?.ref_count, 1);
      const fourth = await upload('held, never counted', 'four.txt');
      assert.equal(await keyOf(fourth), uncounted, 'the recorded copy is found again');

      // A copy nobody holds: forgotten, and its bytes deleted.
      await app.db.updateTable('blobs').set({ ref_count: 3 }).where('blob_key', '=', uncounted).execute();
      await app.gql(DELETE, { id: third, p: true });
      await app.gql(DELETE, { id: fourth, p: true });
      assert.ok(await app.blobs.head(uncounted), 'the wrong count kept the bytes');
      assert.deepEqual((await app.fsck()).refCountMismatches, [
        { key: uncounted, orgId: 'acme', recorded: 1, actual: 0 },
      ]);
      await app.fsck({ repair: true });
      assert.equal(await app.blobs.head(uncounted), null);
      assert.equal(await copyOf(sha256('held, never counted')), undefined);
      await assertConsistent(app);
    });
  });

  test(`upgrading: assets stored apart before copies were counted point at one copy, counted (${dialect})`, async () => {
    const folder = tempDir('assetgate-upgrade-');
    const pg = dialect === 'postgres' ? await postgresSchema() : null;
    const db = createDatabase({ url: pg ? pg.url : `sqlite:${folder.dir}/old.db` });
    try {
      const { error } = await migrateTo(db, '0011-full-text-search');
      assert.equal(error, undefined);
      const at = '2026-01-01T00:00:00.000Z';
      await db.insertInto('orgs').values({ id: 'acme', created_at: at }).execute();
      const asset = (id: string, key: string, checksum: string, mode: 'live' | 'test' = 'live') => ({
        id,
        org_id: 'acme',
        mode,
        title: id,
        slug: id,
        type: 'DOCUMENT',
        status: 'READY',
        size: 5,
        checksum,
        blob_key: key,
        created_at: at,
        updated_at: at,
      });
      await db
        .insertInto('assets')
        .values([
          asset('a1', 'aa/key-one-aaaa', 'sha256:same'),
          asset('a2', 'bb/key-two-bbbb', 'sha256:same'),
          asset('a3', 'cc/key-three-cc', 'sha256:other'),
          asset('a4', 'dd/key-four-ddd', 'sha256:same', 'test'),
        ])
        .execute();
      await migrateOrThrow(db);
      const keys = Object.fromEntries(
        (await db.selectFrom('assets').select(['id', 'blob_key']).execute()).map((r) => [r.id, r.blob_key]),
      );
      assert.deepEqual(keys, {
        a1: 'aa/key-one-aaaa',
        a2: 'aa/key-one-aaaa',
        a3: 'cc/key-three-cc',
        a4: 'dd/key-four-ddd',
      });
      const copies = await db
        .selectFrom('blobs')
        .select(['mode', 'checksum', 'blob_key', 'ref_count'])
        .orderBy('blob_key')
        .execute();
      assert.deepEqual(
        copies.map((c) => [c.mode, c.checksum, c.blob_key, Number(c.ref_count)]),
        [
          ['live', 'sha256:same', 'aa/key-one-aaaa', 2],
          ['live', 'sha256:other', 'cc/key-three-cc', 1],
          ['test', 'sha256:same', 'dd/key-four-ddd', 1],
        ],
      );
    } finally {
      await db.destroy();
      await pg?.drop();
      folder.remove();
    }
  });
});
