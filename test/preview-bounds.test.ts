/**
 * Previews of hostile files: each ends within its bounds (a preview made by work that does
 * not grow with the file's length, or a clear FAILED preview, the asset READY and its bytes
 * downloadable) while the server keeps answering. And a video's poster is not black.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import {
  createTestApp,
  forEachDialect,
  freePort,
  listen,
  processed,
  s3Server,
  type TestApp,
  uploadTo,
} from './helpers.js';
import {
  lyingAboutSize,
  makeVideo,
  manyPagePdf,
  pdfBomb,
  rawVideo,
  tenHourVideo,
  topLevelBoxes,
  withoutPictures,
} from './preview-fixtures.js';

/** Mean luma (0–255) of a picture. */
async function luma(bytes: Buffer): Promise<number> {
  const { data } = await sharp(bytes).greyscale().raw().toBuffer({ resolveWithObject: true });
  let sum = 0;
  for (const value of data) sum += value;
  return sum / data.length;
}

const FFMPEG: Record<string, string> = process.env.FFMPEG_PATH ? { FFMPEG_PATH: process.env.FFMPEG_PATH } : {};

/**
 * Watches the server while `work` runs: the event loop's longest delay (this process is the
 * server's) and /healthz asked every 50 ms, each answer's status.
 */
async function watched<T>(url: string, work: () => Promise<T>) {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let done = false;
  const statuses: (number | string)[] = [];
  const polling = (async () => {
    while (!done) {
      // A connection of its own each time: the answer, not a kept-alive socket's timing, is measured.
      const response = await fetch(`${url}/healthz`, { headers: { connection: 'close' } }).catch(
        (error: Error) => error,
      );
      statuses.push(
        response instanceof Error ? `${response.message}: ${(response.cause as Error)?.message}` : response.status,
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  try {
    const result = await work();
    return { result, statuses, maxDelayMs: delay.max / 1e6 };
  } finally {
    done = true;
    await polling;
    delay.disable();
  }
}

forEachDialect(() => {
  describe('previews of hostile files end in bounds, with the server answering', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;

    before(async () => {
      const port = await freePort();
      // Extraction reads the text of 2,000 pages of the long PDF: on a busy shared test machine
      // that can pass the default 30 s. The bounds under test here are the previews' own.
      app = await createTestApp({
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        SWEEP_INTERVAL: '0',
        EXTRACT_TIMEOUT: '120',
        ...FFMPEG,
      });
      server = await listen(app.handler, undefined, port);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    const get = (path: string) => fetch(`${server.url}${path}`, { headers: app.authHeaders });

    test('a video that opens on black gets a poster that is not black', async () => {
      const id = await uploadTo(app, makeVideo(10, { blackFor: 3 }), 'fade-in.mp4');
      const at1 = await get(`/download/${id}?t=1&w=128&format=png`);
      assert.equal(at1.status, 200);
      assert.ok((await luma(Buffer.from(await at1.arrayBuffer()))) < 8, 'the frame 10% in (1 s) is black');
      const poster = await get(`/download/${id}?w=128&format=png`);
      assert.equal(poster.status, 200);
      const posterLuma = await luma(Buffer.from(await poster.arrayBuffer()));
      assert.ok(posterLuma > 40, `the poster is a picture (mean luma ${posterLuma.toFixed(1)})`);
      // The poster made in the background is the one imageUrl names.
      const { imageUrl } = await processed(app, id, 'imageUrl(width: 128, format: PNG)');
      const url = new URL(imageUrl);
      const shown = await fetch(`${server.url}${url.pathname}${url.search}`);
      assert.ok((await luma(Buffer.from(await shown.arrayBuffer()))) > 40, 'imageUrl shows it');
    });

    test('10,000 pages, 10 hours, a bomb, a lying size, a broken file: each ends, READY and downloadable', async () => {
      const files: Record<string, [Buffer, string]> = {
        pages: [manyPagePdf(10_000), 'pages.pdf'],
        hours: [tenHourVideo(), 'hours.mp4'],
        lying: [lyingAboutSize(makeVideo(2), 60_000, 60_000), 'lying.mp4'],
        broken: [withoutPictures(makeVideo(3)), 'broken.mp4'],
        bomb: [pdfBomb(20_000), 'bomb.pdf'],
      };
      assert.ok(files.bomb[0].length < 200_000, `the bomb is small (${files.bomb[0].length} bytes)`);
      const ids: Record<string, string> = {};
      const { statuses, maxDelayMs } = await watched(server.url, async () => {
        for (const [name, [bytes, filename]] of Object.entries(files)) {
          const asset = await app.services.assets.upload(
            { orgId: 'acme', mode: 'live' },
            { stream: Readable.from([bytes]), filename },
          );
          ids[name] = Buffer.from(`Asset:${asset.id}`).toString('base64url');
        }
        await app.jobs!.idle(120_000);
      });
      assert.ok(statuses.length >= 5, `/healthz was asked throughout (${statuses.length} times)`);
      assert.deepEqual([...new Set(statuses)], [200], `/healthz answered every time (longest delay ${maxDelayMs} ms)`);
      assert.ok(maxDelayMs < 1000, `the event loop was never held (longest delay ${maxDelayMs.toFixed(0)} ms)`);

      const fields = 'status failureReason pageCount duration imageUrl metadata { previewFailure }';
      const read = async (name: string) => {
        const asset = await processed(app, ids[name], fields);
        assert.equal(asset.status, 'READY', `${name}: ${asset.failureReason}`);
        const original = await get(`/download/${ids[name]}`);
        assert.equal(original.status, 200, `${name} downloads`);
        assert.equal(Buffer.from(await original.arrayBuffer()).length, files[name][0].length);
        return asset;
      };
      // Long files: work that does not grow with their length, a preview made.
      const pages = await read('pages');
      assert.equal(pages.pageCount, 10_000);
      assert.equal(pages.metadata.previewFailure, null);
      assert.ok(pages.imageUrl);
      assert.equal((await get(`/download/${ids.pages}?page=10000&w=128&format=png`)).status, 200);
      const hours = await read('hours');
      assert.ok(Math.abs(hours.duration - 36_000) < 120, `ten hours (${hours.duration} s)`);
      assert.equal(hours.metadata.previewFailure, null);
      assert.ok(hours.imageUrl);
      // The bomb: its image is over MAX_IMAGE_PIXELS, so pdfjs leaves it out unread (drawn, it
      // would be black over the whole page); the page is drawn without it.
      const bomb = await read('bomb');
      assert.equal(bomb.metadata.previewFailure, null);
      const page = await get(`/download/${ids.bomb}?w=128&format=png`);
      assert.equal(page.status, 200);
      assert.ok((await luma(Buffer.from(await page.arrayBuffer()))) > 250, 'the page without the image: white');
      // Hostile files: a FAILED preview saying why, by a bound, not by the clock.
      const failures: Record<string, RegExp> = {
        lying: /declares 60000×60000 pixels a frame, over the limit/,
        broken: /cannot be rendered: the file cannot be decoded/,
      };
      for (const [name, reason] of Object.entries(failures)) {
        const asset = await read(name);
        assert.equal(asset.imageUrl, null, name);
        assert.match(asset.metadata.previewFailure ?? '', reason, name);
        assert.doesNotMatch(asset.metadata.previewFailure, /longer than/, `${name} ended by a bound, not the timer`);
        const asked = await get(`/download/${ids[name]}?w=128`);
        assert.equal(asked.status, 415, name);
        assert.equal(((await asked.json()) as any).error.code, 'UNSUPPORTED_MEDIA_TYPE', name);
      }
    });
  });

  describe('previews from S3', () => {
    test('a video with its moov at the end, on S3: the frame asked for', async () => {
      const port = await freePort();
      const s3 = (await s3Server()).env();
      const app = await createTestApp({
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        SWEEP_INTERVAL: '0',
        ...s3,
        ...FFMPEG,
      });
      const server = await listen(app.handler, undefined, port);
      try {
        assert.equal(app.blobs.localPath?.('x'), undefined, 'the store has no local files');
        const video = rawVideo(8);
        const order = topLevelBoxes(video).map((box) => box.type);
        assert.ok(order.indexOf('moov') > order.indexOf('mdat'), `moov at the end: ${order.join(' ')}`);
        const id = await uploadTo(app, video, 'raw.mov');
        const response = await fetch(`${server.url}/download/${id}?t=6&w=128&format=png`, {
          headers: app.authHeaders,
        });
        assert.equal(response.status, 200);
        assert.equal((await sharp(Buffer.from(await response.arrayBuffer())).metadata()).width, 128);
      } finally {
        await server.close();
        await app.dispose();
      }
    });
  });
});
