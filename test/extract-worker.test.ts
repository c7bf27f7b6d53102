import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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

test('thumbnails of every size, from the shared rendition and past it, are never enlarged', async () => {
  const file = await image(1500, 1000, 'wide.jpg');
  const sizes = [16, 1024, 1200, 2048];
  const result = await extract({
    path: file,
    mimeType: 'image/jpeg',
    type: 'IMAGE',
    maxImagePixels: 1e8,
    maxPdfPagesForWords: 10,
    thumbnails: sizes.map((size) => ({ size, path: path.join(work, `t${size}.webp`) })),
  });
  assert.deepEqual(
    result.thumbnails?.map((t) => [t.size, t.width, t.height]),
    [
      [16, 16, 11],
      [1024, 1024, 683],
      [1200, 1200, 800],
      [2048, 1500, 1000],
    ],
  );
  for (const thumbnail of result.thumbnails ?? []) {
    const meta = await sharp(thumbnail.path).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['webp', thumbnail.width, thumbnail.height]);
  }
  assert.ok(result.placeholder && Buffer.from(result.placeholder, 'base64').length > 5);
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
      thumbnails: [{ size: 16, path: path.join(work, 'never.webp') }],
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
    thumbnails: [{ size: 64, path: path.join(work, 'screen.webp') }],
  };
  const result = await extract(request);
  assert.deepEqual([result.width, result.height, result.format], [4000, 4000, 'gif']);
  assert.equal(result.thumbnails?.length, 1);
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
