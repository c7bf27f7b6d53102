import { isDeepStrictEqual } from 'node:util';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { SignatureError, UrlSigner } from '../src/auth/url-signer.js';
import { createBlobKey } from '../src/blob/index.js';
import {
  createTestApp,
  blobFootprint,
  listen,
  type TestApp,
  waitFor,
  forEachDialect,
  s3Server,
  assertConsistent,
} from './helpers.js';

forEachDialect(() => {
  /** The internal id of an asset's global id. */
  const decodeId = (id: string) => Buffer.from(id, 'base64url').toString().split(':')[1];

  const sha = (text: string | Buffer) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

  describe('signed URLs', () => {
    let now = Date.parse('2026-03-01T12:00:00Z');
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    const local = (url: string) => server.url + new URL(url).pathname;

    before(async () => {
      app = await createTestApp(
        {
          MAX_FILE_SIZE: '1000',
          UPLOAD_URL_TTL: '10m',
          UPLOAD_SWEEP_GRACE: '1h',
          SWEEP_INTERVAL: '0',
          DOWNLOAD_URL_MAX_TTL: '1d',
        },
        { clock: () => now },
      );
      server = await listen(app.handler);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    async function uploadUrl(input: Record<string, unknown> = {}) {
      const result = await app.gql(
        'mutation($input: CreateUploadUrlInput!) { createUploadUrl(input: $input) { uploadUrl expiresAt asset { id status size } } }',
        { input: { filename: 'notes.txt', ...input } },
      );
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      return result.data.createUploadUrl;
    }

    const put = (url: string, body: string | Buffer) =>
      fetch(local(url), { method: 'PUT', body: typeof body === 'string' ? body : new Uint8Array(body) });

    async function storedAsset(id: string) {
      return (
        await app.gql('query($id: ID!) { asset(id: $id) { status size checksum mimeType type downloadCount } }', { id })
      ).data.asset;
    }

    async function downloadUrl(id: string, extra: Record<string, unknown> = {}) {
      const result = await app.gql(
        'mutation($input: CreateDownloadUrlInput!) { createDownloadUrl(input: $input) { url expiresAt remainingFetches } }',
        { input: { id, ...extra } },
      );
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      return result.data.createDownloadUrl;
    }

    async function readyAsset(body = 'hello signed world') {
      const { uploadUrl: url, asset } = await uploadUrl();
      assert.equal((await put(url, body)).status, 200);
      return asset.id as string;
    }

    test('two-step upload: WAITING, then PUT the bytes, then READY; a second PUT is 409', async () => {
      const body = 'plain text body';
      const {
        uploadUrl: url,
        expiresAt,
        asset,
      } = await uploadUrl({ size: body.length, checksum: sha(body), title: 'Two step' });
      assert.equal(asset.status, 'WAITING');
      assert.equal(asset.size, null);
      assert.equal(expiresAt, new Date(now + 600_000).toISOString());
      assert.match(url, /^http:\/\/assets\.test\/up\//);
      const response = await put(url, body);
      assert.equal(response.status, 200);
      const json = (await response.json()) as any;
      assert.equal(json.id, asset.id);
      assert.equal(json.status, 'PROCESSING');
      await app.jobs?.idle();
      const stored = await storedAsset(asset.id);
      assert.deepEqual(stored, {
        status: 'READY',
        size: body.length,
        checksum: sha(body),
        mimeType: 'text/plain',
        type: 'DOCUMENT',
        downloadCount: 0,
      });
      const again = await put(url, body);
      assert.equal(again.status, 409);
      assert.equal(((await again.json()) as any).error.code, 'CONFLICT');
    });

    test('a declared size or checksum that does not match stores nothing; the URL can be retried', async () => {
      const blobsBefore = await blobFootprint(app);
      const { uploadUrl: url, asset } = await uploadUrl({ size: 5, checksum: sha('12345') });
      const wrongSize = await put(url, '1234');
      assert.equal(wrongSize.status, 400);
      assert.equal(((await wrongSize.json()) as any).error.field, 'size');
      const wrongSum = await put(url, '12346');
      assert.equal(wrongSum.status, 400);
      assert.equal(((await wrongSum.json()) as any).error.field, 'checksum');
      assert.deepEqual(await blobFootprint(app), blobsBefore);
      assert.equal((await storedAsset(asset.id)).status, 'WAITING');
      assert.equal((await put(url, '12345')).status, 200);
      // The footprint sees what this store keeps: "nothing changed" above was not blindness.
      assert.equal((await blobFootprint(app)).keys.length, blobsBefore.keys.length + 1);
    });

    test('the max file size applies: declared too large, or sent too large', async () => {
      const declared = await app.gql(
        'mutation { createUploadUrl(input: { filename: "x", size: 1001 }) { uploadUrl } }',
      );
      assert.equal(declared.errors?.[0].extensions.code, 'PAYLOAD_TOO_LARGE');
      const blobsBefore = await blobFootprint(app);
      const { uploadUrl: url } = await uploadUrl();
      const sent = await put(url, Buffer.alloc(1001));
      assert.equal(sent.status, 413);
      assert.deepEqual(await blobFootprint(app), blobsBefore);
    });

    test('expired or tampered upload URLs are 403', async () => {
      const { uploadUrl: url } = await uploadUrl();
      const token = new URL(url).pathname.split('/')[2];
      const [v, kid, claims, sig] = token.split('.');
      const flipped = `${sig.slice(0, -2)}${sig.at(-2) === 'A' ? 'B' : 'A'}${sig.at(-1)}`;
      for (const bad of [
        `${v}.${kid}.${claims}.${flipped}`,
        `${v}.${kid}.${claims}`,
        'garbage',
        `${v}.ffffffff.${claims}.${sig}`,
      ]) {
        assert.equal((await fetch(`${server.url}/up/${bad}`, { method: 'PUT', body: 'x' })).status, 403, bad);
      }
      now += 11 * 60_000;
      assert.equal((await put(url, 'late')).status, 403);
      assert.equal((await fetch(local(url), { method: 'POST', body: 'x' })).status, 405);
    });

    test('a PUT that disconnects midway leaves nothing, and the upload can be retried', async () => {
      const blobsBefore = await blobFootprint(app);
      const { uploadUrl: url, asset } = await uploadUrl();
      await new Promise<void>((resolve) => {
        const req = request(local(url), { method: 'PUT', headers: { 'content-length': '900' } });
        req.on('error', () => resolve());
        req.write(Buffer.alloc(300, 1));
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 150);
      });
      // The clean-up of the cut PUT lands after the abort (the files go, the asset waits again): wait for it, not for a while.
      const after = await waitFor(
        async () => ({ files: await blobFootprint(app), status: (await storedAsset(asset.id)).status }),
        (now) => now.status === 'WAITING' && isDeepStrictEqual(now.files, blobsBefore),
      );
      assert.deepEqual(after.files, blobsBefore, 'no blob and no temporary file');
      assert.equal(after.status, 'WAITING');
      assert.equal((await put(url, 'second try')).status, 200);
    });

    test('never-used upload URLs expire and the sweep removes their assets after the grace period', async () => {
      const { asset } = await uploadUrl();
      now += 11 * 60_000; // expired, inside the grace period
      assert.equal((await app.sweeper.sweep()).abandonedUploads, 0);
      assert.equal((await storedAsset(asset.id)).status, 'WAITING');
      now += 60 * 60_000; // past the grace period
      assert.ok((await app.sweeper.sweep()).abandonedUploads >= 1);
      const gone = await app.gql('query($id: ID!) { asset(id: $id) { id } }', { id: asset.id });
      assert.equal(gone.errors?.[0].extensions.code, 'NOT_FOUND');
    });

    test('download URLs serve without a key until they expire; expiry is capped', async () => {
      const id = await readyAsset('downloadable');
      const { url, expiresAt, remainingFetches } = await downloadUrl(id, { expiresIn: 60 });
      assert.equal(expiresAt, new Date(Math.floor(now / 1000) * 1000 + 60_000).toISOString());
      assert.equal(remainingFetches, null);
      assert.match(url, /\/dl\/[^/]+\/notes\.txt$/);
      const response = await fetch(local(url));
      assert.equal(response.status, 200);
      assert.equal(await response.text(), 'downloadable');
      assert.match(response.headers.get('content-disposition')!, /filename\*=UTF-8''notes\.txt/);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      // Counted once the last byte has gone out, a moment after the client has it.
      assert.equal(
        (
          await waitFor(
            () => storedAsset(id),
            (a) => a.downloadCount > 0,
          )
        ).downloadCount,
        1,
      );

      const capped = await downloadUrl(id, { expiresIn: 10 * 86400 });
      assert.equal(capped.expiresAt, new Date(Math.floor(now / 1000) * 1000 + 86400_000).toISOString());

      now += 61_000;
      const expired = await fetch(local(url));
      assert.equal(expired.status, 403);
      assert.doesNotMatch(await expired.text(), /downloadable/);
    });

    test('every part of a token is covered by the signature', async () => {
      const id = await readyAsset('tamper target');
      const { url } = await downloadUrl(id, { maxFetches: 5 });
      const token = new URL(url).pathname.split('/')[2];
      const [v, kid, payload, sig] = token.split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
      const variants: string[] = [];
      for (let i = 0; i < claims.length; i++) {
        const changed = [...claims];
        changed[i] = typeof changed[i] === 'number' ? changed[i] + 1 : changed[i] === null ? 1 : `${changed[i]}x`;
        variants.push(`${v}.${kid}.${Buffer.from(JSON.stringify(changed)).toString('base64url')}.${sig}`);
      }
      variants.push(
        `v2.${kid}.${payload}.${sig}`,
        `${v}.${kid}x.${payload}.${sig}`,
        `${v}.${kid}.${payload}.${sig}x`,
        `${v}.${kid}.${payload}.`,
      );
      for (const bad of variants) {
        const response = await fetch(`${server.url}/dl/${bad}/f`);
        assert.equal(response.status, 403, bad);
        assert.doesNotMatch(await response.text(), /tamper target/);
      }
      assert.equal((await fetch(local(url))).status, 200, 'the genuine token still works');
    });

    test('fetch limits: replays past the limit are 404, HEAD and 304 do not count', async () => {
      const id = await readyAsset('counted');
      const { url, remainingFetches } = await downloadUrl(id, { maxFetches: 2 });
      assert.equal(remainingFetches, 2);
      assert.equal((await fetch(local(url), { method: 'HEAD' })).status, 200);
      const first = await fetch(local(url));
      assert.equal(first.headers.get('x-remaining-fetches'), '1');
      const etag = first.headers.get('etag')!;
      await first.arrayBuffer();
      assert.equal((await fetch(local(url), { headers: { 'if-none-match': etag } })).status, 304);
      assert.equal(await (await fetch(local(url))).text(), 'counted');
      const replay = await fetch(local(url));
      assert.equal(replay.status, 404);
      assert.doesNotMatch(await replay.text(), /counted/);
    });

    test('with maxFetches 3 and 20 parallel GETs, exactly 3 get bytes', async () => {
      const id = await readyAsset('raced bytes');
      const { url } = await downloadUrl(id, { maxFetches: 3 });
      const responses = await Promise.all(Array.from({ length: 20 }, () => fetch(local(url))));
      const bodies = await Promise.all(responses.map((r) => r.text()));
      assert.equal(responses.filter((r) => r.status === 200).length, 3);
      assert.equal(responses.filter((r) => r.status === 404).length, 17);
      assert.equal(bodies.filter((b) => b === 'raced bytes').length, 3);
    });

    test('deleting an asset or making it private kills its URLs at once', async () => {
      const deleted = await readyAsset('to delete');
      const { url: deadUrl } = await downloadUrl(deleted);
      await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', { id: deleted });
      assert.equal((await fetch(local(deadUrl))).status, 404);

      const shared = await readyAsset('to hide');
      await app.gql('mutation($id: ID!) { updateAsset(input: { id: $id, isPublic: true }) { asset { id } } }', {
        id: shared,
      });
      const { url } = await downloadUrl(shared);
      await app.gql('mutation($id: ID!) { updateAsset(input: { id: $id, title: "renamed" }) { asset { id } } }', {
        id: shared,
      });
      assert.equal((await fetch(local(url))).status, 200, 'other changes keep URLs alive');
      await app.gql('mutation($id: ID!) { updateAsset(input: { id: $id, isPublic: false }) { asset { id } } }', {
        id: shared,
      });
      assert.equal((await fetch(local(url))).status, 404);
      const fresh = await downloadUrl(shared);
      assert.equal((await fetch(local(fresh.url))).status, 200, 'new URLs work again');
    });

    test('range requests through a signed URL', async () => {
      const id = await readyAsset('0123456789');
      const { url } = await downloadUrl(id);
      const cases: [string, number, string][] = [
        ['bytes=0-0', 206, '0'],
        ['bytes=-1', 206, '9'],
        ['bytes=7-', 206, '789'],
        ['bytes=5-999999', 206, '56789'],
        ['bytes=0-1,4-5', 200, '0123456789'],
        ['bytes=abc', 200, '0123456789'],
        ['items=0-1', 200, '0123456789'],
      ];
      for (const [range, status, body] of cases) {
        const response = await fetch(local(url), { headers: { range } });
        assert.equal(response.status, status, range);
        assert.equal(await response.text(), body, range);
      }
      const unsatisfiable = await fetch(local(url), { headers: { range: 'bytes=10-' } });
      assert.equal(unsatisfiable.status, 416);
      const staleIfRange = await fetch(local(url), { headers: { range: 'bytes=0-1', 'if-range': '"other"' } });
      assert.equal(staleIfRange.status, 200);
      assert.equal(await staleIfRange.text(), '0123456789');
    });

    test('download URLs need bytes; other orgs cannot make them', async () => {
      const link = await app.gql(
        'mutation { createAsset(input: { title: "l", type: LINK, externalUrl: "https://e.com" }) { asset { id } } }',
      );
      const result = await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', {
        id: link.data.createAsset.asset.id,
      });
      assert.equal(result.errors?.[0].extensions.code, 'BAD_USER_INPUT');
      const bad = await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id, maxFetches: 0 }) { url } }', {
        id: link.data.createAsset.asset.id,
      });
      assert.equal(bad.errors?.[0].extensions.code, 'BAD_USER_INPUT');
    });
  });

  describe('S3_DIRECT=download: download URLs straight from the bucket', () => {
    test('an unlimited URL is a presigned GET of the store; a counted one stays with the gateway', async () => {
      const s3 = await s3Server();
      const app = await createTestApp({ ...s3.env(), S3_DIRECT: 'download' });
      const server = await listen(app.handler);
      try {
        const created = (
          await app.gql('mutation { createUploadUrl(input: { filename: "straight.txt" }) { asset { id } uploadUrl } }')
        ).data.createUploadUrl;
        const put = await fetch(server.url + new URL(created.uploadUrl).pathname, {
          method: 'PUT',
          body: 'from the bucket',
        });
        assert.equal(put.status, 200);
        const url = async (extra: string) =>
          (
            await app.gql(
              `mutation($id: ID!) { createDownloadUrl(input: { id: $id ${extra} }) { url remainingFetches } }`,
              {
                id: created.asset.id,
              },
            )
          ).data.createDownloadUrl;
        const direct = await url('');
        assert.ok(direct.url.startsWith(`${s3.endpoint}/`), direct.url);
        const response = await fetch(direct.url);
        assert.equal(response.status, 200);
        assert.equal(await response.text(), 'from the bucket');
        assert.match(response.headers.get('content-disposition') ?? '', /filename\*=UTF-8''straight\.txt/);
        const counted = await url(', maxFetches: 1');
        assert.ok(counted.url.startsWith('http://assets.test/dl/'), counted.url);
        assert.equal(counted.remainingFetches, 1);
      } finally {
        await server.close();
        await app.dispose();
      }
    });
  });

  describe('S3_DIRECT=upload: upload URLs straight into the bucket', () => {
    test('the bytes go to the bucket; the gateway checks them there and records the asset', async () => {
      const s3 = await s3Server();
      const app = await createTestApp({ ...s3.env(), S3_DIRECT: 'upload', MAX_FILE_SIZE: '20' });
      const server = await listen(app.handler);
      try {
        const create = async (size: number) =>
          (
            await app.gql(
              'mutation($size: Float) { createUploadUrl(input: { filename: "d.txt", size: $size }) { asset { id } uploadUrl } }',
              {
                size,
              },
            )
          ).data.createUploadUrl;
        const read = async (id: string) =>
          (await app.gql('query($id: ID!) { asset(id: $id) { status size checksum mimeType failureReason } }', { id }))
            .data.asset;
        /** The asset once `done` holds (the job looks for the bytes every second). */
        const until = (id: string, done: (a: any) => boolean) => waitFor(() => read(id), done);

        const good = await create(15);
        assert.ok(good.uploadUrl.startsWith(`${s3.endpoint}/`), good.uploadUrl);
        assert.equal((await fetch(good.uploadUrl, { method: 'PUT', body: 'straight to S3!' })).status, 200);
        // PROCESSING comes first, while the job reads the bytes in the bucket; their size once it has.
        const recorded = (a: any) => a.status !== 'WAITING' && a.size !== null;
        const asset = await until(good.asset.id, recorded);
        assert.notEqual(asset.status, 'WAITING', 'the job found the bytes');
        assert.equal(asset.size, 15);
        assert.equal(asset.checksum, `sha256:${createHash('sha256').update('straight to S3!').digest('hex')}`);
        assert.equal(asset.mimeType, 'text/plain');
        const download = await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', {
          id: good.asset.id,
        });
        const path = new URL(download.data.createDownloadUrl.url).pathname;
        assert.equal(await (await fetch(server.url + path)).text(), 'straight to S3!');

        // Bytes that contradict the declared size are deleted; the same URL may be tried again.
        const wrong = await create(3);
        await fetch(wrong.uploadUrl, { method: 'PUT', body: 'ten bytes!' });
        const refused = await until(wrong.asset.id, (a) => a.failureReason);
        assert.equal(refused.status, 'WAITING');
        assert.match(refused.failureReason, /Declared size 3/);
        assert.equal(await app.blobs.head(createBlobKey(decodeId(wrong.asset.id))), null, 'the refused bytes are gone');
        await fetch(wrong.uploadUrl, { method: 'PUT', body: 'abc' });
        const retried = await until(wrong.asset.id, recorded);
        assert.equal(retried.size, 3);

        // Over MAX_FILE_SIZE (no size declared): the limit trips before every byte is read;
        // the bytes go all the same.
        const big = (
          await app.gql('mutation { createUploadUrl(input: { filename: "big.txt" }) { asset { id } uploadUrl } }')
        ).data.createUploadUrl;
        await fetch(big.uploadUrl, { method: 'PUT', body: 'x'.repeat(64) });
        const tooBig = await until(big.asset.id, (a) => a.failureReason);
        assert.equal(tooBig.status, 'WAITING');
        assert.match(tooBig.failureReason, /exceeds the limit of 20 bytes/);
        assert.equal(await app.blobs.head(createBlobKey(decodeId(big.asset.id))), null, 'the oversize bytes are gone');
        await assertConsistent(app);
      } finally {
        await server.close();
        await app.dispose();
      }
    });
  });

  describe('the sweep and uploads under way', () => {
    test('an upload still arriving past its expiry and grace is kept; one whose gateway died is swept', async () => {
      let now = Date.parse('2026-03-01T12:00:00Z');
      const app = await createTestApp(
        { UPLOAD_URL_TTL: '1m', UPLOAD_SWEEP_GRACE: '1s', SWEEP_INTERVAL: '0' },
        { clock: () => now },
      );
      const server = await listen(app.handler);
      try {
        const create = async () =>
          (await app.gql('mutation { createUploadUrl(input: { filename: "slow.txt" }) { uploadUrl asset { id } } }'))
            .data.createUploadUrl;
        const slow = await create();
        const crashed = await create();
        // A gateway that died mid-upload: the asset was claimed, and nothing beats for it any more.
        const [row] = await app.db
          .selectFrom('assets')
          .selectAll()
          .where('id', '=', decodeId(crashed.asset.id))
          .execute();
        assert.ok(
          await app.repositories.assets.claimUploadAnyTenant(row.id, {
            version: row.url_version,
            now: new Date(now).toISOString(),
          }),
        );

        let finish!: () => void;
        const body = new ReadableStream<Uint8Array>({
          async start(controller) {
            controller.enqueue(new TextEncoder().encode('first half, '));
            await new Promise<void>((resolve) => (finish = resolve));
            controller.enqueue(new TextEncoder().encode('second half'));
            controller.close();
          },
        });
        const put = fetch(server.url + new URL(slow.uploadUrl).pathname, {
          method: 'PUT',
          body,
          duplex: 'half',
        } as RequestInit);
        const slowRow = () =>
          app.db.selectFrom('assets').selectAll().where('id', '=', decodeId(slow.asset.id)).executeTakeFirstOrThrow();
        await waitFor(slowRow, (asset) => asset.status === 'PROCESSING');
        now += 60_000 + 10_000; // past the URL's expiry and the grace, the bytes still arriving
        // The upload's heartbeat has beaten since the clock moved: what keeps the sweep away.
        await waitFor(slowRow, (asset) => new Date(asset.updated_at).getTime() >= now);
        assert.equal((await app.sweeper.sweep()).abandonedUploads, 1, 'only the dead upload is swept');
        finish();
        const response = await put;
        assert.equal(response.status, 200);
        assert.equal(((await response.json()) as any).size, 23);
        const kept = await app.gql('query($id: ID!) { asset(id: $id) { size } }', { id: slow.asset.id });
        assert.equal(kept.data.asset.size, 23);
        const gone = await app.gql('query($id: ID!) { asset(id: $id) { id } }', { id: crashed.asset.id });
        assert.equal(gone.errors?.[0].extensions.code, 'NOT_FOUND');
      } finally {
        await server.close();
        await app.dispose();
      }
    });
  });

  describe('per-asset limit on download URLs', () => {
    test('once an asset has handed out its maximum it is NOT_FOUND everywhere; handed-out URLs still work', async () => {
      const app = await createTestApp({ MAX_DOWNLOAD_URLS_PER_ASSET: '2' });
      const server = await listen(app.handler);
      try {
        const { Readable } = await import('node:stream');
        const row = await app.services.assets.upload(
          { orgId: 'acme', mode: 'live' },
          { stream: Readable.from([Buffer.from('rare')]), filename: 'r.txt' },
        );
        const id = Buffer.from(`Asset:${row.id}`).toString('base64url');
        const mint = () => app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', { id });
        const first = (await mint()).data.createDownloadUrl.url;
        assert.equal((await app.gql('query($id: ID!) { asset(id: $id) { id } }', { id })).errors, undefined);
        const second = (await mint()).data.createDownloadUrl.url;
        assert.equal((await mint()).errors?.[0].extensions.code, 'NOT_FOUND');
        assert.equal(
          (await app.gql('query($id: ID!) { asset(id: $id) { id } }', { id })).errors?.[0].extensions.code,
          'NOT_FOUND',
        );
        assert.equal((await app.gql('{ assets { totalCount } }')).data.assets.totalCount, 0);
        assert.equal((await fetch(`${server.url}/download/${id}`, { headers: app.authHeaders })).status, 404);
        for (const url of [first, second]) {
          assert.equal(await (await fetch(server.url + new URL(url).pathname)).text(), 'rare');
        }
      } finally {
        await server.close();
        await app.dispose();
      }
    });
  });

  describe('UrlSigner key rotation', () => {
    const claims = { method: 'GET' as const, assetId: 'a', version: 0, expires: 2_000_000_000, keyId: 'k' };
    const old = 'o'.repeat(32);
    const fresh = 'n'.repeat(32);

    test('tokens of the previous secret verify during the grace period, then stop', () => {
      const token = new UrlSigner({ secret: old }).sign(claims);
      let now = Date.parse('2026-01-01T00:00:00Z');
      const rotated = new UrlSigner({
        secret: fresh,
        previous: old,
        previousUntil: new Date('2026-01-02T00:00:00Z'),
        clock: () => now,
      });
      assert.equal(rotated.verify(token, 'GET').assetId, 'a');
      assert.ok(rotated.sign(claims).split('.')[1] !== token.split('.')[1], 'new tokens carry the new key id');
      now = Date.parse('2026-01-03T00:00:00Z');
      assert.throws(
        () => rotated.verify(token, 'GET'),
        (e: unknown) => e instanceof SignatureError && e.reason === 'unknown-key',
      );
      assert.throws(() => new UrlSigner({ secret: fresh }).verify(token, 'GET'), SignatureError);
    });

    test('a token for one method does not work for the other', () => {
      const signer = new UrlSigner({ secret: old });
      assert.throws(
        () => signer.verify(signer.sign(claims), 'PUT'),
        (e: unknown) => e instanceof SignatureError && e.reason === 'wrong-method',
      );
    });
  });
});
