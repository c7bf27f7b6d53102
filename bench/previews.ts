/**
 * P1 and V1: cold previews against the tools that make them, run alone in this process;
 * W1: warm previews (a page and a frame made already) against a plain download of the same size.
 * P1: page 1 of a PDF as a 1024 px WebP (a new rendition each run: another quality) against
 * pdfjs + @napi-rs/canvas drawing the same page and sharp encoding it. V1: the poster frame
 * of a 1080p H.264 video as a 1024 px WebP against `ffmpeg -ss` writing that frame alone.
 * W1 asks each kept rendition over 16 connections against bare node:http streaming a file of
 * its bytes (the R2 baseline). Part of `npm run bench`; `node --import tsx bench/previews.ts`
 * runs them alone.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { pdfWithText } from '../test/samples.js';
import { drain, median, type Proc, send, serverArgs, start, startBaseline, timed, uploadAssetBody } from './lib.js';

const run = promisify(execFile);
const FFMPEG = process.env.FFMPEG_PATH || 'ffmpeg';

export interface PreviewBenchContext {
  url: string;
  auth: Record<string, string>;
  work: string;
  runs: number;
  /** Length of each load run of W1, seconds. */
  seconds: number;
  row: (...cells: (string | number)[]) => void;
  /** Uploads `file` as `name`; its id. */
  upload: (file: string, name: string) => Promise<string>;
}

const fmt = (n: number, digits = 1) => n.toFixed(digits);

/** Page 1 of `file` drawn 1024 px wide by pdfjs on @napi-rs/canvas, then WebP by sharp: the tools alone. */
async function pdfjsAlone(file: string, quality: number): Promise<Buffer> {
  const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
  const { createCanvas } = await import('@napi-rs/canvas');
  const document = await pdfjs.getDocument({ data: new Uint8Array(await readFile(file)), verbosity: 0 }).promise;
  const page = await document.getPage(1);
  const viewport = page.getViewport({ scale: 1024 / page.getViewport({ scale: 1 }).width });
  const canvas = createCanvas(Math.ceil(viewport.width), Math.ceil(viewport.height));
  const context = canvas.getContext('2d');
  await page.render({ canvas: canvas as never, canvasContext: context as never, viewport }).promise;
  const png = canvas.toBuffer('image/png');
  await document.destroy();
  return sharp(png).webp({ quality }).toBuffer();
}

/** Waits until the asset's background preview is made (or failed): the measured renditions are then the only work. */
async function previewMade(ctx: PreviewBenchContext, id: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const response = await fetch(`${ctx.url}/graphql`, {
      method: 'POST',
      headers: { ...ctx.auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'query($id: ID!) { asset(id: $id) { imageUrl metadata { previewFailure } } }',
        variables: { id },
      }),
    });
    const asset = ((await response.json()) as any).data.asset;
    if (asset.imageUrl || asset.metadata?.previewFailure) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The P1 and V1 rows; returns their figures for the results file. */
export async function previewRows(ctx: PreviewBenchContext): Promise<Record<string, unknown>> {
  const results: Record<string, unknown> = {};
  const qualities = [50, 75, 90];
  const pdf = path.join(ctx.work, 'report.pdf');
  await writeFile(pdf, pdfWithText(40));
  const pdfId = await ctx.upload(pdf, 'report.pdf');
  await previewMade(ctx, pdfId);
  const p1 = { assetgate: [] as number[], alone: [] as number[] };
  for (let i = 0; i < ctx.runs; i++) {
    const q = qualities[i % qualities.length];
    p1.assetgate.push(
      await timed(() => drain(`${ctx.url}/download/${pdfId}?page=1&w=1024&format=webp&q=${q}`, ctx.auth)),
    );
    p1.alone.push(await timed(() => pdfjsAlone(pdf, q)));
  }
  const p1Ratio = median(p1.assetgate) / median(p1.alone);
  results.P1 = { medianMs: { assetgate: median(p1.assetgate), alone: median(p1.alone) }, runs: p1 };
  ctx.row(
    'P1 cold PDF page',
    'page 1 of a 40-page PDF → 1024 px WebP, first request',
    `${fmt(median(p1.assetgate))} ms`,
    `${fmt(median(p1.alone))} ms (pdfjs + canvas + sharp alone, in process)`,
    `${fmt(p1Ratio, 2)}×`,
    '≤ 1.3×',
    p1Ratio <= 1.3 ? 'met' : 'missed',
  );

  const video = path.join(ctx.work, 'clip.mp4');
  await run(FFMPEG, [
    ...['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=duration=10:size=1920x1080:rate=25'],
    ...['-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'veryfast', '-y', video],
  ]);
  const videoId = await ctx.upload(video, 'clip.mp4');
  await previewMade(ctx, videoId);
  const v1 = { assetgate: [] as number[], alone: [] as number[] };
  for (let i = 0; i < ctx.runs; i++) {
    const q = qualities[i % qualities.length];
    v1.assetgate.push(await timed(() => drain(`${ctx.url}/download/${videoId}?w=1024&format=webp&q=${q}`, ctx.auth)));
    const out = path.join(ctx.work, `frame-${i}.webp`);
    v1.alone.push(
      await timed(() =>
        run(FFMPEG, [
          ...['-hide_banner', '-loglevel', 'error', '-ss', '1', '-i', video, '-frames:v', '1'],
          ...['-vf', 'scale=1024:-2', '-c:v', 'libwebp', '-quality', String(q), '-y', out],
        ]),
      ),
    );
  }
  const v1Ratio = median(v1.assetgate) / median(v1.alone);
  results.V1 = { medianMs: { assetgate: median(v1.assetgate), alone: median(v1.alone) }, runs: v1 };
  ctx.row(
    'V1 cold poster frame',
    '10 s 1080p H.264 → poster (1 s in) as 1024 px WebP, first request',
    `${fmt(median(v1.assetgate))} ms`,
    `${fmt(median(v1.alone))} ms (ffmpeg -ss alone, to WebP)`,
    `${fmt(v1Ratio, 2)}×`,
    '≤ 1.3×',
    v1Ratio <= 1.3 ? 'met' : 'missed',
  );
  Object.assign(
    results,
    await warmRows(ctx, [
      ['page', `${ctx.url}/download/${pdfId}?page=1&w=1024&format=webp&q=${qualities[0]}`],
      ['frame', `${ctx.url}/download/${videoId}?w=1024&format=webp&q=${qualities[0]}`],
    ]),
  );
  return results;
}

/**
 * W1: each of `urls` (made already, by P1 and V1) asked again and again, against a plain
 * download of a file of the same bytes, interleaved run by run.
 */
async function warmRows(ctx: PreviewBenchContext, urls: [string, string][]): Promise<Record<string, unknown>> {
  const cannon = (url: string, headers: Record<string, string>) =>
    autocannon({ url, connections: 16, duration: ctx.seconds, headers }) as unknown as Promise<autocannon.Result>;
  const figures: Record<string, unknown> = {};
  for (const [name, url] of urls) {
    const file = path.join(ctx.work, `warm-${name}.webp`);
    const bytes = Buffer.from(await (await fetch(url, { headers: ctx.auth })).arrayBuffer());
    await writeFile(file, bytes);
    const baseline = await startBaseline('download.ts', [file]);
    const runs = { assetgate: [] as autocannon.Result[], baseline: [] as autocannon.Result[] };
    try {
      for (let i = 0; i < ctx.runs; i++) {
        runs.assetgate.push(await cannon(url, ctx.auth));
        runs.baseline.push(await cannon(`http://127.0.0.1:${baseline.port}/`, {}));
      }
    } finally {
      await baseline.stop();
    }
    const rates = {
      assetgate: median(runs.assetgate.map((r) => r.requests.average)),
      baseline: median(runs.baseline.map((r) => r.requests.average)),
    };
    const errors = runs.assetgate.map((r) => r.errors + r.non2xx);
    const ratio = rates.assetgate / rates.baseline;
    figures[`W1 ${name}`] = { requestsPerSecond: rates, bytes: bytes.length, errors };
    ctx.row(
      `W1 warm ${name}`,
      `the ${name === 'page' ? 'PDF page' : 'poster frame'} of P1/V1 again (${(bytes.length / 1024).toFixed(0)} KiB WebP, kept), 16 connections`,
      `${fmt(rates.assetgate, 0)} req/s`,
      `${fmt(rates.baseline, 0)} req/s (fs.createReadStream of a file of the same bytes)`,
      fmt(ratio, 2),
      '≥ 0.9',
      ratio >= 0.9 && errors.every((n) => n === 0) ? 'met' : 'missed',
    );
  }
  return figures;
}

/** Runs P1, V1 and W1 alone, on a gateway of their own. */
async function standalone(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'assetgate-bench-previews-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const url = `http://127.0.0.1:${port}`;
  let server: Proc | undefined;
  try {
    const env = { PORT: String(port), HOST: '127.0.0.1', DATA_DIR: path.join(work, 'data'), PUBLIC_URL: url };
    server = await start(serverArgs(), { ...env, RATE_LIMIT: '0' }, port);
    const key = /\b(sk_live_default_[0-9a-f]{48})\b/.exec(server.output())![1];
    const auth = { authorization: `Bearer ${key}` };
    const rows: string[][] = [];
    const upload = async (file: string, name: string) => {
      const response = await send(`${url}/graphql`, 'POST', uploadAssetBody(file, name, 'id'), {
        ...auth,
        'x-graphql-yoga-csrf': '1',
      });
      const id = JSON.parse(response.text).data.uploadAsset.asset.id as string;
      return id;
    };
    const results = await previewRows({
      url,
      auth,
      work,
      runs: 3,
      seconds: 5,
      row: (...cells) => rows.push(cells.map(String)),
      upload,
    });
    console.log(rows.map((cells) => `| ${cells.join(' | ')} |`).join('\n'));
    console.log(JSON.stringify(results));
  } finally {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await standalone();
