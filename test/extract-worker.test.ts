import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import extract, { renderPage } from '../src/jobs/extract-worker.js';
import { pdfWithText, screenSizedGif } from './samples.js';

let work: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'assetgate-extract-test-'));
});
after(() => rm(work, { recursive: true, force: true }));

async function image(width: number, height: number, file: string): Promise<string> {
  const target = path.join(work, file);
  await sharp({ create: { width, height, channels: 3, background: '#3a6ea5' } })
    .jpeg()
    .toFile(target);
  return target;
}

test('an image is read without a thumbnail: size, format, colour and placeholder from one small decode, no file written', async () => {
  const file = await image(1500, 1000, 'wide.jpg');
  const before = await readdir(work);
  const result = await extract({
    path: file,
    mimeType: 'image/jpeg',
    type: 'IMAGE',
    maxImagePixels: 1e8,
    maxPdfPagesForWords: 10,
  });
  assert.deepEqual(
    { ...result, placeholder: typeof result.placeholder, dominantColor: typeof result.dominantColor },
    { width: 1500, height: 1000, format: 'jpeg', hasAlpha: false, dominantColor: 'string', placeholder: 'string' },
  );
  // JPEG is lossy: the flat colour comes back within a step or two of each channel.
  const channels = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const expected = channels('#3a6ea5');
  channels(result.dominantColor!).forEach((value, i) =>
    assert.ok(Math.abs(value - expected[i]!) <= 2, result.dominantColor),
  );
  assert.ok(Buffer.from(result.placeholder!, 'base64').length > 5);
  assert.deepEqual(await readdir(work), before, 'thumbnails are renditions now: the worker writes nothing');
});

test('the worker refuses an image over MAX_IMAGE_PIXELS by its header, before decoding it', async () => {
  const file = await image(300, 200, 'big-enough.jpg');
  await assert.rejects(
    extract({
      path: file,
      mimeType: 'image/jpeg',
      type: 'IMAGE',
      maxImagePixels: 300 * 200 - 1,
      maxPdfPagesForWords: 10,
    }),
    /pixel/,
  );
});

test('an animated GIF is as large as its logical screen, not its first frame; its pixel limit counts that size', async () => {
  // 3000 frames of 1×1 on a 4000×4000 screen: 69 KB, told without decoding the frames.
  const file = path.join(work, 'screen.gif');
  await writeFile(file, screenSizedGif(4000, 4000, 3000));
  const request = {
    path: file,
    mimeType: 'image/gif',
    type: 'IMAGE' as const,
    maxImagePixels: 1e8,
    maxPdfPagesForWords: 10,
  };
  const result = await extract(request);
  assert.deepEqual([result.width, result.height, result.format], [4000, 4000, 'gif']);
  assert.ok(result.placeholder, 'its first frame decoded');
  await assert.rejects(extract({ ...request, maxImagePixels: 4000 * 4000 - 1 }), /declares 4000×4000 pixels/);
});

test('a PDF page drawn for a box never takes more than 4096 px a side, however the page is shaped', async () => {
  // 99999 × 1 points: a 1024 px tall box would need a page 100 million pixels wide.
  const strip = Buffer.from(pdfWithText(1).toString('latin1').replace('[0 0 612 792]', '[0 0 99999 1]'), 'latin1');
  const file = path.join(work, 'strip.pdf');
  await writeFile(file, strip);
  const made = await renderPage({
    path: file,
    picture: path.join(work, 'strip.png'),
    out: path.join(work, 'strip.webp'),
    page: 1,
    maxImagePixels: 100_000_000,
    width: null,
    height: 1024,
    fit: 'inside',
    format: 'webp',
    quality: 80,
    focal: null,
  });
  assert.ok(made.width <= 4096 && made.height <= 4096, `${made.width}×${made.height}`);
  const drawn = await sharp(path.join(work, 'strip.png')).metadata();
  assert.ok(drawn.width! <= 4096, `the page was drawn ${drawn.width} px wide`);
});
