import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import {
  createTestApp,
  forEachDialect,
  freePort,
  listen,
  processed,
  storedKeys,
  type TestApp,
  uploadTo,
  waitFor,
} from './helpers.js';
import { animatedGif } from './samples.js';

/** A 1200×800 JPEG, blue, with a red block in its top-left corner (0–300, 0–200). */
async function picture(): Promise<Buffer> {
  const red = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#ff0000' } })
    .png()
    .toBuffer();
  return sharp({ create: { width: 1200, height: 800, channels: 3, background: '#0000ff' } })
    .composite([{ input: red, left: 0, top: 0 }])
    .jpeg({ quality: 95 })
    .toBuffer();
}

forEachDialect(() => {
  describe('image renditions', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    let photo: string;
    let photoBytes: Buffer;
    let gif: string;
    let text: string;

    const get = (path: string, headers: Record<string, string> = app.authHeaders) =>
      fetch(`${server.url}${path}`, { headers });
    const image = async (response: Response) => {
      const body = Buffer.from(await response.arrayBuffer());
      return { body, meta: await sharp(body).metadata() };
    };
    const upload = (bytes: Buffer, filename: string) => uploadTo(app, bytes, filename);

    before(async () => {
      const port = await freePort();
      // Every request takes the whole path (rows, store, transform): the warm renditions held in
      // memory above it have a suite of their own (hot-renditions).
      app = await createTestApp({
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        SWEEP_INTERVAL: '0',
        RENDITION_HOT_TTL: '0',
      });
      server = await listen(app.handler, undefined, port);
      photoBytes = await picture();
      photo = await upload(photoBytes, 'beach.jpg');
      gif = await upload(await animatedGif(), 'spinner.gif');
      text = await upload(Buffer.from('not a picture'), 'notes.txt');
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    test('width snaps up to IMAGE_WIDTHS, dpr multiplies, and the original is never enlarged', async () => {
      for (const [query, width] of [
        ['w=300&format=webp', 384],
        ['w=200&dpr=2&format=webp', 512],
        ['w=5000&format=webp', 1200],
        ['h=100&format=webp', 192],
      ] as const) {
        const response = await get(`/download/${photo}?${query}`);
        assert.equal(response.status, 200, query);
        assert.equal(response.headers.get('content-type'), 'image/webp');
        const { meta } = await image(response);
        assert.equal(meta.format, 'webp');
        assert.equal(meta.width, width, query);
        assert.equal(meta.height, Math.round((width * 800) / 1200), query);
      }
    });

    test('a box given both sides keeps its shape: the width snaps, the height follows the asked ratio', async () => {
      const wide = await upload(
        await sharp({ create: { width: 1600, height: 900, channels: 3, background: '#336699' } })
          .jpeg()
          .toBuffer(),
        'wide.jpg',
      );
      for (const [query, size] of [
        ['w=1024&h=576&fit=cover', [1024, 576]],
        ['w=800&h=450&fit=cover&format=webp', [1024, 576]],
        ['w=512&h=288&dpr=2&format=webp', [1024, 576]],
        ['w=300&h=300&format=webp', [384, 384]],
        ['w=3000&h=1000&format=webp', [1600, 533]],
      ] as const) {
        const response = await get(`/download/${wide}?${query}`);
        assert.equal(response.status, 200, query);
        const { meta } = await image(response);
        assert.deepEqual([meta.width, meta.height], size, query);
      }
      const url = await app.gql(
        'query($id: ID!) { asset(id: $id) { imageUrl(width: 1024, height: 576, fit: COVER, format: JPEG) } }',
        { id: wide },
      );
      const served = await fetch(url.data.asset.imageUrl);
      assert.equal(served.status, 200);
      const { meta } = await image(served);
      assert.deepEqual([meta.width, meta.height], [1024, 576], 'imageUrl builds the same box');
    });

    test('fit and format: cover fills the box, contain letterboxes, jpeg and png are what they say', async () => {
      const cover = await image(await get(`/download/${photo}?w=256&h=256&fit=cover&format=jpeg`));
      assert.deepEqual([cover.meta.format, cover.meta.width, cover.meta.height], ['jpeg', 256, 256]);
      const contain = await image(await get(`/download/${photo}?w=256&h=256&fit=contain&format=png`));
      assert.deepEqual([contain.meta.format, contain.meta.width, contain.meta.height], ['png', 256, 256]);
      const fill = await image(await get(`/download/${photo}?w=256&h=128&fit=fill&format=webp`));
      assert.deepEqual([fill.meta.width, fill.meta.height], [256, 128]);
      const avif = await get(`/download/${photo}?w=128&format=avif&q=40`);
      assert.equal(avif.headers.get('content-type'), 'image/avif');
      assert.equal((await image(avif)).meta.format, 'heif');
    });

    test('format=auto picks AVIF, then WebP, from Accept, else the original format, and says Vary: Accept', async () => {
      for (const [accept, type] of [
        ['image/avif,image/webp,*/*', 'image/avif'],
        ['image/webp,*/*', 'image/webp'],
        ['*/*', 'image/jpeg'],
      ]) {
        const response = await get(`/download/${photo}?w=128&format=auto`, { ...app.authHeaders, accept });
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('content-type'), type, accept);
        assert.equal(response.headers.get('vary'), 'Accept');
        await response.arrayBuffer();
      }
      const fixed = await get(`/download/${photo}?w=128&format=webp`);
      assert.equal(fixed.headers.get('vary'), null, 'a fixed format does not vary');
    });

    test('cover crops around the focal point', async () => {
      const set = await app.gql(
        'mutation($id: ID!) { updateAsset(input: { id: $id, focalPoint: { x: 0.1, y: 0.1 } }) { asset { focalPoint { x y } } } }',
        { id: photo },
      );
      assert.deepEqual(set.data.updateAsset.asset.focalPoint, { x: 0.1, y: 0.1 });
      // A square of the middle height keeps the top-left corner in frame: its centre is red.
      const { body } = await image(await get(`/download/${photo}?w=256&h=256&fit=cover&format=png`));
      const { data, info } = await sharp(body).raw().toBuffer({ resolveWithObject: true });
      const at = (x: number, y: number) => [
        ...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3),
      ];
      const [r, , b] = at(20, 20);
      assert.ok(r > 200 && b < 60, `the top-left of the crop is red: ${at(20, 20)}`);
      const [r2, , b2] = at(250, 250);
      assert.ok(b2 > 200 && r2 < 60, `its bottom-right is blue: ${at(250, 250)}`);
      // Away from the red block (which the centre-of-attention strategy would pick): the crop is all blue.
      await app.gql(
        'mutation($id: ID!) { updateAsset(input: { id: $id, focalPoint: { x: 0.9, y: 0.9 } }) { asset { id } } }',
        {
          id: photo,
        },
      );
      const away = await image(await get(`/download/${photo}?w=256&h=256&fit=cover&format=png`));
      const pixels = await sharp(away.body).raw().toBuffer({ resolveWithObject: true });
      const reds = [...Array(pixels.info.width * pixels.info.height).keys()].filter(
        (i) => pixels.data[i * pixels.info.channels] > 128,
      );
      assert.equal(reds.length, 0, 'no red in a crop kept at the bottom right');
      const refused = await app.gql(
        'mutation($id: ID!) { updateAsset(input: { id: $id, focalPoint: { x: 1.5, y: 0 } }) { asset { id } } }',
        {
          id: photo,
        },
      );
      assert.equal(refused.errors?.[0]?.extensions.code, 'BAD_USER_INPUT');
      const cleared = await app.gql(
        'mutation($id: ID!) { updateAsset(input: { id: $id, focalPoint: null }) { asset { focalPoint { x } } } }',
        {
          id: photo,
        },
      );
      assert.equal(cleared.data.updateAsset.asset.focalPoint, null);
    });

    test('every bad parameter is 400 BAD_USER_INPUT naming it', async () => {
      for (const [query, field] of [
        ['w=0', 'w'],
        ['w=abc', 'w'],
        ['w=99999', 'w'],
        ['h=-1', 'h'],
        ['w=1.5', 'w'],
        ['fit=crop', 'fit'],
        ['format=bmp', 'format'],
        ['q=0', 'q'],
        ['q=101', 'q'],
        ['dpr=4', 'dpr'],
        ['dpr=0.5', 'dpr'],
        ['dpr=two', 'dpr'],
        ['w=100&w=200', 'w'],
        ['width=100', 'width'],
        ['w=100&blur=3', 'blur'],
      ]) {
        const response = await get(`/download/${photo}?${query}`);
        assert.equal(response.status, 400, query);
        const body = (await response.json()) as any;
        assert.equal(body.error.code, 'BAD_USER_INPUT', query);
        assert.equal(body.error.field, field, query);
      }
      const notImage = await get(`/download/${text}?w=128`);
      assert.equal(notImage.status, 400);
    });

    test('made once, then served from the store with a strong ETag and Range; versioned URLs are immutable', async () => {
      const made = app.services.renditions.made;
      const path = `/download/${photo}?w=768&format=webp`;
      const first = await get(path);
      const etag = first.headers.get('etag')!;
      assert.match(etag, /^"[0-9a-f]{64}"$/);
      const bytes = Buffer.from(await first.arrayBuffer());
      const again = await get(path);
      assert.equal(again.headers.get('etag'), etag);
      assert.deepEqual(Buffer.from(await again.arrayBuffer()), bytes);
      assert.equal(app.services.renditions.made, made + 1, 'one transform for two requests');
      const notModified = await get(path, { ...app.authHeaders, 'if-none-match': etag });
      assert.equal(notModified.status, 304);
      const range = await get(path, { ...app.authHeaders, range: 'bytes=0-9' });
      assert.equal(range.status, 206);
      assert.deepEqual(Buffer.from(await range.arrayBuffer()), bytes.subarray(0, 10));
      assert.equal(first.headers.get('cache-control'), 'private, no-cache', 'no version named: revalidate');
      const version = (
        await app.gql('query($id: ID!) { asset(id: $id) { checksum } }', { id: photo })
      ).data.asset.checksum.slice(7, 19);
      const versioned = await get(`${path}&v=${version}`);
      assert.equal(versioned.headers.get('cache-control'), 'private, max-age=31536000, immutable');
      await versioned.arrayBuffer();
      const usage = await app.gql('{ viewer { usage { renditionCount renditionBytes bytesStored } } }');
      assert.ok(usage.data.viewer.usage.renditionCount >= 1);
      assert.ok(usage.data.viewer.usage.renditionBytes >= bytes.length);
    });

    test('twenty concurrent first requests for one rendition make it once', async () => {
      const made = app.services.renditions.made;
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => get(`/download/${photo}?w=1536&format=jpeg&q=61`)),
      );
      const bodies = await Promise.all(
        responses.map(async (r) => [r.status, Buffer.from(await r.arrayBuffer()).length]),
      );
      assert.ok(bodies.every(([status]) => status === 200));
      assert.equal(new Set(bodies.map(([, length]) => length)).size, 1);
      assert.equal(app.services.renditions.made, made + 1);
    });

    test('access: another org 404, a private asset without a key 404, a public one without a key 200', async () => {
      const other = await app.createKey('globex');
      assert.equal((await get(`/download/${photo}?w=128`, { authorization: `Bearer ${other}` })).status, 404);
      assert.equal((await get(`/download/${photo}?w=128`, {})).status, 404);
      const reader = await app.createKey('acme', ['write:assets']);
      assert.equal((await get(`/download/${photo}?w=128`, { authorization: `Bearer ${reader}` })).status, 403);
      await app.gql('mutation($id: ID!) { updateAsset(input: { id: $id, isPublic: true }) { asset { id } } }', {
        id: gif,
      });
      const open = await get(`/download/${gif}?w=64&format=webp`, {});
      assert.equal(open.status, 200);
      await open.arrayBuffer();
    });

    test('a counted signed URL counts a rendition fetch as a fetch', async () => {
      const made = await app.gql(
        'mutation($id: ID!) { createDownloadUrl(input: { id: $id, maxFetches: 1 }) { url } }',
        { id: photo },
      );
      const url = new URL(made.data.createDownloadUrl.url);
      const first = await fetch(`${server.url}${url.pathname}?w=128&format=webp`);
      assert.equal(first.status, 200);
      assert.equal((await image(first)).meta.width, 128);
      const second = await fetch(`${server.url}${url.pathname}?w=128&format=webp`);
      assert.equal(second.status, 404);
      const original = await fetch(`${server.url}${url.pathname}`);
      assert.equal(original.status, 404, 'the one fetch is used');
    });

    test('animated GIF stays animated as WebP; as JPEG it is the first frame and says so', async () => {
      const webp = await get(`/download/${gif}?w=64&format=webp`);
      const meta = (await image(webp)).meta;
      assert.equal(meta.pages, 3);
      assert.equal(webp.headers.get('x-rendition-frames'), null);
      const jpeg = await get(`/download/${gif}?w=64&format=jpeg`);
      assert.equal((await image(jpeg)).meta.pages, undefined);
      assert.equal(jpeg.headers.get('x-rendition-frames'), 'first');
    });

    test('imageUrl and srcSet: ready URLs that serve what they say, signed for a private asset', async () => {
      const result = await app.gql(
        'query($id: ID!) { asset(id: $id) { imageUrl(width: 300, format: WEBP) srcSet(widths: [100, 300, 5000], format: WEBP) } }',
        { id: photo },
      );
      const { imageUrl, srcSet } = result.data.asset;
      assert.match(imageUrl, new RegExp(`^${server.url}/dl/`));
      const served = await fetch(imageUrl);
      assert.equal(served.status, 200);
      assert.equal(served.headers.get('cache-control'), 'private, max-age=31536000, immutable');
      assert.equal((await image(served)).meta.width, 384);
      const entries = srcSet.split(', ').map((entry: string) => entry.split(' '));
      assert.deepEqual(
        entries.map(([, width]: string[]) => width),
        ['128w', '384w', '1200w'],
      );
      for (const [url, width] of entries) {
        const response = await fetch(url);
        assert.equal((await image(response)).meta.width, Number(width.slice(0, -1)));
      }
      const publicOne = await app.gql('query($id: ID!) { asset(id: $id) { imageUrl(width: 64) } }', { id: gif });
      assert.match(
        publicOne.data.asset.imageUrl,
        new RegExp(`^${server.url}/download/${gif}\\?w=64&format=auto&v=[0-9a-f]{12}$`),
      );
      const none = await app.gql('query($id: ID!) { asset(id: $id) { imageUrl(width: 64) srcSet(widths: [64]) } }', {
        id: text,
      });
      assert.deepEqual(none.data.asset, { imageUrl: null, srcSet: null });
      const bad = await app.gql('query($id: ID!) { asset(id: $id) { imageUrl(width: 0) } }', { id: photo });
      assert.equal(bad.errors?.[0]?.extensions.code, 'BAD_USER_INPUT');
    });

    test('renditions go with their asset; a lost one is found by fsck and made again', async () => {
      const id = await upload(await picture(), 'doomed.jpg');
      await (await get(`/download/${id}?w=128&format=webp`)).arrayBuffer();
      const rows = await app.db
        .selectFrom('renditions')
        .selectAll()
        .where('asset_id', '=', Buffer.from(id, 'base64url').toString().split(':')[1])
        .execute();
      assert.equal(rows.length, 1);
      await app.blobs.delete(rows[0].blob_key);
      const found = await app.fsck({ repair: true });
      assert.deepEqual(found.missingRenditions, [{ assetId: rows[0].asset_id, key: rows[0].blob_key }]);
      const remade = await get(`/download/${id}?w=128&format=webp`);
      assert.equal(remade.status, 200);
      await remade.arrayBuffer();
      const [again] = await app.db
        .selectFrom('renditions')
        .selectAll()
        .where('asset_id', '=', rows[0].asset_id)
        .execute();
      assert.ok(await app.blobs.head(again.blob_key), 'made again');
      await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id, permanently: true }) { deletedId } }', { id });
      assert.ok(!(await storedKeys(app)).includes(again.blob_key), 'gone with its asset');
      assert.equal(
        (await app.db.selectFrom('renditions').select('variant').where('asset_id', '=', rows[0].asset_id).execute())
          .length,
        0,
      );
    });
  });

  describe('image renditions under a burst', () => {
    /** A 12-megapixel photo of noise, uploaded and processed: each rendition of it takes a while to make. */
    async function bigPhoto(app: TestApp): Promise<string> {
      const big = await sharp({
        create: {
          width: 4000,
          height: 3000,
          channels: 3,
          background: '#808080',
          noise: { type: 'gaussian', mean: 128, sigma: 60 },
        },
      })
        .jpeg()
        .toBuffer();
      const asset = await app.services.assets.upload(
        { orgId: 'acme', mode: 'live' },
        { stream: Readable.from([big]), filename: 'big.jpg' },
      );
      const id = Buffer.from(`Asset:${asset.id}`).toString('base64url');
      await processed(app, id);
      return id;
    }

    /**
     * Runs `body` on an app with one place for new renditions (RENDITION_QUEUE=1), taken by a
     * slow first transform (`first`, a 2048 px AVIF of `bigPhoto`) by the time `body` starts.
     */
    async function withPlaceTaken(
      env: Record<string, string>,
      body: (ctx: { app: TestApp; url: string; id: string; first: Promise<Response> }) => Promise<void>,
    ): Promise<void> {
      const app = await createTestApp({ RENDITION_QUEUE: '1', SWEEP_INTERVAL: '0', ...env });
      const server = await listen(app.handler);
      try {
        const id = await bigPhoto(app);
        const first = fetch(`${server.url}/download/${id}?w=2048&format=avif`, { headers: app.authHeaders });
        await waitFor(
          async () => app.services.renditions.inFlight,
          (n) => n === 1,
        );
        await body({ app, url: server.url, id, first });
      } finally {
        await server.close();
        await app.dispose();
      }
    }
    /** Resolves once `n` requests wait in line; fails at waitFor's deadline. */
    const inLine = (app: TestApp, n: number) =>
      waitFor(
        async () => app.services.renditions.waiting,
        (waiting) => waiting >= n,
      );

    test('new renditions past RENDITION_QUEUE wait in line and are answered; past the line they are refused at once', async () => {
      await withPlaceTaken({ RENDITION_QUEUE_WAIT: '120' }, async ({ app, url, id, first }) => {
        // The line holds 4 × RENDITION_QUEUE: four more new renditions wait for the one place.
        const widths = [64, 128, 256, 384];
        const waiting = widths.map((w) =>
          fetch(`${url}/download/${id}?w=${w}&format=png`, { headers: app.authHeaders }),
        );
        await inLine(app, widths.length);
        assert.equal(app.services.renditions.inFlight, 1, 'the waiting renditions have not started');
        const refused = await fetch(`${url}/download/${id}?w=512&format=png`, { headers: app.authHeaders });
        assert.equal(refused.status, 503);
        assert.equal(refused.headers.get('retry-after'), '1');
        assert.equal(((await refused.json()) as any).error.code, 'SERVICE_UNAVAILABLE');
        assert.equal((await first).status, 200);
        for (const [i, answer] of (await Promise.all(waiting)).entries()) {
          assert.equal(answer.status, 200, `w=${widths[i]}`);
          assert.equal(answer.headers.get('content-type'), 'image/png');
          const { width } = await sharp(Buffer.from(await answer.arrayBuffer())).metadata();
          assert.equal(width, widths[i]);
        }
        assert.equal(app.services.renditions.waiting, 0);
      });
    });

    test('a new rendition that waited RENDITION_QUEUE_WAIT in line is refused with 503', async () => {
      await withPlaceTaken({ RENDITION_QUEUE_WAIT: '200ms' }, async ({ app, url, id, first }) => {
        const asked = fetch(`${url}/download/${id}?w=64&format=png`, { headers: app.authHeaders });
        await inLine(app, 1);
        const refused = await asked;
        assert.equal(refused.status, 503);
        assert.equal(((await refused.json()) as any).error.code, 'SERVICE_UNAVAILABLE');
        assert.equal(app.services.renditions.inFlight, 1, 'refused while the first was still being made');
        assert.equal(app.services.renditions.waiting, 0, 'the refused request left the line');
        assert.equal((await first).status, 200);
      });
    });

    test('a new rendition whose caller went away while it waited in line leaves the line and is not made', async () => {
      await withPlaceTaken({ RENDITION_QUEUE_WAIT: '120' }, async ({ app, url, id, first }) => {
        const gone = new AbortController();
        const abandoned = fetch(`${url}/download/${id}?w=64&format=png`, {
          headers: app.authHeaders,
          signal: gone.signal,
        }).catch((error: Error) => error.name);
        await inLine(app, 1);
        gone.abort();
        assert.equal(await abandoned, 'AbortError');
        await waitFor(
          async () => app.services.renditions.waiting,
          (n) => n === 0,
        );
        assert.equal(app.services.renditions.inFlight, 1, 'left the line while the first was still being made');
        assert.equal((await first).status, 200);
        assert.equal(app.services.renditions.made, 1, 'nothing was made for the caller that went away');
      });
    });

    test('with RENDITION_QUEUE_WAIT=0, new renditions past RENDITION_QUEUE are refused with 503 and Retry-After, and the server keeps serving', async () => {
      await withPlaceTaken({ RENDITION_QUEUE_WAIT: '0' }, async ({ app, url, id, first }) => {
        const refused = await fetch(`${url}/download/${id}?w=64&format=png`, { headers: app.authHeaders });
        assert.equal(refused.status, 503);
        assert.equal(refused.headers.get('retry-after'), '1');
        assert.equal(((await refused.json()) as any).error.code, 'SERVICE_UNAVAILABLE');
        assert.equal((await first).status, 200);
        const later = await fetch(`${url}/download/${id}?w=64&format=png`, { headers: app.authHeaders });
        assert.equal(later.status, 200);
        await later.arrayBuffer();
      });
    });
  });
});
