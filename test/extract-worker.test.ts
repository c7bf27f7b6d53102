import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import extract from '../src/jobs/extract-worker.js';

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
