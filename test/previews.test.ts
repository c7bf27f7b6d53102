import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Writable } from 'node:stream';
import sharp from 'sharp';
import { createTestApp, forEachDialect, freePort, listen, processed, type TestApp, uploadTo } from './helpers.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/observability/logger.js';
import { createFfmpeg, FfmpegFailure, findFfmpeg } from '../src/adapters/ffmpeg.js';
import { makeVideo } from './preview-fixtures.js';
import { pdfWithText, wav } from './samples.js';
import { parse, validate } from 'graphql';
import { GRAPHIQL_EXAMPLE } from '../src/http/operations.js';
import { buildSchema } from '../src/schema/index.js';

/** Mean absolute difference of two pictures' pixels (0–255), compared at the same small size. */
async function difference(a: Buffer, b: Buffer): Promise<number> {
  const raw = (bytes: Buffer) => sharp(bytes).resize(64, 64, { fit: 'fill' }).removeAlpha().raw().toBuffer();
  const [x, y] = [await raw(a), await raw(b)];
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.abs(x[i] - y[i]);
  return sum / x.length;
}

/** Rows of a picture (flattened on white) with any pixel darker than the ground. */
async function inkedRows(bytes: Buffer): Promise<number> {
  const { data, info } = await sharp(bytes).flatten({ background: '#ffffff' }).greyscale().raw().toBuffer({
    resolveWithObject: true,
  });
  let rows = 0;
  for (let y = 0; y < info.height; y++) {
    const row = data.subarray(y * info.width, (y + 1) * info.width);
    if (row.some((value) => value < 200)) rows += 1;
  }
  return rows;
}

forEachDialect(() => {
  describe('previews of PDFs, videos and audio', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    const ids: Record<string, string> = {};

    const get = (path: string, headers: Record<string, string> = app.authHeaders) =>
      fetch(`${server.url}${path}`, { headers });
    const picture = async (response: Response) => {
      const body = Buffer.from(await response.arrayBuffer());
      return { body, meta: await sharp(body).metadata() };
    };
    const upload = (bytes: Buffer, filename: string) => uploadTo(app, bytes, filename);
    const error = async (response: Response) => ((await response.json()) as any).error;

    before(async () => {
      const port = await freePort();
      // FFMPEG_PATH in the environment: the same tests against another ffmpeg (CI runs the npm-shipped one).
      const ffmpeg: Record<string, string> = process.env.FFMPEG_PATH ? { FFMPEG_PATH: process.env.FFMPEG_PATH } : {};
      app = await createTestApp({ PUBLIC_URL: `http://127.0.0.1:${port}`, SWEEP_INTERVAL: '0', ...ffmpeg });
      server = await listen(app.handler, undefined, port);
      ids.pdf = await upload(pdfWithText(3), 'report.pdf');
      ids.video = await upload(makeVideo(4), 'clip.mp4');
      ids.tone = await upload(wav(2, 8000, 0.8), 'tone.wav');
      ids.silence = await upload(wav(2), 'silence.wav');
      ids.csv = await upload(Buffer.from('a,b\n1,2\n'), 'table.csv');
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    test('a PDF page by URL: page 2 differs from page 1, no page is page 1, sizes and formats as asked', async () => {
      const first = await get(`/download/${ids.pdf}?page=1&w=512&format=webp`);
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('content-type'), 'image/webp');
      const one = await picture(first);
      assert.equal(one.meta.format, 'webp');
      assert.equal(one.meta.width, 512);
      assert.equal(one.meta.height, Math.round((512 * 792) / 612));
      const two = await picture(await get(`/download/${ids.pdf}?page=2&w=512&format=webp`));
      assert.ok((await difference(one.body, two.body)) > 20, 'page 2 is another picture');
      const none = await picture(await get(`/download/${ids.pdf}?w=512&format=webp`));
      assert.ok((await difference(one.body, none.body)) < 1, 'no page is the first page');
      const box = await get(`/download/${ids.pdf}?page=3&w=300&h=300&fit=cover&format=png`);
      assert.equal(box.status, 200);
      const square = await picture(box);
      assert.deepEqual([square.meta.format, square.meta.width, square.meta.height], ['png', 384, 384]);
    });

    test('a page past the document is 400 naming page; page and t where they do not apply are 400', async () => {
      for (const [path, name] of [
        [`/download/${ids.pdf}?page=4`, 'page'],
        [`/download/${ids.pdf}?page=0`, 'page'],
        [`/download/${ids.pdf}?t=1`, 't'],
        [`/download/${ids.video}?page=1`, 'page'],
        [`/download/${ids.video}?t=-1`, 't'],
        [`/download/${ids.video}?t=99`, 't'],
      ] as const) {
        const response = await get(path);
        assert.equal(response.status, 400, path);
        const body = await error(response);
        assert.equal(body.code, 'BAD_USER_INPUT', path);
        assert.match(body.message, new RegExp(`"${name}"`), path);
      }
    });

    test('a video frame by URL: t=2 differs from t=0; no t is the poster frame; dimensions as asked', async () => {
      const zero = await get(`/download/${ids.video}?t=0&w=256&format=jpeg`);
      assert.equal(zero.status, 200);
      const at0 = await picture(zero);
      assert.deepEqual([at0.meta.format, at0.meta.width, at0.meta.height], ['jpeg', 256, 192]);
      const at2 = await picture(await get(`/download/${ids.video}?t=2&w=256&format=jpeg`));
      assert.ok((await difference(at0.body, at2.body)) > 2, 't=2 is another frame');
      const poster = await get(`/download/${ids.video}?format=webp`);
      assert.equal(poster.status, 200);
      assert.equal((await picture(poster)).meta.width, 320, 'the video is 320 wide: never enlarged');
    });

    test('an audio waveform: a tone fills the height, silence is a flat line', async () => {
      const tone = await get(`/download/${ids.tone}?w=512&format=png`);
      assert.equal(tone.status, 200);
      const toneImage = await picture(tone);
      assert.deepEqual([toneImage.meta.width, toneImage.meta.height], [512, 128]);
      assert.ok((await inkedRows(toneImage.body)) > 64, 'a loud tone reaches far from the centre line');
      const silence = await picture(await get(`/download/${ids.silence}?w=512&format=png`));
      assert.ok((await inkedRows(silence.body)) <= 2, 'silence is a line');
    });

    test('previews keep the cache rules: ETag, 304, a versioned URL is immutable, made once', async () => {
      const path = `/download/${ids.pdf}?page=2&w=256&format=webp`;
      const first = await get(path);
      const etag = first.headers.get('etag')!;
      assert.ok(etag);
      await first.arrayBuffer();
      const made = app.services.renditions.made;
      const again = await get(path, { ...app.authHeaders, 'if-none-match': etag });
      assert.equal(again.status, 304);
      assert.equal(app.services.renditions.made, made, 'served from the cache');
    });

    test('access: another org 404, no key 404 for a private preview, signed URL works, trashed has none', async () => {
      const other = await app.createKey('globex');
      assert.equal((await get(`/download/${ids.pdf}?page=1&w=128`, { authorization: `Bearer ${other}` })).status, 404);
      assert.equal((await get(`/download/${ids.video}?w=128`, {})).status, 404);
      const signed = await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', {
        id: ids.tone,
      });
      const url = new URL(signed.data.createDownloadUrl.url);
      const viaToken = await fetch(`${server.url}${url.pathname}?w=256&format=webp`);
      assert.equal(viaToken.status, 200);
      assert.equal((await picture(viaToken)).meta.width, 256);
      const doomed = await upload(pdfWithText(1), 'doomed.pdf');
      assert.equal((await get(`/download/${doomed}?w=128`)).status, 200);
      await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', { id: doomed });
      assert.equal((await get(`/download/${doomed}?w=128`)).status, 404);
    });

    test('imageUrl and srcSet: made in the background after upload, non-null for PDFs, videos and audio', async () => {
      const query =
        'query($id: ID!) { asset(id: $id) { imageUrl(width: 256, format: WEBP) srcSet(widths: [128, 256], format: WEBP) } }';
      for (const name of ['pdf', 'video', 'tone']) {
        const { data } = await app.gql(query, { id: ids[name] });
        assert.ok(data.asset.imageUrl, `${name} has an imageUrl`);
        assert.match(data.asset.srcSet, / 128w, .* 256w$/, name);
        const url = new URL(data.asset.imageUrl);
        const response = await fetch(`${server.url}${url.pathname}${url.search}`);
        assert.equal(response.status, 200, name);
        assert.equal((await picture(response)).meta.width, 256, name);
      }
      const csv = await app.gql(query, { id: ids.csv });
      assert.equal(csv.data.asset.imageUrl, null);
      const second = await app.gql(
        'query($id: ID!) { asset(id: $id) { imageUrl(width: 256, format: WEBP, page: 2) } }',
        {
          id: ids.pdf,
        },
      );
      const url = new URL(second.data.asset.imageUrl);
      assert.equal(url.searchParams.get('page'), '2');
      const past = await app.gql('query($id: ID!) { asset(id: $id) { imageUrl(page: 9) } }', { id: ids.pdf });
      assert.equal(past.errors?.[0]?.extensions.code, 'BAD_USER_INPUT');
      const frame = await app.gql('query($id: ID!) { asset(id: $id) { imageUrl(width: 128, time: 2.5) } }', {
        id: ids.video,
      });
      assert.equal(new URL(frame.data.asset.imageUrl).searchParams.get('t'), '2.5');
    });

    test("GraphiQL's examples show the previews: every PDF, video and audio file with its picture", async () => {
      assert.deepEqual(validate(buildSchema(), parse(GRAPHIQL_EXAMPLE)), [], 'the examples are valid');
      const run = async (operationName: string, variables = {}) => {
        const response = await app.yoga.fetch('http://assets.test/graphql', {
          method: 'POST',
          headers: { ...app.authHeaders, 'content-type': 'application/json' },
          body: JSON.stringify({ query: GRAPHIQL_EXAMPLE, operationName, variables }),
        });
        const body = (await response.json()) as any;
        assert.equal(body.errors, undefined, operationName);
        return body.data;
      };
      const nodes = (await run('Previews')).assets.edges.map((edge: any) => edge.node);
      assert.deepEqual(nodes.map((node: any) => node.id).sort(), [ids.pdf, ids.video, ids.tone, ids.silence].sort());
      for (const node of nodes) {
        assert.equal(node.metadata.previewFailure, null, node.title);
        const url = new URL(node.preview);
        const response = await fetch(`${server.url}${url.pathname}${url.search}`);
        assert.equal(response.status, 200, node.title);
        assert.equal(response.headers.get('content-type'), 'image/webp', node.title);
        assert.match(node.srcSet, / 256w, /, node.title);
      }
      const { pdf, video } = await run('PageOrFrame', { pdf: ids.pdf, video: ids.video });
      assert.equal(new URL(pdf.page2).searchParams.get('page'), '2');
      assert.equal(new URL(video.at2s).searchParams.get('t'), '2.5');
    });

    test('a file with no picture (CSV) stays 400', async () => {
      const response = await get(`/download/${ids.csv}?w=128`);
      assert.equal(response.status, 400);
      assert.equal((await error(response)).code, 'BAD_USER_INPUT');
    });

    test('a broken PDF and a truncated video end in a clear 415 while the server answers', async () => {
      const broken = await upload(
        Buffer.concat([pdfWithText(2).subarray(0, 200), Buffer.from('garbage')]),
        'broken.pdf',
      );
      const video = makeVideo(3);
      const truncated = await upload(video.subarray(0, Math.floor(video.length / 3)), 'cut.mp4');
      const answers = await Promise.all([
        get(`/download/${broken}?w=256&format=webp`),
        get(`/download/${truncated}?t=1&w=256&format=webp`),
        get('/healthz', {}),
      ]);
      for (const response of answers.slice(0, 2)) {
        assert.equal(response.status, 415);
        const body = await error(response);
        assert.equal(body.code, 'UNSUPPORTED_MEDIA_TYPE');
        assert.match(body.message, /cannot be rendered/);
      }
      assert.equal(answers[2].status, 200);
    });
  });
});

forEachDialect(() => {
  describe('previews without ffmpeg, and ffmpeg past its bounds', () => {
    const upload = uploadTo;
    test('no ffmpeg: the server starts, says so once, answers video and audio 415; PDFs still render', async () => {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk, _encoding, done) {
          lines.push(...String(chunk).split('\n').filter(Boolean));
          done();
        },
      });
      const port = await freePort();
      const app = await createTestApp(
        { PUBLIC_URL: `http://127.0.0.1:${port}`, FFMPEG_PATH: '/nonexistent/ffmpeg' },
        { logger: createLogger({ level: 'info', format: 'json' }, sink) },
      );
      const server = await listen(app.handler, undefined, port);
      try {
        assert.equal(lines.filter((line) => /previews are off/.test(line)).length, 1, 'said once at start');
        const tone = await upload(app, wav(1, 8000, 0.5), 'tone.wav');
        const doc = await upload(app, pdfWithText(1), 'doc.pdf');
        const refused = await fetch(`${server.url}/download/${tone}?w=128`, { headers: app.authHeaders });
        assert.equal(refused.status, 415);
        const body = ((await refused.json()) as any).error;
        assert.equal(body.code, 'UNSUPPORTED_MEDIA_TYPE');
        assert.match(body.message, /ffmpeg/);
        assert.equal((await fetch(`${server.url}/download/${doc}?w=128`, { headers: app.authHeaders })).status, 200);
        const failure = await processed(app, tone, 'status metadata { previewFailure }');
        assert.equal(failure.status, 'READY', 'the asset stays READY');
        assert.match(failure.metadata.previewFailure, /ffmpeg/);
        assert.equal(lines.filter((line) => /previews are off/.test(line)).length, 1, 'and only once');
      } finally {
        await server.close();
        await app.dispose();
      }
    });

    test('an ffmpeg run past FFMPEG_MEMORY ends in a clear 415, not a crash or a 500', async () => {
      const port = await freePort();
      const ffmpeg: Record<string, string> = process.env.FFMPEG_PATH ? { FFMPEG_PATH: process.env.FFMPEG_PATH } : {};
      const app = await createTestApp({ PUBLIC_URL: `http://127.0.0.1:${port}`, ...ffmpeg, FFMPEG_MEMORY: '4MiB' });
      const server = await listen(app.handler, undefined, port);
      try {
        const clip = await upload(app, makeVideo(2), 'clip.mp4');
        const response = await fetch(`${server.url}/download/${clip}?t=1&w=128`, { headers: app.authHeaders });
        assert.equal(response.status, 415);
        const body = ((await response.json()) as any).error;
        assert.equal(body.code, 'UNSUPPORTED_MEDIA_TYPE');
        assert.match(body.message, /cannot be decoded/);
      } finally {
        await server.close();
        await app.dispose();
      }
    });

    /**
     * Runs `fn` with ffmpeg (a 300 ms limit, `maxRunning` at once) and a named pipe nobody
     * writes to: ffmpeg waits on it for ever, whatever the machine's speed.
     */
    async function withStuckInput(
      maxRunning: number,
      fn: (ffmpeg: ReturnType<typeof createFfmpeg>, frame: (n: number) => Promise<void>) => Promise<void>,
    ) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'assetgate-fifo-'));
      try {
        const fifo = path.join(dir, 'never');
        execFileSync('mkfifo', [fifo]);
        const ffmpeg = createFfmpeg({
          path: findFfmpeg(process.env.FFMPEG_PATH || null)!,
          timeoutMs: 300,
          memoryBytes: 1024 ** 3,
          maxRunning,
        });
        await fn(ffmpeg, (n) => ffmpeg.frame(fifo, path.join(dir, `out-${n}.png`), { seconds: 0, maxSide: 64 }));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }

    test('an ffmpeg run past its time limit (EXTRACT_TIMEOUT) is killed and says so', async () => {
      await withStuckInput(1, async (_ffmpeg, frame) => {
        await assert.rejects(frame(0), (error: Error) => {
          assert.ok(error instanceof FfmpegFailure);
          assert.match(error.message, /ffmpeg took longer than 300 ms/);
          return true;
        });
      });
    });

    test('no more ffmpeg processes run at once than maxRunning; the others wait their turn', async () => {
      await withStuckInput(2, async (ffmpeg, frame) => {
        const runs = Array.from({ length: 5 }, (_, i) => frame(i));
        assert.deepEqual(ffmpeg.load, { running: 2, waiting: 3 });
        const ended = await Promise.allSettled(runs);
        // Each run had its own 300 ms once it started: a wait in line is not counted against it.
        for (const result of ended) {
          assert.equal(result.status, 'rejected');
          assert.match(String((result as PromiseRejectedResult).reason), /ffmpeg took longer than 300 ms/);
        }
        assert.deepEqual(ffmpeg.load, { running: 0, waiting: 0 });
      });
    });
  });
});
