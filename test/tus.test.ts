import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Upload as TusUpload } from 'tus-js-client';
import { createClient } from '../src/client/index.js';
import { ServiceUnavailableError } from '../src/errors.js';
import {
  assertConsistent,
  createTestApp,
  forEachDialect,
  forEachSetup,
  freePort,
  listen,
  png,
  processed,
  startServer,
  storedKeys,
  tempDir,
  type TestApp,
  waitFor,
} from './helpers.js';

const TUS = { 'tus-resumable': '1.0.0' };
const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const metadata = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');

/** A file whose type is sniffed as PNG, padded to `size` bytes. */
function pngOf(size: number): Buffer {
  const head = png(4, 3);
  return Buffer.concat([head, randomBytes(size - head.length)]);
}

/** tus-js-client against `endpoint` (or resuming `uploadUrl`), resolved with its upload URL once done. */
function tusUpload(
  file: Buffer,
  options: { endpoint?: string; uploadUrl?: string; headers?: Record<string, string>; chunkSize?: number },
  hooks: { onChunk?: (upload: TusUpload, accepted: number) => void } = {},
): { upload: TusUpload; done: Promise<string> } {
  let upload!: TusUpload;
  const done = new Promise<string>((resolve, reject) => {
    upload = new TusUpload(file, {
      endpoint: options.endpoint,
      uploadUrl: options.uploadUrl,
      headers: options.headers,
      chunkSize: options.chunkSize ?? 64 * 1024,
      retryDelays: [],
      metadata: { filename: 'photo.png', title: 'A resumed photo', tags: 'tus,resumed' },
      onChunkComplete: (_size, accepted) => hooks.onChunk?.(upload, accepted),
      onSuccess: () => resolve(upload.url!),
      onError: reject,
    });
    upload.start();
  });
  return { upload, done };
}

forEachDialect(() => {
  describe('resumable uploads (tus 1.0.0)', () => {
    let now = Date.now();
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    let auth: Record<string, string>;
    /** The server's own URL for a URL it handed out (PUBLIC_URL is not where it listens). */
    const local = (url: string) => server.url + new URL(url).pathname;

    before(async () => {
      // PUBLIC_URL is where the server listens: tus-js-client follows the Location it is given.
      const port = await freePort();
      app = await createTestApp(
        {
          PUBLIC_URL: `http://127.0.0.1:${port}`,
          MAX_FILE_SIZE: '2000000',
          UPLOAD_URL_TTL: '10m',
          UPLOAD_SWEEP_GRACE: '1m',
          SWEEP_INTERVAL: '0',
          ORG_STORAGE_QUOTA: '10000000',
          ALLOWED_MEDIA_TYPES: 'image/*,text/plain,application/octet-stream',
        },
        { clock: () => now },
      );
      server = await listen(app.handler, undefined, port);
      auth = app.authHeaders;
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    const tus = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
      fetch(`${server.url}${path}`, { ...init, headers: { ...TUS, ...auth, ...init.headers } });

    async function create(length: number, fields: Record<string, string> = { filename: 'photo.png' }) {
      const response = await tus('/tus/', {
        method: 'POST',
        headers: { 'upload-length': String(length), 'upload-metadata': metadata(fields) },
      });
      assert.equal(response.status, 201, await response.clone().text());
      return response;
    }

    const patch = (location: string, offset: number, body: Buffer, headers: Record<string, string> = {}) =>
      fetch(local(location), {
        method: 'PATCH',
        headers: {
          ...TUS,
          ...auth,
          'content-type': 'application/offset+octet-stream',
          'upload-offset': String(offset),
          ...headers,
        },
        body: new Uint8Array(body),
      });

    const head = (location: string, headers: Record<string, string> = auth) =>
      fetch(local(location), { method: 'HEAD', headers: { ...TUS, ...headers } });

    const idOf = (location: string) => new URL(location).pathname.split('/').pop()!;
    const globalId = (location: string) => Buffer.from(`Asset:${idOf(location)}`).toString('base64url');
    const usage = () => app.repositories.orgs.usage('acme');
    const partCount = async () => (await app.db.selectFrom('upload_parts').select('blob_key').execute()).length;

    test('OPTIONS tells the version, the extensions, the largest upload and the checksum algorithms', async () => {
      const response = await fetch(`${server.url}/tus/`, { method: 'OPTIONS' });
      assert.equal(response.status, 204);
      assert.equal(response.headers.get('tus-version'), '1.0.0');
      assert.deepEqual(response.headers.get('tus-extension')!.split(','), [
        'creation',
        'creation-with-upload',
        'termination',
        'expiration',
        'checksum',
      ]);
      assert.equal(response.headers.get('tus-max-size'), '2000000');
      assert.ok(response.headers.get('tus-checksum-algorithm')!.split(',').includes('sha256'));
    });

    test('POST, PATCH, HEAD, PATCH: the upload becomes an asset like any other, and nothing of it is left over', async () => {
      const file = pngOf(300_000);
      const before = await usage();
      const created = await create(file.length, {
        filename: 'photo.png',
        title: 'Beach',
        tags: 'a,b',
        isPublic: 'true',
      });
      const location = created.headers.get('location')!;
      assert.equal(location, `${server.url}/tus/${idOf(location)}`);
      assert.match(idOf(location), /^[0-9a-f-]{36}$/);
      assert.ok(Date.parse(created.headers.get('upload-expires')!) > now, 'Upload-Expires is sent');

      const first = await patch(location, 0, file.subarray(0, 100_000));
      assert.equal(first.status, 204);
      assert.equal(first.headers.get('upload-offset'), '100000');
      const probe = await head(location);
      assert.equal(probe.status, 200);
      assert.equal(probe.headers.get('upload-offset'), '100000');
      assert.equal(probe.headers.get('upload-length'), '300000');
      assert.equal(probe.headers.get('cache-control'), 'no-store');

      const waiting = await app.gql(
        'query($id: ID!) { asset(id: $id) { status receivedBytes size title tags isPublic } }',
        {
          id: globalId(location),
        },
      );
      assert.deepEqual(waiting.data.asset, {
        status: 'WAITING',
        receivedBytes: 100_000,
        size: null,
        title: 'Beach',
        tags: ['a', 'b'],
        isPublic: true,
      });
      assert.ok((await usage()).reserved - before.reserved >= 100_000, 'the arrived bytes are reserved');

      const last = await patch(location, 100_000, file.subarray(100_000));
      assert.equal(last.status, 204);
      assert.equal(last.headers.get('upload-offset'), '300000');
      assert.equal(last.headers.get('asset-id'), globalId(location));
      const asset = await processed(app, globalId(location), 'status mimeType type size checksum receivedBytes width');
      assert.deepEqual(asset, {
        status: 'READY',
        mimeType: 'image/png',
        type: 'IMAGE',
        size: 300_000,
        checksum: sha256(file),
        receivedBytes: 300_000,
        width: 4,
      });
      const download = await fetch(`${server.url}/download/${globalId(location)}`);
      assert.deepEqual(Buffer.from(await download.arrayBuffer()), file);
      assert.equal(await partCount(), 0, 'the parts went once the blob was made');
      const after = await usage();
      assert.equal(after.reserved, before.reserved, 'the reservation became stored bytes');
      assert.equal(after.used - before.used, 300_000);
      await assertConsistent(app);
    });

    test('tus-js-client uploads, is stopped part-way, and resumes from the offset the server tells', async () => {
      const file = pngOf(1_000_000);
      let stoppedAt = 0;
      const first = tusUpload(
        file,
        { endpoint: `${server.url}/tus/`, headers: auth },
        {
          onChunk: (upload, accepted) => {
            if (accepted >= 300_000 && !stoppedAt) {
              stoppedAt = accepted;
              void upload.abort();
            }
          },
        },
      );
      const url = await waitFor(
        async () => (first.upload.url && stoppedAt ? first.upload.url : null),
        (value) => value !== null,
      );
      const offset = Number((await head(url!)).headers.get('upload-offset'));
      assert.ok(offset >= 300_000 && offset < file.length, `stopped at ${offset}`);
      assert.equal(
        (await app.gql('query($id: ID!) { asset(id: $id) { receivedBytes } }', { id: globalId(url!) })).data.asset
          .receivedBytes,
        offset,
      );

      let resumedFrom = -1;
      const second = tusUpload(
        file,
        { uploadUrl: local(url!), headers: auth },
        {
          onChunk: (_upload, accepted) => {
            if (resumedFrom < 0) resumedFrom = accepted;
          },
        },
      );
      await second.done;
      assert.ok(resumedFrom > offset, 'the resumed upload did not start again from byte 0');
      const asset = await processed(app, globalId(url!), 'status checksum size title tags');
      assert.deepEqual(asset, {
        status: 'READY',
        checksum: sha256(file),
        size: file.length,
        title: 'A resumed photo',
        tags: ['resumed', 'tus'],
      });
      await assertConsistent(app);
    });

    test('a signed upload URL with a declared size resumes with tus HEAD and PATCH, without a key', async () => {
      const file = pngOf(500_000);
      const made = await app.gql(
        'mutation($input: CreateUploadUrlInput!) { createUploadUrl(input: $input) { uploadUrl asset { id } } }',
        { input: { filename: 'signed.png', size: file.length, checksum: sha256(file) } },
      );
      const uploadUrl = local(made.data.createUploadUrl.uploadUrl);
      let stopped = false;
      const first = tusUpload(
        file,
        { uploadUrl },
        {
          onChunk: (upload, accepted) => {
            if (accepted >= 200_000 && !stopped) {
              stopped = true;
              void upload.abort();
            }
          },
        },
      );
      await waitFor(async () => stopped, Boolean);
      const probe = await fetch(uploadUrl, { method: 'HEAD', headers: TUS });
      const offset = Number(probe.headers.get('upload-offset'));
      assert.ok(offset >= 200_000 && offset < file.length, `stopped at ${offset}`);
      assert.equal(probe.headers.get('upload-length'), String(file.length));
      void first;

      // A plain PUT no longer fits an upload under way in parts.
      const put = await fetch(uploadUrl, { method: 'PUT', body: new Uint8Array(file) });
      assert.equal(put.status, 409);
      assert.equal(((await put.json()) as any).error.code, 'CONFLICT');

      await tusUpload(file, { uploadUrl }).done;
      const asset = await processed(app, made.data.createUploadUrl.asset.id, 'status checksum size');
      assert.deepEqual(asset, { status: 'READY', checksum: sha256(file), size: file.length });
      const again = await fetch(uploadUrl, { method: 'HEAD', headers: TUS });
      assert.equal(again.status, 409, 'the URL is used up');
      await assertConsistent(app);
    });

    test('a signed upload URL without a declared size cannot be resumed', async () => {
      const made = await app.gql('mutation { createUploadUrl(input: { filename: "a.txt" }) { uploadUrl } }');
      const response = await fetch(local(made.data.createUploadUrl.uploadUrl), { method: 'HEAD', headers: TUS });
      assert.equal(response.status, 400);
    });

    test('protocol errors: wrong offset 409, checksum mismatch 460, no or wrong Tus-Resumable 412; each changes nothing', async () => {
      const file = Buffer.from('hello, resumable world\n'.repeat(100));
      const location = (await create(file.length, { filename: 'notes.txt' })).headers.get('location')!;
      assert.equal((await patch(location, 0, file.subarray(0, 1000))).status, 204);

      const wrong = await patch(location, 500, file.subarray(500, 1000));
      assert.equal(wrong.status, 409);
      assert.equal((await head(location)).headers.get('upload-offset'), '1000');

      const chunk = file.subarray(1000, 1500);
      const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('base64');
      const keysBefore = (await storedKeys(app)).length;
      const mismatch = await patch(location, 1000, chunk, {
        'upload-checksum': `sha256 ${digest(Buffer.from('other'))}`,
      });
      assert.equal(mismatch.status, 460);
      assert.equal((await head(location)).headers.get('upload-offset'), '1000', 'the chunk was discarded');
      assert.equal((await storedKeys(app)).length, keysBefore, 'and left no part behind');
      const bad = await patch(location, 1000, chunk, { 'upload-checksum': 'crc99 abc' });
      assert.equal(bad.status, 400);
      const good = await patch(location, 1000, chunk, { 'upload-checksum': `sha256 ${digest(chunk)}` });
      assert.equal(good.status, 204);
      assert.equal(good.headers.get('upload-offset'), '1500');

      for (const version of [undefined, '0.2.2']) {
        const response = await fetch(local(location), {
          method: 'PATCH',
          headers: {
            ...auth,
            ...(version && { 'tus-resumable': version }),
            'content-type': 'application/offset+octet-stream',
            'upload-offset': '1500',
          },
          body: new Uint8Array(file.subarray(1500)),
        });
        assert.equal(response.status, 412);
        assert.equal(response.headers.get('tus-version'), '1.0.0');
      }
      assert.equal((await head(location)).headers.get('upload-offset'), '1500');
      assert.equal((await patch(location, 1500, file.subarray(1500))).status, 204);
      const asset = await processed(app, globalId(location), 'status checksum mimeType');
      assert.deepEqual(asset, { status: 'READY', checksum: sha256(file), mimeType: 'text/plain' });
    });

    test('unknown 404, another org 404, no key 401, a key that may not write 403, too large 413, over the quota 507', async () => {
      const location = (await create(10)).headers.get('location')!;
      assert.equal((await head(location.replace(/[0-9a-f]{12}$/, '000000000000'))).status, 404);
      assert.equal((await head(location.replace(/[0-9a-f-]{36}$/, 'nonsense'))).status, 404);
      const other = await app.createKey('globex');
      assert.equal((await head(location, { authorization: `Bearer ${other}` })).status, 404);
      const otherPatch = await fetch(local(location), {
        method: 'PATCH',
        headers: {
          ...TUS,
          authorization: `Bearer ${other}`,
          'content-type': 'application/offset+octet-stream',
          'upload-offset': '0',
        },
        body: '0123456789',
      });
      assert.equal(otherPatch.status, 404);
      assert.equal((await head(location, {})).status, 401);
      const reader = await app.createKey('acme', ['read:assets']);
      const refused = await fetch(`${server.url}/tus/`, {
        method: 'POST',
        headers: {
          ...TUS,
          authorization: `Bearer ${reader}`,
          'upload-length': '10',
          'upload-metadata': metadata({ filename: 'a.txt' }),
        },
      });
      assert.equal(refused.status, 403);
      assert.equal(((await refused.json()) as any).error.code, 'FORBIDDEN');

      const tooLarge = await tus('/tus/', {
        method: 'POST',
        headers: { 'upload-length': '2000001', 'upload-metadata': metadata({ filename: 'big.bin' }) },
      });
      assert.equal(tooLarge.status, 413);

      const quota = await tus('/tus/', {
        method: 'POST',
        headers: { 'upload-length': '1999999', 'upload-metadata': metadata({ filename: 'a.bin' }) },
      });
      assert.equal(quota.status, 201, 'fits the quota');
      await app.db.updateTable('orgs').set({ used_bytes: 9_000_000 }).where('id', '=', 'acme').execute();
      try {
        const over = await tus('/tus/', {
          method: 'POST',
          headers: { 'upload-length': '1500000', 'upload-metadata': metadata({ filename: 'a.bin' }) },
        });
        assert.equal(over.status, 507);
        assert.equal(((await over.json()) as any).error.code, 'INSUFFICIENT_STORAGE');
      } finally {
        await app.repositories.orgs.resetUsed('acme');
      }
      const noName = await tus('/tus/', { method: 'POST', headers: { 'upload-length': '10' } });
      assert.equal(noName.status, 400);
      const deferred = await tus('/tus/', {
        method: 'POST',
        headers: { 'upload-defer-length': '1', 'upload-metadata': metadata({ filename: 'a.bin' }) },
      });
      assert.equal(deferred.status, 400);
    });

    test('a second PATCH while one is in flight is refused with 423, never interleaved', async () => {
      const location = (await create(200_000, { filename: 'slow.bin' })).headers.get('location')!;
      // A PATCH whose body arrives slowly: half now, the rest once the second PATCH was answered.
      const slow = request(local(location), {
        method: 'PATCH',
        headers: {
          ...TUS,
          ...auth,
          'content-type': 'application/offset+octet-stream',
          'upload-offset': '0',
          'content-length': '100000',
        },
      });
      const answered = new Promise<number>((resolve, reject) => {
        slow.on('response', (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        slow.on('error', reject);
      });
      slow.write(Buffer.alloc(50_000, 1));
      // Until the first PATCH holds the upload's lock; the server shows no sign of it but the 423 asserted next.
      await new Promise((r) => setTimeout(r, 200));
      const second = await patch(location, 0, Buffer.alloc(100_000, 2));
      assert.equal(second.status, 423);
      slow.end(Buffer.alloc(50_000, 1));
      assert.equal(await answered, 204);
      assert.equal((await head(location)).headers.get('upload-offset'), '100000');
      const parts = await app.db
        .selectFrom('upload_parts')
        .selectAll()
        .where('asset_id', '=', idOf(location))
        .execute();
      assert.equal(parts.length, 1);
      const bytes = await app.blobs.get(parts[0].blob_key);
      const chunks: Buffer[] = [];
      for await (const c of bytes!) chunks.push(c as Buffer);
      assert.ok(
        Buffer.concat(chunks).every((b) => b === 1),
        'only the first PATCH wrote',
      );
    });

    test('DELETE terminates: the asset, its parts and the quota they held go', async () => {
      const before = await usage();
      const keysBefore = await storedKeys(app);
      const location = (await create(100_000, { filename: 'gone.bin' })).headers.get('location')!;
      assert.equal((await patch(location, 0, randomBytes(60_000))).status, 204);
      assert.ok((await storedKeys(app)).length > keysBefore.length, 'a part was stored');
      assert.ok((await usage()).reserved > before.reserved);
      const deleted = await tus(new URL(location).pathname, { method: 'DELETE' });
      assert.equal(deleted.status, 204);
      assert.equal((await head(location)).status, 404);
      assert.equal(
        (await app.gql('query($id: ID!) { asset(id: $id) { id } }', { id: globalId(location) })).data.asset,
        null,
      );
      assert.deepEqual(await storedKeys(app), keysBefore);
      assert.deepEqual(await usage(), before);
      await assertConsistent(app);
    });

    test("a finished upload's URL does not end its asset: DELETE 404 (the asset stays, no trash), HEAD tells it is complete", async () => {
      const writer = { authorization: `Bearer ${await app.createKey('acme', ['read:assets', 'write:assets'])}` };
      const file = Buffer.from('finished, not to be ended\n');
      const location = (await create(file.length, { filename: 'kept.txt' })).headers.get('location')!;
      assert.equal((await patch(location, 0, file)).status, 204);
      for (const headers of [writer, auth]) {
        const ended = await tus(new URL(location).pathname, { method: 'DELETE', headers });
        assert.equal(ended.status, 404);
        assert.equal(((await ended.json()) as any).error.code, 'NOT_FOUND');
      }
      const probe = await head(location, writer);
      assert.equal(probe.status, 200);
      assert.equal(probe.headers.get('upload-offset'), String(file.length));
      const late = await patch(location, file.length, Buffer.alloc(0), writer);
      assert.equal(late.status, 409);
      // More bytes on a finished upload: still CONFLICT, not the size check's 413.
      for (const offset of [file.length, 0]) {
        const more = await patch(location, offset, Buffer.from('more'), writer);
        assert.equal(more.status, 409);
        assert.equal(((await more.json()) as any).error.code, 'CONFLICT');
      }
      const asset = await app.gql('query($id: ID!) { asset(id: $id) { id trashedAt } }', { id: globalId(location) });
      assert.deepEqual(asset.data.asset, { id: globalId(location), trashedAt: null });
      // Only deleteAsset removes it, with delete:assets, to the trash; its upload URL is then unknown.
      const refused = await app.gql(
        'mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }',
        { id: globalId(location) },
        writer,
      );
      assert.equal(refused.errors?.[0].extensions.code, 'FORBIDDEN');
      const deleted = await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', {
        id: globalId(location),
      });
      assert.equal(deleted.data.deleteAsset.deletedId, globalId(location));
      assert.equal((await head(location)).status, 404);
      assert.equal((await tus(new URL(location).pathname, { method: 'DELETE' })).status, 404);
      const trashed = await app.gql('query($id: ID!) { asset(id: $id) { id } }', { id: globalId(location) });
      assert.equal(trashed.data.asset, null);
      const restored = await app.gql('mutation($id: ID!) { restoreAsset(input: { id: $id }) { asset { id } } }', {
        id: globalId(location),
      });
      assert.equal(restored.data.restoreAsset.asset.id, globalId(location), 'it went to the trash, not for good');
      await assertConsistent(app);
    });

    test('an upload in progress is ended (204) by any key of its org that may write, not by another org or mode', async () => {
      const writer = { authorization: `Bearer ${await app.createKey('acme', ['write:assets'])}` };
      const others = [await app.createKey('globex'), await app.createKey('acme', undefined, 'test')];
      const location = (await create(100, { filename: 'ended.bin' })).headers.get('location')!;
      assert.equal((await patch(location, 0, randomBytes(40))).status, 204);
      for (const other of others) {
        const refused = await tus(new URL(location).pathname, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${other}` },
        });
        assert.equal(refused.status, 404);
        assert.equal(((await refused.json()) as any).error.code, 'NOT_FOUND');
      }
      assert.equal((await head(location)).status, 200);
      const ended = await tus(new URL(location).pathname, { method: 'DELETE', headers: writer });
      assert.equal(ended.status, 204);
      assert.equal((await head(location)).status, 404);
      await assertConsistent(app);
    });

    test('an upload nobody touches expires: 410, then the sweep removes its parts and gives back its quota', async () => {
      const location = (await create(100_000, { filename: 'idle.bin' })).headers.get('location')!;
      assert.equal((await patch(location, 0, randomBytes(40_000))).status, 204);
      now += 5 * 60_000;
      // Touched: the expiry slides.
      assert.equal((await patch(location, 40_000, randomBytes(10_000))).status, 204);
      now += 8 * 60_000;
      assert.equal((await head(location)).status, 200, 'still good: 8 minutes since it was last touched');
      now += 3 * 60_000;
      assert.equal((await head(location)).status, 410);
      assert.equal((await patch(location, 50_000, randomBytes(10))).status, 410);
      const parts = await app.db
        .selectFrom('upload_parts')
        .select('blob_key')
        .where('asset_id', '=', idOf(location))
        .execute();
      assert.equal(parts.length, 2);
      const held = (
        await app.db
          .selectFrom('assets')
          .select('upload_reserved')
          .where('id', '=', idOf(location))
          .executeTakeFirstOrThrow()
      ).upload_reserved;
      assert.ok(held >= 50_000, 'the parts hold quota');
      const reservedBefore = (await usage()).reserved;
      now += 2 * 60_000;
      assert.ok((await app.sweeper.sweep()).abandonedUploads >= 1);
      assert.equal((await head(location)).status, 404);
      const left = await storedKeys(app);
      assert.ok(
        parts.every((p) => !left.includes(p.blob_key)),
        'the parts are gone',
      );
      const reservedAfter = (await usage()).reserved;
      assert.ok(reservedBefore - reservedAfter >= held, 'and the quota they held');
      // Every other upload this suite left expired too: nothing stays reserved for them.
      const stillHeld = await app.db
        .selectFrom('assets')
        .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('upload_reserved'), eb.lit(0)).as('n'))
        .executeTakeFirstOrThrow();
      assert.equal(reservedAfter, Number(stillHeld.n));
      await assertConsistent(app);
    });

    test('a file refused at the end (its type) leaves the upload empty and waiting, with the reason', async () => {
      const before = await usage();
      const keysBefore = await storedKeys(app);
      const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(5000)]);
      const location = (await create(pdf.length, { filename: 'doc.pdf' })).headers.get('location')!;
      const refused = await patch(location, 0, pdf);
      assert.equal(refused.status, 415);
      assert.equal(((await refused.json()) as any).error.code, 'UNSUPPORTED_MEDIA_TYPE');
      assert.equal((await head(location)).headers.get('upload-offset'), '0');
      const asset = await app.gql('query($id: ID!) { asset(id: $id) { status failureReason receivedBytes } }', {
        id: globalId(location),
      });
      assert.equal(asset.data.asset.status, 'WAITING');
      assert.equal(asset.data.asset.receivedBytes, 0);
      assert.match(asset.data.asset.failureReason, /not accepted|not allowed|type/i);
      assert.deepEqual(await storedKeys(app), keysBefore);
      assert.deepEqual(await usage(), before);
    });

    test('a chunk whose part cannot be recorded (the database busy) charges nothing and can be sent again', async () => {
      const before = await usage();
      const file = png(64, 64);
      const location = (await create(file.length)).headers.get('location')!;
      const parts = app.repositories.uploadParts;
      const append = parts.append;
      let failed = 0;
      parts.append = async () => {
        failed += 1;
        throw new ServiceUnavailableError(1, 'Every database connection is busy.');
      };
      let refused: Response;
      try {
        refused = await patch(location, 0, file);
      } finally {
        parts.append = append;
      }
      assert.equal(failed, 1, 'the chunk reached its part');
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal(((await refused.json()) as any).error.code, 'SERVICE_UNAVAILABLE');
      assert.deepEqual(await usage(), before, 'nothing reserved or used for the bytes no part holds');
      assert.equal((await head(location)).headers.get('upload-offset'), '0');
      const sent = await patch(location, 0, file);
      assert.equal(sent.status, 204);
      assert.equal((await usage()).used - before.used, file.length);
      await assertConsistent(app);
    });

    test('creation-with-upload: the POST carries the first bytes', async () => {
      const file = Buffer.from('all at once\n');
      const response = await tus('/tus/', {
        method: 'POST',
        headers: {
          'upload-length': String(file.length),
          'upload-metadata': metadata({ filename: 'once.txt' }),
          'content-type': 'application/offset+octet-stream',
        },
        body: new Uint8Array(file),
      });
      assert.equal(response.status, 201);
      assert.equal(response.headers.get('upload-offset'), String(file.length));
      const id = response.headers.get('asset-id')!;
      assert.deepEqual(await processed(app, id, 'status checksum'), { status: 'READY', checksum: sha256(file) });
      await waitFor(async () => (await app.jobs?.idle(), true), Boolean);
      await assertConsistent(app);
    });
  });
});

describe('resumable uploads: the server killed (SIGKILL) mid-upload', () => {
  test('bytes acknowledged before the kill survive it; after a restart HEAD tells the offset and the client finishes', async () => {
    const data = tempDir('assetgate-tus-kill-');
    const env = { RATE_LIMIT: '0' };
    let server = await startServer(data.dir, { env });
    const { port, key } = server;
    const headers = { ...TUS, authorization: `Bearer ${key}` };
    try {
      const file = pngOf(3 * 1024 * 1024);
      const created = await fetch(`${server.url}/tus/`, {
        method: 'POST',
        headers: {
          ...headers,
          'upload-length': String(file.length),
          'upload-metadata': metadata({ filename: 'k.png' }),
        },
      });
      assert.equal(created.status, 201);
      const path = new URL(created.headers.get('location')!).pathname;
      const acked = await fetch(`${server.url}${path}`, {
        method: 'PATCH',
        headers: { ...headers, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
        body: new Uint8Array(file.subarray(0, 1024 * 1024)),
      });
      assert.equal(acked.status, 204);

      // The next chunk is under way when the process dies.
      const inFlight = request(`${server.url}${path}`, {
        method: 'PATCH',
        headers: {
          ...headers,
          'content-type': 'application/offset+octet-stream',
          'upload-offset': String(1024 * 1024),
          'content-length': String(2 * 1024 * 1024),
        },
      });
      inFlight.on('error', () => undefined);
      inFlight.write(file.subarray(1024 * 1024, 1536 * 1024));
      // Some of these bytes reach the server before the kill; what survives is read back after the restart.
      await new Promise((r) => setTimeout(r, 300));
      server.child.kill('SIGKILL');
      await new Promise((r) => server.child.once('exit', r));
      inFlight.destroy();

      server = await startServer(data.dir, { port, env });
      const probe = await fetch(`${server.url}${path}`, { method: 'HEAD', headers });
      assert.equal(probe.status, 200);
      const offset = Number(probe.headers.get('upload-offset'));
      assert.ok(offset >= 1024 * 1024, `the acknowledged megabyte survived (offset ${offset})`);
      const rest = await fetch(`${server.url}${path}`, {
        method: 'PATCH',
        headers: { ...headers, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) },
        body: new Uint8Array(file.subarray(offset)),
      });
      assert.equal(rest.status, 204);
      const id = rest.headers.get('asset-id')!;
      const asset = await waitFor(
        async () =>
          (
            (await (
              await fetch(`${server.url}/graphql`, {
                method: 'POST',
                headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
                body: JSON.stringify({ query: `{ asset(id: "${id}") { status checksum size } }` }),
              })
            ).json()) as any
          ).data.asset,
        (a) => a.status === 'READY' || a.status === 'FAILED',
      );
      assert.deepEqual(asset, { status: 'READY', checksum: sha256(file), size: file.length });
      server.child.kill('SIGTERM');
      await new Promise((r) => server.child.once('exit', r));
      const fsckOut = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          [fileURLToPath(new URL('../bin/assetgate.js', import.meta.url)), 'fsck'],
          { env: { ...process.env, DATA_DIR: data.dir } },
          (error, stdout) => (error ? reject(error) : resolve(stdout)),
        ),
      );
      assert.match(fsckOut, /consistent/);
    } finally {
      server.child.kill('SIGKILL');
      data.remove();
    }
  });
});

// Resumable uploads end to end: offsets in the database, parts in the store, so every setup.
forEachSetup(() => {
  describe('the typed client: resumable uploads', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    before(async () => {
      const port = await freePort();
      app = await createTestApp({ PUBLIC_URL: `http://127.0.0.1:${port}`, SWEEP_INTERVAL: '0' });
      server = await listen(app.handler, undefined, port);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    test('uploads in chunks with progress; chunks that fail on the way are resumed from the offset the server tells', async () => {
      const file = pngOf(700_000);
      let patches = 0;
      // The 3rd PATCH arrives but its answer is lost; the 4th never reaches the server.
      const flaky: typeof fetch = async (input, init) => {
        if (init?.method === 'PATCH') {
          patches += 1;
          if (patches === 3) await fetch(input, init);
          if (patches === 3 || patches === 4) throw new TypeError('fetch failed: the connection was reset');
        }
        return fetch(input, init);
      };
      const client = createClient({ url: server.url, apiKey: app.key, fetch: flaky });
      const progress: number[] = [];
      const { id, asset } = await client.uploadResumable(
        { blob: new Blob([new Uint8Array(file)]), filename: 'client.png' },
        { title: 'From the client', tags: ['cli'] },
        { chunkSize: 128 * 1024, retryDelayMs: 1, onProgress: (sent) => progress.push(sent) },
      );
      assert.equal(asset?.id, id);
      assert.equal(asset?.title, 'From the client');
      assert.equal(progress.at(-1), file.length);
      assert.ok(
        progress.every((n, i) => i === 0 || n >= progress[i - 1]),
        'progress never goes back',
      );
      // Only the chunk that never arrived was sent again: the server's offset said the other one was in.
      assert.equal(patches, Math.ceil(file.length / (128 * 1024)) + 1);
      const done = await client.waitUntilProcessed(id);
      assert.equal(done.checksum, sha256(file));
      assert.equal(done.status, 'READY');
      await assertConsistent(app);
    });

    test('a server refusal is final and carries its code', async () => {
      const client = createClient({ url: server.url, apiKey: await app.createKey('acme', ['read:assets']) });
      await assert.rejects(
        client.uploadResumable({ blob: new Blob(['x']), filename: 'a.txt' }),
        (error: any) => error.code === 'FORBIDDEN' && error.status === 403,
      );
    });
  });
});
