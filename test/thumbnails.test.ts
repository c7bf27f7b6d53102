import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { createTestApp, forEachDialect, freePort, listen, storedKeys, type TestApp, uploadTo } from './helpers.js';
import { animatedGif } from './samples.js';

/** A JPEG of `width`×`height`, a flat colour. */
const jpeg = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: '#3a6ea5' } })
    .jpeg()
    .toBuffer();

const FIELDS = 'status thumbnailUrl metadata { placeholder dominantColor thumbnails { size width height url } }';

forEachDialect(() => {
  describe('thumbnails made on first request', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;

    const get = (url: string, headers: Record<string, string> = app.authHeaders) =>
      fetch(`${server.url}${new URL(url).pathname}${new URL(url).search}`, { headers });
    const read = async (id: string) =>
      (await app.gql(`query($id: ID!) { asset(id: $id) { ${FIELDS} } }`, { id })).data.asset;

    before(async () => {
      const port = await freePort();
      // Eviction and drawing again are the store's cache: nothing held in memory above it (hot-renditions).
      app = await createTestApp({
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        THUMBNAIL_SIZES: '16,64,256',
        RENDITION_HOT_TTL: '0',
      });
      server = await listen(app.handler, undefined, port);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    test('READY without a thumbnail stored; each first request draws the image the listing promised', async () => {
      const before = await storedKeys(app);
      const start = app.services.renditions.made;
      // Wide, tall and odd shapes: each box as the rendition comes out, never enlarged.
      const shapes: [number, number][] = [
        [1500, 1000],
        [333, 1001],
        [100, 37],
      ];
      for (const [width, height] of shapes) {
        const made = app.services.renditions.made;
        const id = await uploadTo(app, await jpeg(width, height), `shape-${width}x${height}.jpg`);
        const asset = await read(id);
        assert.equal(asset.status, 'READY');
        assert.ok(asset.metadata.placeholder, 'the placeholder is there at READY');
        assert.match(asset.metadata.dominantColor, /^#3[9ab][67][def][ab][456]$/, 'the flat colour, as JPEG keeps it');
        assert.equal(asset.thumbnailUrl, asset.metadata.thumbnails[0].url, 'thumbnailUrl names the smallest');
        assert.equal(app.services.renditions.made, made, 'processing drew no thumbnail');
        for (const thumbnail of asset.metadata.thumbnails) {
          const response = await get(thumbnail.url);
          assert.equal(response.status, 200, `${width}x${height} at ${thumbnail.size}`);
          assert.equal(response.headers.get('content-type'), 'image/webp');
          const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
          assert.deepEqual(
            [meta.format, meta.width, meta.height],
            ['webp', thumbnail.width, thumbnail.height],
            `${width}x${height} at ${thumbnail.size}: the box listed`,
          );
          assert.ok(Math.max(meta.width!, meta.height!) <= Math.min(thumbnail.size, Math.max(width, height)));
          assert.equal(meta.exif, undefined, 'no EXIF');
        }
      }
      assert.equal(app.services.renditions.made, start + shapes.length * 3, 'one transform per thumbnail asked');
      assert.ok((await storedKeys(app)).length > before.length, 'the thumbnails are kept once drawn');
    });

    test('one transform, then the same bytes and ETag; 304 on revalidation, HEAD and Range as for any blob', async () => {
      const id = await uploadTo(app, await jpeg(640, 480), 'revalidate.jpg');
      const url = (await read(id)).metadata.thumbnails[1].url;
      const made = app.services.renditions.made;
      const first = await get(url);
      assert.equal(first.status, 200);
      const etag = first.headers.get('etag')!;
      assert.match(etag, /^"[0-9a-f]{64}"$/);
      assert.equal(first.headers.get('cache-control'), 'private, no-cache');
      assert.match(first.headers.get('content-disposition')!, /revalidate-64\.webp/);
      const bytes = Buffer.from(await first.arrayBuffer());
      const again = await get(url);
      assert.equal(again.headers.get('etag'), etag);
      assert.deepEqual(Buffer.from(await again.arrayBuffer()), bytes);
      assert.equal(app.services.renditions.made, made + 1, 'drawn once');
      const notModified = await get(url, { ...app.authHeaders, 'if-none-match': etag });
      assert.equal(notModified.status, 304);
      const range = await get(url, { ...app.authHeaders, range: 'bytes=0-9' });
      assert.equal(range.status, 206);
      assert.deepEqual(Buffer.from(await range.arrayBuffer()), bytes.subarray(0, 10));
      const head = await fetch(`${server.url}${new URL(url).pathname}${new URL(url).search}`, {
        method: 'HEAD',
        headers: app.authHeaders,
      });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(bytes.length));
    });

    test('the rules of the bytes: another org 404, no key 404, no read:assets 403, public to anyone, unknown size 404', async () => {
      const id = await uploadTo(app, await jpeg(300, 200), 'private.jpg');
      const url = (await read(id)).thumbnailUrl;
      const made = app.services.renditions.made;
      const other = await app.createKey('globex');
      const refused = (headers: Record<string, string>) =>
        get(url, headers).then(async (r) => [r.status, ((await r.json()) as any).error.code]);
      assert.deepEqual(await refused({ authorization: `Bearer ${other}` }), [404, 'NOT_FOUND']);
      assert.deepEqual(await refused({}), [404, 'NOT_FOUND']);
      const writer = await app.createKey('acme', ['write:assets']);
      assert.deepEqual(await refused({ authorization: `Bearer ${writer}` }), [403, 'FORBIDDEN']);
      assert.equal(app.services.renditions.made, made, 'nothing drawn for a caller who may not see it');
      const missing = await get(url.replace('thumbnail=16', 'thumbnail=17'));
      assert.deepEqual([missing.status, ((await missing.json()) as any).error.code], [404, 'NOT_FOUND']);
      await app.gql('mutation($id: ID!) { updateAsset(input: { id: $id, isPublic: true }) { asset { id } } }', { id });
      const open = await get(url, {});
      assert.equal(open.status, 200);
      assert.equal(open.headers.get('cache-control'), 'public, max-age=300');
      assert.equal((await sharp(Buffer.from(await open.arrayBuffer())).metadata()).width, 16);
    });

    test('an animated GIF has a still thumbnail, apart from its animated WebP rendition', async () => {
      const id = await uploadTo(app, await animatedGif(), 'spinner.gif');
      const thumbnail = await get((await read(id)).metadata.thumbnails[1].url);
      assert.equal(thumbnail.status, 200);
      const still = await sharp(Buffer.from(await thumbnail.arrayBuffer()), { animated: true }).metadata();
      assert.deepEqual([still.format, still.pages ?? 1, still.width, still.height], ['webp', 1, 40, 30]);
      assert.equal(thumbnail.headers.get('x-rendition-frames'), null);
      const rendition = await get(`${server.url}/download/${id}?w=64&h=64&fit=inside&format=webp`);
      const animated = await sharp(Buffer.from(await rendition.arrayBuffer()), { animated: true }).metadata();
      assert.equal(animated.pages, 3, 'the rendition keeps its frames');
    });

    test('an evicted thumbnail is drawn again on its next request', async () => {
      const id = await uploadTo(app, await jpeg(200, 100), 'evicted.jpg');
      const url = (await read(id)).thumbnailUrl;
      const first = await get(url);
      const bytes = Buffer.from(await first.arrayBuffer());
      const keysWith = await storedKeys(app);
      // The store loses every rendition of the asset (as the cache's eviction deletes them).
      const rowId = Buffer.from(id, 'base64url').toString().split(':')[1];
      const gone = keysWith.filter((key) => key.includes(rowId) && key.includes('.r'));
      assert.ok(gone.length >= 1, 'the thumbnail is a rendition blob');
      for (const key of gone) await app.blobs.delete(key);
      const made = app.services.renditions.made;
      const again = await get(url);
      assert.equal(again.status, 200);
      assert.deepEqual(Buffer.from(await again.arrayBuffer()), bytes);
      assert.equal(app.services.renditions.made, made + 1);
    });
  });
});
