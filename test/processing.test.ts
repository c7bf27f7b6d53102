import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { CompiledQuery } from 'kysely';
import sharp from 'sharp';
import { jobHandlersOf } from '../src/app.js';
import { createJobRunner } from '../src/jobs/job-runner.js';
import { createTestApp, listen, png as samplePng, processed, type TestApp, forEachDialect } from './helpers.js';
import { imageSamples, jpegWithExif, mp4, pdfWithText, pixelBomb, screenSizedGif, wav } from './samples.js';

forEachDialect(() => {
  const FIELDS = `id status failureReason type mimeType width height pageCount wordCount duration thumbnailUrl
  metadata { format hasAlpha dominantColor placeholder documentTitle author codec container bitRate sampleRate channels lineCount
    thumbnails { size width height url } }`;

  const gid = (id: string) => Buffer.from(`Asset:${id}`).toString('base64url');

  describe('processing: what is extracted', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    const tenant = { orgId: 'acme', mode: 'live' as const };
    before(async () => {
      app = await createTestApp({ THUMBNAIL_SIZES: '16,64' });
      server = await listen(app.handler);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    async function process(bytes: Buffer, filename: string) {
      const row = await app.services.assets.upload(tenant, { stream: Readable.from([bytes]), filename });
      assert.equal(row.status, 'PROCESSING');
      return processed(app, gid(row.id), FIELDS);
    }

    test('images of every format: size, format, placeholder, thumbnails', async () => {
      for (const [name, make] of Object.entries(imageSamples)) {
        const asset = await process(await make(), name);
        assert.equal(asset.status, 'READY', `${name}: ${asset.failureReason}`);
        assert.equal(asset.type, 'IMAGE', name);
        const expected = name === 'favicon.ico' ? [16, 16] : [30, 20];
        assert.deepEqual([asset.width, asset.height], expected, name);
        if (name === 'old.bmp' || name === 'favicon.ico') {
          assert.deepEqual(asset.metadata.thumbnails, [], `${name}: header only, no decoder`);
          continue;
        }
        assert.match(asset.metadata.dominantColor, /^#[0-9a-f]{6}$/, name);
        assert.ok(Buffer.from(asset.metadata.placeholder, 'base64').length > 5, name);
        assert.deepEqual(
          asset.metadata.thumbnails.map((t: any) => t.size),
          [16, 64],
          name,
        );
        const big = asset.metadata.thumbnails[1];
        assert.deepEqual([big.width, big.height], [30, 20], `${name}: never enlarged`);
      }
    });

    test('the dominant colour is the colour most of the picture has, exactly', async () => {
      // Two thirds a flat blue, one third red: blue, to the last bit.
      const bytes = await sharp({ create: { width: 60, height: 30, channels: 3, background: '#2a5bd7' } })
        .composite([
          { input: { create: { width: 20, height: 30, channels: 3, background: '#e01010' } }, left: 40, top: 0 },
        ])
        .png()
        .toBuffer();
      const asset = await process(bytes, 'flags.png');
      assert.equal(asset.status, 'READY', asset.failureReason);
      assert.equal(asset.metadata.dominantColor, '#2a5bd7');
    });

    test('EXIF orientation is honoured and thumbnails carry no EXIF (no location)', async () => {
      const asset = await process(await jpegWithExif(), 'phone.jpg');
      assert.equal(asset.status, 'READY', asset.failureReason);
      assert.deepEqual([asset.width, asset.height], [20, 40], 'rotated by 90°');
      assert.equal(asset.metadata.format, 'jpeg');
      const thumbnail = await fetch(
        server.url + new URL(asset.thumbnailUrl).pathname + new URL(asset.thumbnailUrl).search,
        {
          headers: app.authHeaders,
        },
      );
      assert.equal(thumbnail.status, 200);
      assert.equal(thumbnail.headers.get('content-type'), 'image/webp');
      const meta = await sharp(Buffer.from(await thumbnail.arrayBuffer())).metadata();
      assert.equal(meta.exif, undefined);
      assert.deepEqual([meta.width, meta.height], [8, 16]);
    });

    test('PNG alpha is reported', async () => {
      const asset = await process(await imageSamples['pic.webp'](), 'a.webp');
      assert.equal(asset.metadata.hasAlpha, true);
    });

    test('PDF: pages, words, title and author', async () => {
      const asset = await process(pdfWithText(3), 'report.pdf');
      assert.equal(asset.status, 'READY', asset.failureReason);
      assert.equal(asset.pageCount, 3);
      assert.equal(asset.wordCount, 12);
      assert.equal(asset.metadata.documentTitle, 'Quarterly Report');
      assert.equal(asset.metadata.author, 'Ada Lovelace');
    });

    test('audio: duration, codec, sample rate, bit rate', async () => {
      const asset = await process(wav(2.5, 8000), 'tone.wav');
      assert.equal(asset.status, 'READY', asset.failureReason);
      assert.equal(asset.type, 'AUDIO');
      assert.equal(asset.duration, 2.5);
      assert.equal(asset.metadata.sampleRate, 8000);
      assert.equal(asset.metadata.channels, 1);
      assert.equal(asset.metadata.bitRate, 128000);
    });

    test(
      'video: duration, codec and frame size from the container',
      { skip: !existsSync(new URL('./fixtures/clip.mp4', import.meta.url)) && 'no fixture' },
      async () => {
        const asset = await process(mp4(), 'clip.mp4');
        assert.equal(asset.status, 'READY', asset.failureReason);
        assert.equal(asset.type, 'VIDEO');
        assert.ok(Math.abs(asset.duration - 1) < 0.1, String(asset.duration));
        assert.deepEqual([asset.width, asset.height], [64, 48]);
        assert.match(asset.metadata.codec, /AVC|avc|H\.?264/i);
      },
    );

    test('text and data: word and line counts', async () => {
      const cases: [string, string, number, number][] = [
        ['notes.txt', 'one two three\nfour five\n', 5, 2],
        ['README.md', '# Title\n\nSome *markdown* text', 5, 3],
        ['table.csv', 'a,b\n1,2\n3,4\n', 3, 3],
        ['data.json', '{"key": "value", "n": [1, 2]}', 5, 1],
      ];
      for (const [name, content, words, lines] of cases) {
        const asset = await process(Buffer.from(content), name);
        assert.equal(asset.status, 'READY', name);
        assert.equal(asset.wordCount, words, name);
        assert.equal(asset.metadata.lineCount, lines, name);
      }
    });

    test('a 3000-frame GIF of tiny frames on a 4000×4000 screen is READY at 4000×4000', async () => {
      const row = await app.services.assets.upload(tenant, {
        stream: Readable.from([screenSizedGif(4000, 4000, 3000)]),
        filename: 'screen.gif',
      });
      const asset = await processed(app, gid(row.id), 'status failureReason mimeType width height thumbnailUrl');
      assert.deepEqual(
        { ...asset, thumbnailUrl: typeof asset.thumbnailUrl },
        {
          status: 'READY',
          failureReason: null,
          mimeType: 'image/gif',
          width: 4000,
          height: 4000,
          thumbnailUrl: 'string',
        },
      );
    });

    test('bytes with nothing to read are READY without a worker', async () => {
      const asset = await process(Buffer.from([0, 1, 2, 3, 250, 251]), 'blob.bin');
      assert.equal(asset.status, 'READY');
      assert.equal(asset.type, 'OTHER');
    });

    test('reprocessAsset runs extraction again', async () => {
      const row = await app.services.assets.upload(tenant, {
        stream: Readable.from([pdfWithText(1)]),
        filename: 'r.pdf',
      });
      await processed(app, gid(row.id));
      const result = await app.gql('mutation($id: ID!) { reprocessAsset(input: { id: $id }) { asset { status } } }', {
        id: gid(row.id),
      });
      assert.equal(result.data.reprocessAsset.asset.status, 'PROCESSING');
      assert.equal((await processed(app, gid(row.id), 'status pageCount')).pageCount, 1);
    });
  });

  describe('processing: hostile files end FAILED and the server keeps serving', () => {
    let app: TestApp;
    const tenant = { orgId: 'acme', mode: 'live' as const };
    before(async () => {
      app = await createTestApp({ EXTRACT_TIMEOUT: '300ms', MAX_IMAGE_PIXELS: '1000000' });
      // The cap times the worker too: start one (on a fresh checkout it compiles and loads its
      // parsers first, which can take longer than 300 ms) before the timed cases.
      await process(samplePng(4, 4), 'warm-up.png');
    });
    after(() => app.dispose());

    async function process(bytes: Buffer, filename: string) {
      const row = await app.services.assets.upload(tenant, { stream: Readable.from([bytes]), filename });
      return processed(app, gid(row.id), 'status failureReason type size');
    }

    test('a pixel bomb is refused unread', async () => {
      // Refused by the size its header declared at upload: no worker is asked.
      const pool = (app.services.processing as any).options.pool;
      const run = pool.run;
      let asked = 0;
      pool.run = (request: unknown) => ((asked += 1), run.call(pool, request));
      let asset;
      try {
        asset = await process(pixelBomb(), 'bomb.png');
      } finally {
        pool.run = run;
      }
      assert.equal(asked, 0, 'no worker was asked');
      assert.equal(asset.status, 'FAILED');
      assert.match(asset.failureReason, /pixel/i);
      assert.match(asset.failureReason, /100000×100000/, 'judged by the size its header declares');
    });

    test('a GIF whose logical screen is over MAX_IMAGE_PIXELS is refused unread, however small its frames', async () => {
      const asset = await process(screenSizedGif(4000, 4000, 3), 'screen.gif');
      assert.equal(asset.status, 'FAILED');
      assert.match(asset.failureReason, /4000×4000/);
    });

    test('a truncated PDF, and PNG magic followed by garbage', async () => {
      const truncated = await process(pdfWithText(2).subarray(0, 120), 'cut.pdf');
      assert.equal(truncated.status, 'FAILED', 'truncated pdf');
      // A valid PNG header and size, then pixel data that is not zlib at all.
      const broken = Buffer.from(samplePng(30, 20));
      const idat = broken.indexOf('IDAT');
      broken.fill(0x5a, idat + 4, broken.indexOf('IEND') - 8);
      const garbage = await process(broken, 'broken.png');
      assert.equal(garbage.type, 'IMAGE');
      assert.equal(garbage.status, 'FAILED', 'png with garbage pixels');
      // Bytes no format claims are OTHER, whatever the name: nothing to parse, nothing to fail.
      const noise = await process(
        Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.alloc(200, 7)]),
        'noise.png',
      );
      assert.deepEqual([noise.type, noise.status], ['OTHER', 'READY']);
    });

    test('garbage with a media extension is judged by its bytes', async () => {
      const asset = await process(Buffer.from('definitely not audio'.repeat(10)), 'song.mp3');
      assert.equal(asset.type, 'DOCUMENT', 'it is text');
      assert.equal(asset.status, 'READY');
    });

    test('a file that keeps a parser busy past the time cap', async () => {
      const words = Buffer.from('lorem ipsum dolor sit amet '.repeat(4_000_000)); // ~108 MB of text
      const asset = await process(words, 'huge.txt');
      assert.equal(asset.status, 'FAILED');
      assert.match(asset.failureReason, /longer than 300 ms/);
    });

    test('after all of that the server still answers', async () => {
      const result = await app.gql('{ assets(first: 1) { totalCount } }');
      assert.equal(result.errors, undefined);
      assert.ok(result.data.assets.totalCount >= 4);
    });
  });

  describe('jobs survive a crash', () => {
    test('a job whose worker died is taken again after its lease and finished', async () => {
      let now = Date.parse('2026-05-01T00:00:00Z');
      const app = await createTestApp({}, { clock: () => now, runJobs: false });
      try {
        const tenant = { orgId: 'acme', mode: 'live' as const };
        const row = await app.services.assets.upload(tenant, {
          stream: Readable.from([pdfWithText(2)]),
          filename: 'r.pdf',
        });
        // A worker claims the job and dies: no completion, no heartbeat.
        const claimed = await app.repositories.jobs.claim(
          'dead-worker',
          new Date(now).toISOString(),
          new Date(now + 60_000).toISOString(),
        );
        assert.equal(claimed?.asset_id, row.id);
        const restarted = createJobRunner({
          jobs: app.repositories.jobs,
          handlers: jobHandlersOf(app.services),
          onGiveUp: (job, error) => app.services.processing.giveUp(job, error),
          concurrency: 1,
          clock: () => now,
          logError: (error) => assert.fail(String(error)),
        });
        restarted.start();
        await restarted.idle();
        assert.equal(
          (await app.repositories.assets.findByIdAnyTenant(row.id))?.status,
          'PROCESSING',
          'the lease still holds',
        );
        now += 61_000;
        await restarted.idle();
        await restarted.stop();
        const done = await app.repositories.assets.findByIdAnyTenant(row.id);
        assert.equal(done?.status, 'READY');
        assert.equal(done?.page_count, 2);
        const job = await app.repositories.jobs.find(claimed!.id);
        assert.equal(job?.status, 'done');
        assert.equal(job?.attempts, 2);
      } finally {
        await app.dispose();
      }
    });

    test('a failing job is retried with backoff, then gives up into FAILED', async () => {
      let now = Date.parse('2026-05-01T00:00:00Z');
      const app = await createTestApp({}, { clock: () => now, runJobs: false });
      try {
        const row = await app.services.assets.upload(
          { orgId: 'acme', mode: 'live' },
          { stream: Readable.from([Buffer.from('x y')]), filename: 'a.txt' },
        );
        const attempts: number[] = [];
        const runner = createJobRunner({
          jobs: app.repositories.jobs,
          handlers: {
            ...jobHandlersOf(app.services),
            extract: async (job) => {
              attempts.push(job.attempts);
              throw new Error('store unavailable');
            },
            import: async () => undefined,
          },
          onGiveUp: (job, error) => app.services.processing.giveUp(job, error),
          concurrency: 1,
          maxAttempts: 3,
          backoffMs: 1000,
          clock: () => now,
          logError: (error) => assert.fail(String(error)),
        });
        runner.start();
        await runner.idle();
        assert.deepEqual(attempts, [1]);
        now += 999;
        await runner.idle();
        assert.deepEqual(attempts, [1], 'not before the backoff');
        now += 1;
        await runner.idle();
        now += 2000;
        await runner.idle();
        await runner.stop();
        assert.deepEqual(attempts, [1, 2, 3]);
        const asset = await app.repositories.assets.findByIdAnyTenant(row.id);
        assert.equal(asset?.status, 'FAILED');
        assert.match(asset?.failure_reason ?? '', /after 3 attempts: store unavailable/);
      } finally {
        await app.dispose();
      }
    });
  });

  describe('the job queue', () => {
    test('claims a lapsed lease first, then queued jobs in order; no claim sorts the backlog', async () => {
      let now = Date.parse('2026-05-01T00:00:00Z');
      const app = await createTestApp({}, { clock: () => now, runJobs: false });
      try {
        const jobs = app.repositories.jobs;
        const iso = (ms: number) => new Date(ms).toISOString();
        const ids: string[] = [];
        for (const name of ['a.txt', 'b.txt', 'c.txt']) {
          const row = await app.services.assets.upload(
            { orgId: 'acme', mode: 'live' },
            { stream: Readable.from([Buffer.from('x')]), filename: name },
          );
          ids.push(row.id);
          now += 1000;
        }
        const first = await jobs.claim('dead-worker', iso(now), iso(now + 60_000));
        assert.equal(first?.asset_id, ids[0]);
        now += 61_000; // the first claim's lease lapses
        const order: string[] = [];
        const statements = await app.recordQueries(async () => {
          for (let job; (job = await jobs.claim('worker', iso(now), iso(now + 60_000)));) order.push(job.asset_id);
        });
        assert.deepEqual(order, [ids[0], ids[1], ids[2]]);
        assert.equal(await jobs.hasDue(iso(now)), false);
        if (app.config.databaseUrl.startsWith('sqlite:')) {
          for (const text of new Set(statements.filter((statement) => statement.startsWith('select')))) {
            const parameters = Array.from(text.matchAll(/\?/g), () => null);
            const plan = await app.db.executeQuery(CompiledQuery.raw(`explain query plan ${text}`, parameters));
            const details = plan.rows.map((row: any) => String(row.detail)).join('; ');
            assert.doesNotMatch(details, /TEMP B-TREE|SCAN/, `${text}: ${details}`);
          }
        }
      } finally {
        await app.dispose();
      }
    });
  });

  describe('the job queue is shared fairly between orgs', () => {
    /** Uploads `count` small files for `orgId` at the app's clock; their asset ids. */
    async function upload(app: TestApp, orgId: string, count: number) {
      const ids: string[] = [];
      await app.createKey(orgId); // makes the org
      for (let i = 0; i < count; i++) {
        const row = await app.services.assets.upload(
          { orgId, mode: 'live' },
          { stream: Readable.from([Buffer.from(`${orgId} ${i}`)]), filename: `${orgId}-${i}.txt` },
        );
        ids.push(row.id);
      }
      return ids;
    }

    test('an idle org goes next while another org floods the queue', async () => {
      let now = Date.parse('2026-05-01T00:00:00Z');
      const app = await createTestApp({}, { clock: () => now, runJobs: false });
      try {
        const jobs = app.repositories.jobs;
        const iso = (ms: number) => new Date(ms).toISOString();
        const claim = async () => (await jobs.claim('w', iso(now), iso(now + 60_000)))!.asset_id;
        const flood = await upload(app, 'flood', 20);
        now += 1000;
        const first = await claim(); // the flood's first job is running…
        assert.equal(first, flood[0]);
        const [idle] = await upload(app, 'idle', 1); // …when the idle org's upload arrives
        now += 1000;
        assert.equal(await claim(), idle, 'the idle org waits for no more than the job already running');
        const [late] = await upload(app, 'late', 1);
        now += 1000;
        assert.equal(await claim(), late, "a third org joins the round being served, ahead of the flood's second job");
        const rest: string[] = [];
        for (let job; (job = await jobs.claim('w', iso(now), iso(now + 60_000)));) rest.push(job.asset_id);
        assert.deepEqual(rest, flood.slice(1), "one org's own jobs keep their order");
      } finally {
        await app.dispose();
      }
    });

    test('reprocessing an asset whose job is still waiting queues nothing more', async () => {
      const app = await createTestApp({}, { runJobs: false });
      try {
        const [id] = await upload(app, 'acme', 1);
        for (let i = 0; i < 3; i++) await app.services.assets.reprocess({ orgId: 'acme', mode: 'live' }, id);
        const waiting = await app.db
          .selectFrom('jobs')
          .select('id')
          .where('asset_id', '=', id)
          .where('status', '=', 'queued')
          .execute();
        assert.equal(waiting.length, 1);
        const claimed = await app.repositories.jobs.claim(
          'w',
          new Date().toISOString(),
          new Date(Date.now() + 60_000).toISOString(),
        );
        assert.equal(claimed?.asset_id, id);
        await app.services.assets.reprocess({ orgId: 'acme', mode: 'live' }, id);
        const after = await app.db.selectFrom('jobs').select('status').where('asset_id', '=', id).execute();
        assert.deepEqual(
          after.map((j) => j.status).sort(),
          ['queued', 'running'],
          'a running job can be followed by one more',
        );
      } finally {
        await app.dispose();
      }
    });
  });

  describe('assetUpdated over SSE', () => {
    test('pushes the status changes of a reprocessed asset', async () => {
      const app = await createTestApp();
      const server = await listen(app.handler);
      try {
        const row = await app.services.assets.upload(
          { orgId: 'acme', mode: 'live' },
          { stream: Readable.from([pdfWithText(1)]), filename: 'r.pdf' },
        );
        await processed(app, gid(row.id));
        const controller = new AbortController();
        const response = await fetch(`${server.url}/graphql`, {
          method: 'POST',
          signal: controller.signal,
          headers: { ...app.authHeaders, accept: 'text/event-stream', 'content-type': 'application/json' },
          body: JSON.stringify({
            query: 'subscription($id: ID!) { assetUpdated(id: $id) { status pageCount } }',
            variables: { id: gid(row.id) },
          }),
        });
        assert.equal(response.status, 200);
        assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
        const events: { status: string; pageCount: number | null }[] = [];
        const reading = (async () => {
          let buffer = '';
          for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
            buffer += Buffer.from(chunk).toString();
            for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
              const data = buffer
                .slice(0, end)
                .split('\n')
                .find((line) => line.startsWith('data:'));
              buffer = buffer.slice(end + 2);
              const payload = data ? JSON.parse(data.slice(5)) : null;
              if (payload?.data) events.push(payload.data.assetUpdated);
              if (payload?.data?.assetUpdated.status === 'READY') return;
            }
          }
        })();
        await new Promise((r) => setTimeout(r, 100)); // subscribed
        await app.gql('mutation($id: ID!) { reprocessAsset(input: { id: $id }) { asset { id } } }', {
          id: gid(row.id),
        });
        await reading;
        controller.abort();
        assert.deepEqual(
          events.map((e) => e.status),
          ['PROCESSING', 'READY'],
        );
        assert.equal(events[1].pageCount, 1);
      } finally {
        await server.close();
        await app.dispose();
      }
    });
  });
});
