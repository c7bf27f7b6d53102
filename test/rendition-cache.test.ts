import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import {
  assertConsistent,
  createTestApp,
  forEachDialect,
  listen,
  processed,
  storedKeys,
  type TestApp,
} from './helpers.js';

/** Cache bounds small enough that a flood passes them many times over. */
const BUDGET = 320 * 1024;
const PER_ASSET = 4;
const ANON_RATE = 12;

/** A 1200×900 photo-like JPEG: gradient and grain, so renditions weigh what photos do. */
async function photo(seed: string): Promise<Buffer> {
  return sharp({
    create: {
      width: 1200,
      height: 900,
      channels: 3,
      background: seed,
      noise: { type: 'gaussian', mean: 128, sigma: 30 },
    },
  })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** Distinct rendition queries, varying every parameter a URL may carry. */
function floodQueries(count: number): string[] {
  const fits = ['cover', 'contain', 'inside', 'fill'];
  const formats = ['webp', 'jpeg', 'avif'];
  return Array.from({ length: count }, (_, i) => {
    const query = new URLSearchParams({
      w: String(40 + ((i * 37) % 480)),
      q: String(1 + ((i * 13) % 100)),
      fit: fits[i % fits.length],
      format: formats[(i >> 2) % formats.length],
      dpr: ['1', '1.5', '2'][i % 3],
    });
    if (i % 2) query.set('h', String(30 + ((i * 29) % 400)));
    return query.toString();
  });
}

forEachDialect(() => {
  describe('renditions are a bounded cache', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    let assets: string[];

    const get = (path: string, headers: Record<string, string> = {}) => fetch(`${server.url}${path}`, { headers });
    const kept = async () => {
      const rows = await app.db.selectFrom('renditions').select(['asset_id', 'blob_key', 'size']).execute();
      const perAsset = new Map<string, number>();
      for (const row of rows) perAsset.set(row.asset_id, (perAsset.get(row.asset_id) ?? 0) + 1);
      return {
        rows,
        bytes: rows.reduce((sum, row) => sum + Number(row.size), 0),
        most: Math.max(0, ...perAsset.values()),
      };
    };
    /** No row without its blob, no rendition blob without its row. */
    const consistent = async () => {
      const { rows } = await kept();
      const renditionBlobs = (await storedKeys(app)).filter((key) => /\.r[0-9a-f]+$/.test(key));
      assert.deepEqual(renditionBlobs, rows.map((row) => row.blob_key).sort());
    };

    before(async () => {
      app = await createTestApp({
        SWEEP_INTERVAL: '0',
        // The cache in the store, not the warm renditions held in memory above it (hot-renditions).
        RENDITION_HOT_TTL: '0',
        IMAGE_WIDTHS: '64,128,256,384,512',
        RENDITION_CACHE_MAX: `${BUDGET / 1024}KiB`,
        RENDITION_MAX_PER_ASSET: String(PER_ASSET),
        RENDITION_ANON_RATE: String(ANON_RATE),
      });
      server = await listen(app.handler);
      assets = [];
      for (const [name, seed] of [
        ['harbour.jpg', '#406080'],
        ['field.jpg', '#608040'],
      ]) {
        const asset = await app.services.assets.upload(
          { orgId: 'acme', mode: 'live' },
          { stream: Readable.from([await photo(seed)]), filename: name },
        );
        const id = Buffer.from(`Asset:${asset.id}`).toString('base64url');
        await processed(app, id);
        await app.gql('mutation($id: ID!) { updateAsset(input: { id: $id, isPublic: true }) { asset { id } } }', {
          id,
        });
        assets.push(id);
      }
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    test('q snaps to 50, 75 or 90: a hundred qualities make three renditions', async () => {
      const made = app.services.renditions.made;
      const etags = new Set<string>();
      for (let q = 1; q <= 100; q += 3) {
        const response = await get(`/download/${assets[0]}?w=64&format=webp&q=${q}`, app.authHeaders);
        assert.equal(response.status, 200);
        await response.arrayBuffer();
        etags.add(response.headers.get('etag')!);
      }
      assert.equal(app.services.renditions.made - made, 3, 'one transform per quality step');
      assert.equal(etags.size, 3);
    });

    test('a key past RENDITION_MAX_PER_ASSET and RENDITION_CACHE_MAX: bounded, least recently used first', async () => {
      const first = `/download/${assets[1]}?w=128&format=jpeg&q=75`;
      const original = await get(first, app.authHeaders);
      const bytes = Buffer.from(await original.arrayBuffer());
      for (const query of floodQueries(24)) {
        for (const id of assets) {
          const response = await get(`/download/${id}?${query}`, app.authHeaders);
          assert.equal(response.status, 200, query);
          await response.arrayBuffer();
        }
      }
      const state = await kept();
      assert.ok(state.bytes <= BUDGET, `kept ${state.bytes} bytes, budget ${BUDGET}`);
      assert.ok(state.most <= PER_ASSET, `kept ${state.most} renditions of one asset, cap ${PER_ASSET}`);
      await consistent();
      const usage = await app.gql('{ viewer { usage { renditionBytes renditionCount } } }');
      assert.equal(usage.status, 200);
      assert.deepEqual(usage.data.viewer.usage, { renditionBytes: state.bytes, renditionCount: state.rows.length });

      // The first was the least recently used: evicted, and made again on demand, the same bytes.
      const made = app.services.renditions.made;
      const again = await get(first, app.authHeaders);
      assert.equal(again.status, 200);
      assert.deepEqual(Buffer.from(await again.arrayBuffer()), bytes);
      assert.equal(again.headers.get('etag'), original.headers.get('etag'));
      assert.equal(app.services.renditions.made, made + 1, 'it had been evicted');
    });

    test('a rendition whose blob went between finding its row and sending it is made again, not a 500', async () => {
      const path = `/download/${assets[0]}?w=256&format=jpeg&q=90`;
      const first = await get(path, app.authHeaders);
      const bytes = Buffer.from(await first.arrayBuffer());
      const row = await app.db
        .selectFrom('renditions')
        .selectAll()
        .where('checksum', '=', `sha256:${first.headers.get('etag')!.slice(1, -1)}`)
        .executeTakeFirstOrThrow();
      await app.blobs.delete(row.blob_key); // what an eviction by another gateway does after its row step
      const again = await get(path, app.authHeaders);
      assert.equal(again.status, 200);
      assert.deepEqual(Buffer.from(await again.arrayBuffer()), bytes);
      await consistent();
    });

    test('an anonymous flood: 200, 304 or 429 with Retry-After, never 5xx; the bounds hold; the server answers', async () => {
      const kept1 = `/download/${assets[0]}?w=64&format=webp&q=50`;
      assert.equal((await get(kept1)).status, 200, 'kept before the flood');
      const statuses = new Map<number, number>();
      let healthy = false;
      const queries = floodQueries(120).map((query, i) => `/download/${assets[i % 2]}?${query}`);
      for (let i = 0; i < queries.length; i += 6) {
        const batch = queries.slice(i, i + 6).map(async (path) => {
          const response = await get(path);
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          if (response.status === 429) {
            assert.match(response.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
            assert.equal(((await response.json()) as any).error.code, 'RATE_LIMITED');
          } else await response.arrayBuffer();
        });
        if (i === 60) {
          batch.push(
            get('/healthz').then(async (response) => {
              healthy = response.status === 200 && ((await response.json()) as any).ok === true;
            }),
          );
        }
        await Promise.all(batch);
      }
      assert.ok(healthy, '/healthz answered during the flood');
      assert.deepEqual(
        [...statuses.keys()].filter((status) => ![200, 304, 429].includes(status)),
        [],
        JSON.stringify(Object.fromEntries(statuses)),
      );
      assert.ok((statuses.get(429) ?? 0) > 0, 'new transforms past RENDITION_ANON_RATE are refused');
      const state = await kept();
      assert.ok(state.bytes <= BUDGET, `kept ${state.bytes} bytes, budget ${BUDGET}`);
      assert.ok(state.most <= PER_ASSET, `kept ${state.most} renditions of one asset, cap ${PER_ASSET}`);
      await consistent();
      // Rate-limited, the same client is still served what is kept, and a key is not limited.
      assert.equal((await get(`/download/${assets[0]}?w=512&format=png`)).status, 429);
      // A key of another org, or of the asset's org in test mode, is bounded like no key.
      for (const key of [await app.createKey('globex'), await app.createKey('acme', undefined, 'test')]) {
        const foreign = await get(`/download/${assets[0]}?w=512&format=png`, { authorization: `Bearer ${key}` });
        assert.equal(foreign.status, 429);
        assert.equal(((await foreign.json()) as any).error.code, 'RATE_LIMITED');
      }
      assert.equal((await get(`/download/${assets[0]}?w=512&format=png`, app.authHeaders)).status, 200);
      const served = await get(`/download/${assets[0]}?w=512&format=png`);
      assert.equal(served.status, 200, 'kept now: served without a key too');
      await served.arrayBuffer();
    });
  });

  test('least recently used, not least recently made: a rendition served again outlives a younger one', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const app = await createTestApp(
      // Every request reaches the cache in the store: nothing held in memory above it.
      { SWEEP_INTERVAL: '0', RENDITION_MAX_PER_ASSET: '2', RENDITION_HOT_TTL: '0' },
      { clock: () => now },
    );
    const server = await listen(app.handler);
    try {
      const asset = await app.services.assets.upload(
        { orgId: 'acme', mode: 'live' },
        { stream: Readable.from([await photo('#804060')]), filename: 'lru.jpg' },
      );
      const id = Buffer.from(`Asset:${asset.id}`).toString('base64url');
      await processed(app, id);
      const fetchAt = async (minutes: number, w: number) => {
        now += minutes * 60_000;
        const response = await fetch(`${server.url}/download/${id}?w=${w}&format=webp`, { headers: app.authHeaders });
        assert.equal(response.status, 200);
        await response.arrayBuffer();
      };
      await fetchAt(0, 64); // A
      await fetchAt(2, 128); // B
      await fetchAt(2, 64); // A served again: now the more recently used
      await fetchAt(2, 256); // C: past the cap of 2, one goes
      const widths = (await app.db.selectFrom('renditions').select('width').where('asset_id', '=', asset.id).execute())
        .map((row) => row.width)
        .sort((a, b) => a - b);
      assert.deepEqual(widths, [64, 256], 'B, used least recently, was evicted');
      await assertConsistent(app); // and its blob went with its row
    } finally {
      await server.close();
      await app.dispose();
    }
  });
});
