import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import sharp from 'sharp';
import { HotRenditions } from '../src/services/delivery/hot-renditions.js';
import {
  createTestApp,
  DIALECTS,
  forEachDialect,
  freePort,
  listen,
  multipartForm,
  postMultipart,
  REDIS_URL,
  type TestApp,
  uploadTo,
  waitFor,
} from './helpers.js';

/** A small picture of one colour: its renditions are a few hundred bytes. */
const plain = (colour: string) =>
  sharp({ create: { width: 640, height: 480, channels: 3, background: colour } })
    .png()
    .toBuffer();

/** A picture of noise: its renditions are tens of kilobytes, too large to hold under a small budget. */
const noisy = () => {
  const pixels = Buffer.alloc(800 * 600 * 3);
  for (let i = 0; i < pixels.length; i += 1) pixels[i] = (i * 2654435761) >>> 24;
  return sharp(pixels, { raw: { width: 800, height: 600, channels: 3 } })
    .png()
    .toBuffer();
};

/** Statements that read an asset's or a rendition's row. */
const rowReads = (statements: string[]) => statements.filter((sql) => /"(assets|renditions)"/.test(sql));

/** The value of a gauge on /metrics. */
async function gauge(url: string, name: string): Promise<number> {
  const text = await (
    await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer a-metrics-token-for-the-test' } })
  ).text();
  const line = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  assert.ok(line, `${name} on /metrics`);
  return Number(line[1]);
}

/** The process's memory (heap and buffers) once what nothing holds is collected (finalizers run too). */
async function memoryInUse(): Promise<number> {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i += 1) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

forEachDialect((dialect) => {
  describe('warm renditions held in memory', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    let shift = 0;
    const get = (path: string, headers: Record<string, string> = app.authHeaders) =>
      fetch(`${server.url}${path}`, { headers });
    const update = (id: string, input: string) =>
      app.gql(`mutation($id: ID!) { updateAsset(input: { id: $id, ${input} }) { asset { id } } }`, { id });

    before(async () => {
      const port = await freePort();
      app = await createTestApp(
        {
          PUBLIC_URL: `http://127.0.0.1:${port}`,
          SWEEP_INTERVAL: '0',
          METRICS_TOKEN: 'a-metrics-token-for-the-test',
          // The longest: only a change of the asset (or the clock moved on) ends a hold in a test.
          RENDITION_HOT_TTL: '60',
          RENDITION_HOT_MAX: '256KiB',
          // An asset goes dark once it has handed out this many download URLs.
          MAX_DOWNLOAD_URLS_PER_ASSET: '2',
        },
        { clock: () => Date.now() + shift },
        dialect,
      );
      server = await listen(app.handler, undefined, port);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    test('asked again, a rendition is answered from memory: no row read, not even its blob, the same bytes and headers', async () => {
      const id = await uploadTo(app, await plain('#2266aa'), 'held.png');
      const path = `/download/${id}?w=128&format=webp`;
      let first!: Response;
      const cold = rowReads(await app.recordQueries(async () => (first = await get(path))));
      assert.equal(first.status, 200);
      assert.ok(cold.length >= 2, `the first request reads the asset and the rendition: ${cold.join('\n')}`);
      const bytes = Buffer.from(await first.arrayBuffer());
      assert.equal((await sharp(bytes).metadata()).width, 128);

      // Its row and blob gone behind the gateway's back: what is held still answers.
      const raw = Buffer.from(id, 'base64url').toString().replace('Asset:', '');
      const [row] = await app.db.selectFrom('renditions').selectAll().where('asset_id', '=', raw).execute();
      assert.ok(await app.blobs.delete(row.blob_key), 'the rendition had a blob');
      let again!: Response;
      const warm = rowReads(await app.recordQueries(async () => (again = await get(path))));
      assert.equal(again.status, 200);
      assert.deepEqual(warm, [], 'no row read for a held rendition');
      assert.deepEqual(Buffer.from(await again.arrayBuffer()), bytes);
      for (const name of ['etag', 'content-type', 'content-disposition', 'cache-control', 'content-length']) {
        assert.equal(again.headers.get(name), first.headers.get(name), name);
      }

      const etag = first.headers.get('etag')!;
      assert.equal((await get(path, { ...app.authHeaders, 'if-none-match': etag })).status, 304);
      const part = await get(path, { ...app.authHeaders, range: 'bytes=0-9' });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 0-9/${bytes.length}`);
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(0, 10));
      const head = await fetch(`${server.url}${path}`, { method: 'HEAD', headers: app.authHeaders });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(bytes.length));
      assert.ok((await gauge(server.url, 'assetgate_renditions_held')) >= 1);
    });

    test('format=auto: what is held for one Accept is not answered to another', async () => {
      const id = await uploadTo(app, await plain('#aa6622'), 'auto.png');
      const path = `/download/${id}?w=64`;
      const ask = async (accept: string | undefined) => {
        const response = await get(path, { ...app.authHeaders, ...(accept && { accept }) });
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('vary'), 'Accept');
        return (await sharp(Buffer.from(await response.arrayBuffer())).metadata()).format;
      };
      for (let round = 0; round < 2; round += 1) {
        assert.equal(await ask('image/avif,image/webp,*/*'), 'heif', `round ${round}: AVIF`);
        assert.equal(await ask('image/webp,*/*'), 'webp', `round ${round}: WebP`);
        assert.equal(await ask(undefined), 'png', `round ${round}: the original's format`);
      }
      assert.ok((await gauge(server.url, 'assetgate_renditions_held')) >= 3);
    });

    test('what is held goes only to callers who may see the asset', async () => {
      const id = await uploadTo(app, await plain('#aa2266'), 'private.png');
      const path = `/download/${id}?w=64&format=webp`;
      assert.equal((await get(path)).status, 200);
      assert.equal((await get(path)).status, 200, 'held now');

      const other = await app.createKey('globex');
      const foreign = await get(path, { authorization: `Bearer ${other}` });
      assert.equal(foreign.status, 404);
      assert.equal(await errorCode(foreign), 'NOT_FOUND');
      const anonymous = await get(path, {});
      assert.equal(anonymous.status, 404);
      assert.equal(await errorCode(anonymous), 'NOT_FOUND');
      const writeOnly = await app.createKey('acme', ['write:assets']);
      const refused = await get(path, { authorization: `Bearer ${writeOnly}` });
      assert.equal(refused.status, 403);
      assert.equal(await errorCode(refused), 'FORBIDDEN');
      const testMode = await app.createKey('acme', ['read:assets'], 'test');
      assert.equal((await get(path, { authorization: `Bearer ${testMode}` })).status, 404, 'another mode');

      // A key revoked on this gateway stops at once, held rendition or not.
      const reader = await app.services.apiKeys.create({ orgId: 'acme', mode: 'live', scopes: ['read:assets'] });
      assert.equal((await get(path, { authorization: `Bearer ${reader.key}` })).status, 200);
      await app.services.apiKeys.revoke(reader.record.id);
      const revoked = await get(path, { authorization: `Bearer ${reader.key}` });
      assert.equal(revoked.status, 401);
      assert.equal(await errorCode(revoked), 'UNAUTHENTICATED');
    });

    test('a change of the asset drops what is held at once: private again, trashed, new bytes', async () => {
      const id = await uploadTo(app, await plain('#22aa66'), 'public.png');
      const path = `/download/${id}?w=64&format=webp`;
      assert.equal((await update(id, 'isPublic: true')).status, 200);
      assert.equal((await get(path, {})).status, 200, 'public: anyone');
      assert.equal((await get(path, {})).status, 200, 'held for anyone');
      assert.equal((await update(id, 'isPublic: false')).status, 200);
      const hidden = await get(path, {});
      assert.equal(hidden.status, 404, 'private again: no longer for anyone');
      assert.equal(await errorCode(hidden), 'NOT_FOUND');

      const before = await get(path);
      assert.equal(before.status, 200);
      assert.equal((await get(path)).status, 200, 'held for its org');
      const replaced = await postMultipart(
        server.url,
        multipartForm(
          'mutation($id: ID!, $f: Upload!) { replaceAssetFile(input: { id: $id, file: $f }) { asset { id } } }',
          { id, f: null },
          [['variables.f', new Blob([await plain('#ffffff')]), 'white.png']],
        ),
        app.authHeaders,
      );
      assert.equal(replaced.status, 200, JSON.stringify(replaced.json));
      assert.equal(replaced.json.errors, undefined);
      const after = await get(path);
      assert.equal(after.status, 200);
      assert.notEqual(after.headers.get('etag'), before.headers.get('etag'), 'the new bytes, not what was held');
      const { dominant } = await sharp(Buffer.from(await after.arrayBuffer())).stats();
      assert.deepEqual(
        [dominant.r, dominant.g, dominant.b].map((c) => c > 240),
        [true, true, true],
      );

      assert.equal((await get(path)).status, 200, 'held again');
      const trashed = await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', { id });
      assert.equal(trashed.data.deleteAsset.deletedId, id);
      const gone = await get(path);
      assert.equal(gone.status, 404, 'trashed: gone at once');
      assert.equal(await errorCode(gone), 'NOT_FOUND');
    });

    test('an asset that hands out its last download URL is gone at once, held renditions too', async () => {
      const id = await uploadTo(app, await plain('#2266cc'), 'rare.png');
      assert.equal((await update(id, 'isPublic: true')).status, 200);
      const path = `/download/${id}?w=64&format=webp`;
      const mint = () => app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', { id });
      assert.equal((await mint()).errors, undefined);
      assert.equal((await get(path)).status, 200);
      assert.equal((await get(path, {})).status, 200, 'held for its org and for anyone');
      assert.equal((await mint()).errors, undefined, 'the last URL it hands out');
      for (const headers of [app.authHeaders, {}]) {
        const gone = await get(path, headers);
        assert.equal(gone.status, 404, 'used up: gone for whoever asks');
        assert.equal(await errorCode(gone), 'NOT_FOUND');
      }
    });

    test('a change this process cannot hear (straight in the database) reaches it within RENDITION_HOT_TTL', async () => {
      const id = await uploadTo(app, await plain('#6622aa'), 'unheard.png');
      const path = `/download/${id}?w=64&format=webp`;
      assert.equal((await get(path)).status, 200);
      const raw = Buffer.from(id, 'base64url').toString().replace('Asset:', '');
      await app.db.updateTable('assets').set({ trashed_at: new Date().toISOString() }).where('id', '=', raw).execute();
      assert.equal((await get(path)).status, 200, 'still held: nothing told this process');
      shift += 61_000;
      const gone = await get(path);
      assert.equal(gone.status, 404, 'past the TTL the rows are read again');
      assert.equal(await errorCode(gone), 'NOT_FOUND');
    });

    test('an anonymous caller cycling URLs never makes the process hold more than RENDITION_HOT_MAX; large renditions are not held', async () => {
      const id = await uploadTo(app, await plain('#aaaa22'), 'cycled.png');
      assert.equal((await update(id, 'isPublic: true')).status, 200);
      const budget = 256 * 1024;
      let highest = 0;
      // One rendition, a thousand spellings of its URL: each a new entry, none past the budget.
      for (let round = 0; round < 1000; round += 50) {
        const answers = await Promise.all(
          Array.from({ length: 50 }, (_, i) => get(`/download/${id}?w=64&format=webp&v=${round + i}`, {})),
        );
        assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
        highest = Math.max(highest, await gauge(server.url, 'assetgate_renditions_held_bytes'));
      }
      assert.ok(highest > budget * 0.9, `the budget was reached: ${highest}`);
      assert.ok(highest <= budget, `held ${highest} bytes, budget ${budget}`);

      // Larger than a sixteenth of the budget: sent from the store every time, never held.
      const big = await uploadTo(app, await noisy(), 'noise.png');
      const path = `/download/${big}?w=512&format=png`;
      const first = await get(path);
      assert.equal(first.status, 200);
      assert.ok(Buffer.from(await first.arrayBuffer()).length > budget / 16);
      const reads = rowReads(await app.recordQueries(async () => assert.equal((await get(path)).status, 200)));
      assert.ok(reads.length >= 2, 'asked again, its rows are read again');
    });
  });
});

describe(
  'two gateways on one Redis: a change through one drops what the other holds',
  { skip: !DIALECTS.includes('postgres') && 'TEST_DIALECTS has no postgres' },
  () => {
    let a: TestApp;
    let b: TestApp;
    let servers: Awaited<ReturnType<typeof listen>>[];

    before(async () => {
      a = await createTestApp({ REDIS_URL, RENDITION_HOT_TTL: '60' }, {}, 'postgres');
      b = await createTestApp(
        {
          REDIS_URL,
          RENDITION_HOT_TTL: '60',
          DATABASE_URL: a.config.databaseUrl!,
          BLOB_STORE: a.config.blobStore,
          DATA_DIR: a.dataDir,
        },
        {},
        'postgres',
      );
      servers = [await listen(a.handler), await listen(b.handler)];
    });
    after(async () => {
      for (const server of servers ?? []) await server.close();
      await b?.dispose();
      await a?.dispose();
    });

    test('trashed through one gateway, the asset is 404 on the other at once', async () => {
      const id = await uploadTo(a, await plain('#123456'), 'shared.png');
      const path = `/download/${id}?w=64&format=webp`;
      const viaB = () => fetch(`${servers[1].url}${path}`, { headers: a.authHeaders });
      assert.equal((await viaB()).status, 200);
      assert.equal((await viaB()).status, 200, 'held on b');
      const trashed = await a.gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', { id });
      assert.equal(trashed.data.deleteAsset.deletedId, id);
      // Redis carries the change in a moment; the TTL (a minute) could not end the hold in 5 s.
      const gone = await waitFor(viaB, (response) => response.status !== 200, 5_000);
      assert.equal(gone.status, 404);
      assert.equal(await errorCode(gone), 'NOT_FOUND');
    });
  },
);

describe('the hold itself', () => {
  const held = (assetId: string, size: number) => ({
    assetId,
    mimeType: 'image/webp',
    filename: 'x.webp',
    checksum: 'sha256:00',
    cacheControl: 'private, no-cache',
    headers: {},
    bytes: Buffer.alloc(size),
  });

  test('renditions read to be held take at most a quarter of the budget at once (slow clients too); past it they stream', () => {
    const hot = new HotRenditions({ maxBytes: 64 * 1024, ttlMs: 60_000, clock: () => 0 });
    assert.equal(hot.claim(4097), null, 'larger than a sixteenth: never read to be held');
    const rooms = [hot.claim(4096), hot.claim(4096), hot.claim(4096), hot.claim(4096)];
    assert.ok(rooms.every(Boolean), 'four of 4 KiB: a quarter of 64 KiB');
    assert.equal(hot.usage.filling, 16 * 1024);
    assert.equal(hot.claim(1), null, 'the quarter is taken: the next is streamed');
    rooms[0]!();
    rooms[0]!();
    assert.equal(hot.usage.filling, 12 * 1024, 'given back once, however often it is called');
    assert.ok(hot.claim(4096), 'room again');
  });

  test('a fill begun before its asset changed is refused; one begun after is kept', () => {
    const hot = new HotRenditions({ maxBytes: 1 << 20, ttlMs: 60_000, clock: () => 0 });
    const before = hot.mark();
    hot.forget('a');
    hot.set('k', held('a', 10), before);
    assert.equal(hot.get('k'), undefined, 'read before the change: may be stale');
    hot.set('k', held('a', 10), hot.mark());
    assert.equal(hot.get('k')?.bytes.length, 10);
    hot.set('other', held('b', 10), before);
    assert.ok(hot.get('other'), 'another asset changed: not this one');
  });

  test('a fill older than the changes it remembers is refused rather than trusted', () => {
    const hot = new HotRenditions({ maxBytes: 1 << 20, ttlMs: 60_000, clock: () => 0 });
    const old = hot.mark();
    for (let i = 0; i < 2000; i += 1) hot.forget(`asset-${i}`);
    hot.set('k', held('untouched', 10), old);
    assert.equal(hot.get('k'), undefined);
  });

  test('what tiny renditions cost the process, strings and records too, stays within the budget', async () => {
    const budget = 4 * 1024 * 1024;
    const hot = new HotRenditions({ maxBytes: budget, ttlMs: 60_000, clock: () => 0 });
    const before = await memoryInUse();
    // As the route fills it: strings of their own per answer, bytes of their own, one long URL per key.
    for (let i = 0; i < 40_000; i += 1) {
      const entry = {
        ...held(`asset-${'0'.repeat(30)}`.slice(0, 36), 0),
        filename: `tiny-${i}-16x12.webp`,
        checksum: `sha256:${i.toString(16).padStart(64, '0')}`,
        bytes: Buffer.from(`${i}`.padStart(40, '0')),
      };
      hot.set(` w /download/QXNzZXQ6${'x'.repeat(48)}?w=16&format=webp&v=${i}`, entry, hot.mark());
    }
    assert.ok(hot.usage.bytes > budget * 0.9, 'the budget was reached');
    const { entries } = hot.usage;
    const full = await memoryInUse();
    hot.forget(`asset-${'0'.repeat(30)}`.slice(0, 36));
    assert.equal(hot.usage.entries, 0);
    const taken = full - (await memoryInUse());
    assert.ok(full - before >= taken * 0.5, 'measured what it took');
    assert.ok(taken <= budget * 1.25, `${entries} entries took ${taken} bytes, the budget is ${budget}`);
  });

  test('entries expire, the least recently used goes first, and none is larger than a sixteenth of the budget', async () => {
    let now = 0;
    const hot = new HotRenditions({ maxBytes: 16 * 1024, ttlMs: 1000, clock: () => now });
    hot.set('big', held('a', 1025), hot.mark());
    assert.equal(hot.get('big'), undefined, 'past 1 KiB of a 16 KiB budget');
    for (let i = 0; i < 20; i += 1) hot.set(`k${i}`, held(`a${i}`, 1000), hot.mark());
    assert.ok(hot.usage.bytes <= 16 * 1024, `${hot.usage.bytes}`);
    assert.equal(hot.get('k0'), undefined, 'the oldest went');
    assert.ok(hot.get('k19'));
    now = 1000;
    assert.equal(hot.get('k19'), undefined, 'expired');
  });
});
