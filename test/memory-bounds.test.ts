/**
 * The memory knobs reach what they bound: SQLite's page cache, the extraction workers'
 * idle exit, and the collection once the gateway goes quiet. Sizes over time are measured
 * by `npm run bench:soak`, not here.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { sql } from 'kysely';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createDatabase } from '../src/db/database.js';
import { ConfigError } from '../src/errors.js';
import { createExtractPool } from '../src/jobs/extract-pool.js';
import { createIdleGc, fullCollection } from '../src/observability/idle-gc.js';
import { tempDir } from './helpers.js';

const folder = tempDir('assetgate-memory-');
after(folder.remove);

test('the memory variables have bounded defaults, accept units and name themselves when wrong', () => {
  const defaults = loadConfig({}, '/srv/app');
  assert.equal(defaults.sqliteCacheSize, 8 * 1024 ** 2);
  assert.equal(defaults.extractIdleTimeout, 10);
  assert.equal(defaults.idleGcDelay, 10);
  const set = loadConfig({ SQLITE_CACHE_SIZE: '2MiB', EXTRACT_IDLE_TIMEOUT: '250ms', IDLE_GC_DELAY: '0' }, '/srv/app');
  assert.equal(set.sqliteCacheSize, 2 * 1024 ** 2);
  assert.equal(set.extractIdleTimeout, 0.25);
  assert.equal(set.idleGcDelay, 0);
  for (const variable of ['SQLITE_CACHE_SIZE', 'EXTRACT_IDLE_TIMEOUT', 'IDLE_GC_DELAY']) {
    assert.throws(
      () => loadConfig({ [variable]: 'lots' }),
      (error: unknown) => error instanceof ConfigError && error.variable === variable,
    );
  }
});

test('SQLITE_CACHE_SIZE is the page cache of the serving connection', async () => {
  const app = await createApp(
    loadConfig({
      DATA_DIR: path.join(folder.dir, 'app'),
      PUBLIC_URL: 'http://assets.test',
      LOG_LEVEL: 'silent',
      JOB_CONCURRENCY: '0',
      SWEEP_INTERVAL: '0',
      SQLITE_CACHE_SIZE: '3MiB',
    }),
  );
  try {
    const { rows } = await sql<{ cache_size: number }>`pragma cache_size`.execute(app.db);
    // Negative: KiB. better-sqlite3's own default is -16000.
    assert.deepEqual(rows, [{ cache_size: -3072 }]);
    // GraphiQL's bundle, no longer loaded at start, is there on the first visit.
    const page = await app.yoga.fetch('http://assets.test/graphql', { headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /assetgate GraphiQL[\s\S]*YogaGraphiQL/);
  } finally {
    await app.close();
  }
  const db = createDatabase({ url: `sqlite:${path.join(folder.dir, 'default.db')}` });
  try {
    const { rows } = await sql<{ cache_size: number }>`pragma cache_size`.execute(db);
    assert.deepEqual(rows, [{ cache_size: -8192 }]);
  } finally {
    await db.destroy();
  }
});

test(
  'an idle extraction worker exits after EXTRACT_IDLE_TIMEOUT and a new one serves the next job',
  { timeout: 20_000 },
  async () => {
    const file = path.join(folder.dir, 'square.png');
    await sharp({ create: { width: 64, height: 64, channels: 3, background: '#3a6ea5' } })
      .png()
      .toFile(file);
    const pool = createExtractPool({ threads: 1, timeoutMs: 30_000, memoryMb: 128, idleTimeoutMs: 200 });
    after(() => pool.close());
    const extractOnce = () =>
      pool.run({
        path: file,
        mimeType: 'image/png',
        type: 'IMAGE',
        maxImagePixels: 1e8,
        maxPdfPagesForWords: 1,
      });
    for (let round = 0; round < 2; round++) {
      const result = await extractOnce();
      assert.equal(result.width, 64);
      assert.equal(pool.threads, 1, 'the worker that ran the job is alive');
      // No deadline asserted: with the timeout ignored, this waits until the test times out.
      while (pool.threads > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await rm(file);
  },
);

test(
  'one collection follows each quiet period after requests begin or end, none when nothing came',
  { timeout: 20_000 },
  async () => {
    let collected = 0;
    let onCollect = () => {};
    const gc = createIdleGc({
      quietMs: 40,
      collect: () => {
        collected += 1;
        onCollect();
      },
    });
    // The collector's timer does not hold the process open (unref); this test does.
    const alive = setInterval(() => {}, 1000);
    after(() => {
      gc.stop();
      clearInterval(alive);
    });
    // Five quiet periods (40 ms) pass: a collection that was due would have come.
    const tick = () => new Promise((resolve) => setTimeout(resolve, 200));
    await tick();
    assert.equal(collected, 0, 'no request, nothing to give back');

    const response = new EventEmitter();
    let done = new Promise<void>((resolve) => (onCollect = resolve));
    gc.track(response);
    await done;
    await tick();
    assert.equal(collected, 1, 'one collection per quiet period, even with a request still open (a stream)');
    done = new Promise<void>((resolve) => (onCollect = resolve));
    response.emit('close');
    await done;
    assert.equal(gc.collections, 2, 'the end of a request is activity too');

    const off = createIdleGc({
      quietMs: 0,
      collect: () => {
        throw new Error('IDLE_GC_DELAY=0 collects nothing');
      },
    });
    off.track(new EventEmitter());
    await tick();
    off.stop();
  },
);

test('the collection it runs is a full one: garbage in the old generation is given back', () => {
  const collect = fullCollection();
  assert.equal((globalThis as { gc?: unknown }).gc, undefined, 'no global gc() is left for scripts');
  collect();
  // Survives two scavenges, so it sits in the old generation, then becomes garbage.
  let garbage: number[][] | null = Array.from({ length: 2000 }, () => Array.from({ length: 2000 }, (_, i) => i + 0.5));
  collect();
  const held = process.memoryUsage().heapUsed;
  assert.equal(garbage.length, 2000);
  garbage = null;
  collect();
  const after = process.memoryUsage().heapUsed;
  assert.ok(held - after > 20 * 1024 ** 2, `${((held - after) / 1024 ** 2).toFixed(1)} MiB given back`);
});
