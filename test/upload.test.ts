import { isDeepStrictEqual } from 'node:util';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { truncate } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  assertConsistent,
  createTestApp,
  tempDir,
  listen,
  multipartForm,
  pdf,
  png,
  postMultipart,
  type TestApp,
  waitFor,
  blobFootprint,
  forEachDialect,
  forEachSetup,
  storedKeys,
} from './helpers.js';
import { FsBlobStore } from '../src/blob/fs-blob-store.js';
import { BadUserInputError } from '../src/errors.js';

const UPLOAD = `mutation($input: UploadAssetInput!) { uploadAsset(input: $input) {
asset { id title type mimeType size checksum width height filename tags isPublic url status directory { name } } } }`;
const UPLOAD_MANY = `mutation($input: UploadAssetsInput!) { uploadAssets(input: $input) {
assets { id filename size type } failures { index filename code message } } }`;

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function idOf(globalId: string): string {
  return Buffer.from(globalId, 'base64url').toString().split(':')[1]!;
}

// Ingest end to end and downloads: where the row, its blob and the store meet, so every setup.
forEachSetup(() => {
  describe('uploads over a real port', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    before(async () => {
      app = await createTestApp({ MAX_FILE_SIZE: '1000', MAX_FILES_PER_REQUEST: '5' });
      server = await listen(app.handler);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    /** Stored blobs and rows: what a failed request must not change. */
    async function footprint() {
      await app.jobs?.idle(); // thumbnails of earlier uploads land in the background
      const rows = await app.db.selectFrom('assets').select('id').execute();
      return { rows: rows.length, blobs: await blobFootprint(app) };
    }

    async function upload(
      bytes: Buffer,
      name: string,
      input: Record<string, unknown> = {},
      headers?: Record<string, string>,
    ) {
      const form = multipartForm(UPLOAD, { input: { ...input, file: null } }, [
        ['variables.input.file', new Blob([new Uint8Array(bytes)]), name],
      ]);
      return postMultipart(server.url, form, headers ?? app.authHeaders);
    }

    test('one file with its metadata; type, checksum and dimensions come from the bytes', async () => {
      const image = png(3, 2);
      const folder = await app.gql('mutation { createDirectory(input: { name: "Shots" }) { directory { id } } }');
      const { json } = await upload(image, 'shot.txt', {
        title: 'Screenshot',
        tags: ['UI'],
        isPublic: true,
        directoryId: folder.data.createDirectory.directory.id,
      });
      assert.equal(json.errors, undefined, JSON.stringify(json.errors));
      const asset = json.data.uploadAsset.asset;
      assert.equal(asset.title, 'Screenshot');
      assert.equal(asset.type, 'IMAGE');
      assert.equal(asset.mimeType, 'image/png', 'the bytes win over the .txt name');
      assert.equal(asset.size, image.length);
      assert.equal(asset.checksum, sha256(image));
      assert.deepEqual([asset.width, asset.height], [3, 2]);
      assert.equal(asset.filename, 'shot.txt');
      assert.deepEqual(asset.tags, ['ui']);
      assert.equal(asset.status, 'PROCESSING', 'stored and downloadable; extraction runs in the background');
      assert.equal(asset.directory.name, 'Shots');
      assert.match(asset.url, /^http:\/\/assets\.test\/download\//);
    });

    test('the title defaults to the filename; path parts and control characters are dropped', async () => {
      const { json } = await upload(Buffer.from('notes'), '../../etc/pass\u202ewd.txt');
      const asset = json.data.uploadAsset.asset;
      assert.equal(asset.filename, 'passwd.txt');
      assert.equal(asset.title, 'passwd');
      // A raw control character breaks the part header itself: the body is malformed.
      const broken = await upload(Buffer.from('notes'), 'bell\u0007.txt');
      assert.equal(broken.json.errors[0].extensions.code, 'BAD_USER_INPUT');
    });

    test('a file of exactly the limit is stored; one byte more is PAYLOAD_TOO_LARGE and leaves nothing', async () => {
      const ok = await upload(Buffer.alloc(1000, 1), 'limit.bin');
      assert.equal(ok.json.data.uploadAsset.asset.size, 1000);
      const before = await footprint();
      const tooBig = await upload(Buffer.alloc(1001, 1), 'over.bin');
      assert.equal(tooBig.status, 413);
      assert.equal(tooBig.json.errors[0].extensions.code, 'PAYLOAD_TOO_LARGE');
      assert.deepEqual(await footprint(), before);
    });

    test('a batch stores the good files and reports the bad ones by index', async () => {
      const before = await footprint();
      const files: [string, Blob, string][] = [
        ['variables.input.files.0', new Blob(['first']), 'a.txt'],
        ['variables.input.files.1', new Blob([new Uint8Array(5000)]), 'big.bin'],
        ['variables.input.files.2', new Blob([new Uint8Array(pdf())]), 'c.pdf'],
      ];
      const form = multipartForm(UPLOAD_MANY, { input: { files: [null, null, null], tags: ['batch'] } }, files);
      const { json } = await postMultipart(server.url, form, app.authHeaders);
      assert.equal(json.errors, undefined, JSON.stringify(json.errors));
      const { assets, failures } = json.data.uploadAssets;
      assert.deepEqual(
        assets.map((a: any) => [a.filename, a.type]),
        [
          ['a.txt', 'DOCUMENT'],
          ['c.pdf', 'PDF'],
        ],
      );
      assert.deepEqual(
        failures.map((f: any) => [f.index, f.filename, f.code]),
        [[1, 'big.bin', 'PAYLOAD_TOO_LARGE']],
      );
      const afterBatch = await footprint();
      assert.equal(afterBatch.rows, before.rows + 2);
      // The two files, and the PDF's first page (its preview, kept in the rendition cache).
      assert.equal(afterBatch.blobs.keys.length, before.blobs.keys.length + 3);
    });

    test('more files than allowed is BAD_USER_INPUT and nothing is stored', async () => {
      const before = await footprint();
      const files = Array.from(
        { length: 6 },
        (_, i) => [`variables.input.files.${i}`, new Blob([`f${i}`]), `f${i}.txt`] as [string, Blob, string],
      );
      const form = multipartForm(UPLOAD_MANY, { input: { files: files.map(() => null) } }, files);
      const { json } = await postMultipart(server.url, form, app.authHeaders);
      assert.equal(json.errors[0].extensions.code, 'BAD_USER_INPUT');
      assert.equal(json.errors[0].extensions.field, 'files');
      assert.deepEqual(await footprint(), before);
    });

    test('a multipart request without a preflight header is refused', async () => {
      const form = multipartForm(UPLOAD, { input: { file: null } }, [
        ['variables.input.file', new Blob(['x']), 'x.txt'],
      ]);
      const response = await fetch(`${server.url}/graphql`, { method: 'POST', body: form, headers: app.authHeaders });
      const json = (await response.json()) as any;
      assert.equal(json.errors[0].extensions.code, 'BAD_USER_INPUT');
    });

    test('malformed multipart requests are BAD_USER_INPUT and the server keeps serving', async () => {
      const cases: FormData[] = [];
      const noMap = new FormData();
      noMap.append('operations', JSON.stringify({ query: UPLOAD, variables: { input: { file: null } } }));
      cases.push(noMap);
      const badJson = new FormData();
      badJson.append('operations', '{not json');
      badJson.append('map', '{}');
      cases.push(badJson);
      const fileFirst = new FormData();
      fileFirst.append('0', new Blob(['x']), 'x.txt');
      fileFirst.append('operations', JSON.stringify({ query: UPLOAD, variables: { input: { file: null } } }));
      fileFirst.append('map', JSON.stringify({ 0: ['variables.input.file'] }));
      cases.push(fileFirst);
      const mapNowhere = new FormData();
      mapNowhere.append('operations', JSON.stringify({ query: UPLOAD, variables: { input: { file: null } } }));
      mapNowhere.append('map', JSON.stringify({ 0: ['variables.input.file'] }));
      cases.push(mapNowhere); // the map names a file that never comes
      for (const form of cases) {
        const before = await footprint();
        const { json } = await postMultipart(server.url, form, app.authHeaders);
        assert.equal(json.errors?.[0].extensions.code, 'BAD_USER_INPUT', JSON.stringify(json));
        assert.deepEqual(await footprint(), before);
      }
      const ok = await upload(Buffer.from('still serving'), 'ok.txt');
      assert.equal(ok.json.data.uploadAsset.asset.size, 13);
    });

    test('a resolver that fails before reading the file still answers (the stream is drained)', async () => {
      const before = await footprint();
      const { json } = await upload(Buffer.alloc(900, 7), 'x.bin', { title: '' });
      assert.equal(json.errors[0].extensions.code, 'BAD_USER_INPUT');
      assert.equal(json.errors[0].extensions.field, 'title');
      assert.deepEqual(await footprint(), before);
    });

    test('a client that disconnects mid-upload leaves nothing behind', async () => {
      const before = await footprint();
      const boundary = 'xBOUNDARYx';
      const head =
        `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n` +
        JSON.stringify({ query: UPLOAD, variables: { input: { file: null } } }) +
        `\r\n--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.input.file"]}` +
        `\r\n--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="cut.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
      await new Promise<void>((resolve) => {
        const req = request(`${server.url}/graphql`, {
          method: 'POST',
          headers: {
            'content-type': `multipart/form-data; boundary=${boundary}`,
            'x-graphql-yoga-csrf': '1',
            'content-length': '100000',
          },
        });
        req.on('error', () => resolve());
        req.write(head);
        req.write(Buffer.alloc(500, 1));
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 200);
      });
      // The clean-up of the cut upload lands after the abort: wait for it, not for a while.
      assert.deepEqual(await waitFor(footprint, (now) => isDeepStrictEqual(now, before)), before);
      const ok = await upload(Buffer.from('after the abort'), 'ok.txt');
      assert.equal(ok.json.data.uploadAsset.asset.size, 15);
    });

    test('JSON bodies over the limit are PAYLOAD_TOO_LARGE', async () => {
      const small = await createTestApp({ MAX_JSON_BODY_SIZE: '200' });
      try {
        const result = await small.gql(`{ assets(filter: { search: "${'x'.repeat(300)}" }) { totalCount } }`);
        assert.equal(result.status, 413);
        assert.equal(result.errors?.[0].extensions.code, 'PAYLOAD_TOO_LARGE');
      } finally {
        await small.dispose();
      }
    });
  });

  describe('downloads', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    let asset: any;
    const bytes = Buffer.from('0123456789abcdefghij');
    before(async () => {
      app = await createTestApp();
      server = await listen(app.handler);
      const form = multipartForm(UPLOAD, { input: { file: null } }, [
        ['variables.input.file', new Blob([new Uint8Array(bytes)]), 'naïve résumé.txt'],
      ]);
      asset = (await postMultipart(server.url, form, app.authHeaders)).json.data.uploadAsset.asset;
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    const path = () => new URL(asset.url).pathname;
    const get = (url: string, init: RequestInit = {}) =>
      fetch(url, { ...init, headers: { ...app.authHeaders, ...(init.headers as Record<string, string>) } });

    test('GET sends the bytes with type, length, ETag, RFC 6266 disposition and nosniff', async () => {
      const response = await get(server.url + path());
      assert.equal(response.status, 200);
      assert.deepEqual(Buffer.from(await response.arrayBuffer()), bytes);
      assert.equal(response.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(response.headers.get('content-length'), String(bytes.length));
      assert.equal(response.headers.get('etag'), `"${asset.checksum.slice(7)}"`);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      assert.match(
        response.headers.get('content-disposition')!,
        /filename\*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9\.txt/,
      );
    });

    test('Range, If-None-Match and HEAD', async () => {
      const part = await get(server.url + path(), { headers: { range: 'bytes=5-9' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 5-9/${bytes.length}`);
      assert.equal(await part.text(), '56789');
      const suffix = await get(server.url + path(), { headers: { range: 'bytes=-3' } });
      assert.equal(await suffix.text(), 'hij');
      const beyond = await get(server.url + path(), { headers: { range: 'bytes=100-200' } });
      assert.equal(beyond.status, 416);
      assert.equal(beyond.headers.get('content-range'), `bytes */${bytes.length}`);
      assert.equal((await beyond.arrayBuffer()).byteLength, 0);
      const cached = await get(server.url + path(), { headers: { 'if-none-match': `"${asset.checksum.slice(7)}"` } });
      assert.equal(cached.status, 304);
      const head = await get(server.url + path(), { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(bytes.length));
      const post = await get(server.url + path(), { method: 'POST' });
      assert.equal(post.status, 405);
    });

    test('downloadCount counts completed downloads', async () => {
      const before = (await app.gql('query($id: ID!) { asset(id: $id) { downloadCount } }', { id: asset.id })).data
        .asset.downloadCount;
      await (await get(server.url + path())).arrayBuffer();
      await (await get(server.url + path(), { method: 'HEAD' })).arrayBuffer();
      const count = async () =>
        (await app.gql('query($id: ID!) { asset(id: $id) { downloadCount } }', { id: asset.id })).data.asset
          .downloadCount;
      assert.equal(await waitFor(count, (n) => n > before), before + 1);
    });

    test('active types are sandboxed attachments', async () => {
      const form = multipartForm(UPLOAD, { input: { file: null } }, [
        [
          'variables.input.file',
          new Blob(['<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>']),
          'logo.png',
        ],
      ]);
      const svg = (await postMultipart(server.url, form, app.authHeaders)).json.data.uploadAsset.asset;
      assert.equal(svg.mimeType, 'image/svg+xml');
      const response = await get(server.url + new URL(svg.url).pathname);
      assert.match(response.headers.get('content-disposition')!, /^attachment/);
      assert.match(response.headers.get('content-security-policy')!, /sandbox/);
    });

    test('deleting an asset for good removes its blob; its URL then answers 404', async () => {
      await app.jobs?.idle(); // thumbnails of earlier uploads land in the background
      const before = await storedKeys(app);
      const form = multipartForm(UPLOAD, { input: { file: null } }, [
        ['variables.input.file', new Blob(['bye']), 'bye.txt'],
      ]);
      const doomed = (await postMultipart(server.url, form, app.authHeaders)).json.data.uploadAsset.asset;
      assert.equal((await storedKeys(app)).length, before.length + 1);
      await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id, permanently: true }) { deletedId } }', {
        id: doomed.id,
      });
      assert.deepEqual(await storedKeys(app), before);
      const response = await get(server.url + new URL(doomed.url).pathname);
      assert.equal(response.status, 404);
      assert.equal(((await response.json()) as any).error.code, 'NOT_FOUND');
    });

    test('unknown and malformed download ids are 404 / 400', async () => {
      assert.equal(
        (await fetch(`${server.url}/download/QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw`)).status,
        404,
      );
      assert.equal((await get(`${server.url}/download/%2e%2e%2fetc%2fpasswd`)).status, 400);
      assert.equal((await fetch(`${server.url}/nowhere`)).status, 404);
    });
  });
});

forEachDialect(() => {
  describe('batch uploads', () => {
    /** Holds the first file's put, once its bytes are written, until a second put starts (or 3 s pass). */
    class OverlapWatchingStore extends FsBlobStore {
      overlapped: boolean | undefined;
      #puts = 0;
      #secondStarted!: () => void;
      readonly #second = new Promise<void>((resolve) => (this.#secondStarted = resolve));

      override async put(key: string, body: Readable): Promise<{ size: number }> {
        const n = ++this.#puts;
        if (n === 2) this.#secondStarted();
        const result = await super.put(key, body);
        if (n === 1) {
          const waited = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000).unref());
          this.overlapped = await Promise.race([this.#second.then(() => true), waited]);
        }
        return result;
      }
    }

    test('the next file is read while the one before it is still being stored; answers keep file order', async () => {
      const data = tempDir();
      const store = new OverlapWatchingStore({ root: path.join(data.dir, 'blobs') });
      const app = await createTestApp({ JOB_CONCURRENCY: '0' }, { blobs: store });
      const server = await listen(app.handler);
      try {
        const names = ['one.txt', 'two.txt', 'three.txt', 'four.txt'];
        const files = names.map(
          (name, i) => [`variables.input.files.${i}`, new Blob([name.repeat(i + 1)]), name] as [string, Blob, string],
        );
        const form = multipartForm(UPLOAD_MANY, { input: { files: names.map(() => null) } }, files);
        const { json } = await postMultipart(server.url, form, app.authHeaders);
        assert.equal(json.errors, undefined, JSON.stringify(json.errors));
        assert.equal(store.overlapped, true, 'the second file was not read until the first was stored');
        assert.deepEqual(
          json.data.uploadAssets.assets.map((a: any) => [a.filename, a.size]),
          names.map((name, i) => [name, name.length * (i + 1)]),
        );
        assert.deepEqual(json.data.uploadAssets.failures, []);
      } finally {
        await server.close();
        await app.dispose();
        data.remove();
      }
    });
    test('a file whose upload fails before reading it is drained, and the files after it are still taken', async () => {
      const app = await createTestApp({ JOB_CONCURRENCY: '0' });
      const server = await listen(app.handler);
      const upload = app.services.assets.upload.bind(app.services.assets);
      // As a folder deleted mid-batch would: refused before a byte of the file is read.
      app.services.assets.upload = async (tenant, input) => {
        if (input.filename === 'refused.bin') throw new BadUserInputError('directoryId', 'gone');
        return upload(tenant, input);
      };
      try {
        const files: [string, Blob, string][] = [
          ['variables.input.files.0', new Blob(['first']), 'a.txt'],
          ['variables.input.files.1', new Blob([new Uint8Array(2 * 1024 * 1024)]), 'refused.bin'],
          ['variables.input.files.2', new Blob(['third']), 'c.txt'],
        ];
        const form = multipartForm(UPLOAD_MANY, { input: { files: [null, null, null] } }, files);
        const { json } = await postMultipart(server.url, form, app.authHeaders);
        assert.equal(json.errors, undefined, JSON.stringify(json.errors));
        assert.deepEqual(
          json.data.uploadAssets.assets.map((a: any) => a.filename),
          ['a.txt', 'c.txt'],
        );
        assert.deepEqual(
          json.data.uploadAssets.failures.map((f: any) => [f.index, f.filename, f.code]),
          [[1, 'refused.bin', 'BAD_USER_INPUT']],
        );
        await assertConsistent(app);
      } finally {
        await server.close();
        await app.dispose();
      }
    });

    test('an unexpected failure of one file stops the batch: the request fails, nothing is left half-stored', async () => {
      const data = tempDir();
      let puts = 0;
      const store = new (class extends FsBlobStore {
        override async put(key: string, body: Readable): Promise<{ size: number }> {
          if (++puts === 2) throw new Error('the disk went away');
          return super.put(key, body);
        }
      })({ root: path.join(data.dir, 'blobs') });
      const app = await createTestApp({ JOB_CONCURRENCY: '0' }, { blobs: store, logError: () => undefined });
      const server = await listen(app.handler);
      try {
        const files = Array.from(
          { length: 8 },
          (_, i) => [`variables.input.files.${i}`, new Blob([`file ${i}`]), `f${i}.txt`] as [string, Blob, string],
        );
        const form = multipartForm(UPLOAD_MANY, { input: { files: files.map(() => null) } }, files);
        const { json } = await postMultipart(server.url, form, app.authHeaders);
        assert.equal(json.errors?.[0].extensions.code, 'INTERNAL_SERVER_ERROR', JSON.stringify(json));
        const rows = await app.db.selectFrom('assets').select('filename').execute();
        // The first file is stored; one or two more may already be under way when the failure lands.
        assert.ok(rows.length >= 1 && rows.length < 7, `the batch went on after the failure: ${JSON.stringify(rows)}`);
        await assertConsistent(app);
        const again = multipartForm(UPLOAD_MANY, { input: { files: [null] } }, [
          ['variables.input.files.0', new Blob(['again']), 'again.txt'],
        ]);
        const after = await postMultipart(server.url, again, app.authHeaders);
        assert.equal(after.json.data.uploadAssets.assets.length, 1, 'the server still takes batches');
      } finally {
        await server.close();
        await app.dispose();
        data.remove();
      }
    });
  });

  describe('storage accounting', () => {
    test('bytes are reserved while they arrive only under a quota; stored bytes are counted either way', async () => {
      for (const quota of [undefined, '1MiB']) {
        const app = await createTestApp({ JOB_CONCURRENCY: '0', ...(quota && { ORG_STORAGE_QUOTA: quota }) });
        try {
          const statements = await app.recordQueries(() =>
            app.services.assets.upload(
              { orgId: 'acme', mode: 'live' },
              { stream: Readable.from([Buffer.alloc(3000, 1)]), filename: 'f.bin' },
            ),
          );
          const reservations = statements.filter((sql) => /"reserved_bytes" = "reserved_bytes" \+/.test(sql));
          assert.equal(reservations.length, quota ? 1 : 0, statements.join('\n'));
          assert.deepEqual(await app.repositories.orgs.usage('acme'), { used: 3000, reserved: 0 });
        } finally {
          await app.dispose();
        }
      }
    });
  });

  test('a blob cut short on disk fails its download instead of ending short, and the server keeps serving', async () => {
    const logged: unknown[] = [];
    // A file on disk to cut short: the fs store, whatever the database.
    const app = await createTestApp({ BLOB_STORE: 'fs' }, { logError: (error) => logged.push(error) });
    const server = await listen(app.handler);
    try {
      const form = multipartForm(UPLOAD, { input: { file: null } }, [
        ['variables.input.file', new Blob([new Uint8Array(Buffer.alloc(300_000, 7))]), 'long.bin'],
      ]);
      const asset = (await postMultipart(server.url, form, app.authHeaders)).json.data.uploadAsset.asset;
      const row = await app.repositories.assets.findByIdAnyTenant(idOf(asset.id));
      await truncate(app.blobs.localPath!(row!.blob_key!)!, 5);
      const response = await fetch(server.url + new URL(asset.url).pathname, { headers: app.authHeaders });
      assert.equal(response.headers.get('content-length'), '300000');
      await assert.rejects(response.arrayBuffer(), 'the body does not end as if it were whole');
      assert.match(String(logged[0]), /ended at byte 5 of 300000/);
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    } finally {
      await server.close();
      await app.dispose();
    }
  });
});
