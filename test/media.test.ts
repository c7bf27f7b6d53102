import assert from 'node:assert/strict';
import { test } from 'node:test';
import { embedUrlFor, parseHttpUrl } from '../src/services/assets/embed.js';
import { classify, isActiveType, sniffMediaType } from '../src/adapters/media-type.js';
import { normalizeTags, sanitizeFilename, slugify } from '../src/services/assets/naming.js';
import { BadUserInputError } from '../src/errors.js';
import { pdf, png } from './helpers.js';

test('media type comes from the bytes, not the name', async () => {
  assert.equal(await sniffMediaType(png(2, 2), 'photo.txt'), 'image/png');
  assert.equal(await sniffMediaType(pdf(), 'report.png'), 'application/pdf');
  assert.equal(
    await sniffMediaType(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0]), 'x.bin'),
    'image/jpeg',
  );
  assert.equal(await sniffMediaType(Buffer.from([0, 1, 2, 3, 0xff, 0xfe]), 'data.png'), 'application/octet-stream');
});

test('markup is recognised whatever the name claims', async () => {
  assert.equal(
    await sniffMediaType(
      Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
      'cat.png',
    ),
    'image/svg+xml',
  );
  assert.equal(await sniffMediaType(Buffer.from('<?xml version="1.0"?>\n<svg></svg>'), 'a.txt'), 'image/svg+xml');
  assert.equal(await sniffMediaType(Buffer.from('<!DOCTYPE html><html><script>x</script>'), 'notes.txt'), 'text/html');
  assert.equal(await sniffMediaType(Buffer.from('<?xml version="1.0"?><feed/>'), 'feed.txt'), 'application/xml');
});

test('text types are refined by the name only among harmless ones', async () => {
  assert.equal(await sniffMediaType(Buffer.from('a,b\n1,2\n'), 'table.csv'), 'text/csv');
  assert.equal(await sniffMediaType(Buffer.from('{"a":1}'), 'x.json'), 'application/json');
  assert.equal(await sniffMediaType(Buffer.from('# Title'), 'README.md'), 'text/markdown');
  assert.equal(await sniffMediaType(Buffer.from('plain words'), 'page.html'), 'text/plain');
  assert.equal(await sniffMediaType(Buffer.from('plain words'), null), 'text/plain');
});

test('classification and active types', () => {
  assert.equal(classify('image/png'), 'IMAGE');
  assert.equal(classify('video/mp4'), 'VIDEO');
  assert.equal(classify('audio/mpeg'), 'AUDIO');
  assert.equal(classify('application/pdf'), 'PDF');
  assert.equal(classify('text/plain'), 'DOCUMENT');
  assert.equal(classify('text/csv'), 'DATA');
  assert.equal(classify('application/zip'), 'OTHER');
  assert.ok(isActiveType('image/svg+xml') && isActiveType('text/html') && !isActiveType('image/png'));
});

test('filenames lose folders and control characters', () => {
  assert.equal(sanitizeFilename('../../etc/passwd'), 'passwd');
  assert.equal(sanitizeFilename('..\\..\\windows\\win.ini'), 'win.ini');
  assert.equal(sanitizeFilename('evil\u0000name\r\n.txt'), 'evilname.txt');
  assert.equal(sanitizeFilename('invoice\u202egnp.exe'), 'invoicegnp.exe');
  assert.equal(sanitizeFilename('...'), 'file');
  assert.equal(sanitizeFilename(''), 'file');
  assert.ok(Buffer.byteLength(sanitizeFilename('é'.repeat(300))) <= 255);
});

test('slugs and tags', () => {
  assert.equal(slugify('Product Guide 2024!'), 'product-guide-2024');
  assert.equal(slugify('Crème brûlée'), 'creme-brulee');
  assert.equal(slugify('!!!'), 'asset');
  assert.deepEqual(normalizeTags([' Hero', 'hero', 'Landing']), ['hero', 'landing']);
  assert.throws(() => normalizeTags(['']), BadUserInputError);
  assert.throws(() => normalizeTags(['x'.repeat(65)]), BadUserInputError);
  assert.throws(() => normalizeTags(Array.from({ length: 51 }, (_, i) => `t${i}`)), BadUserInputError);
});

test('YouTube and Vimeo pages get their player URL', () => {
  const embed = (url: string) => embedUrlFor(new URL(url));
  assert.equal(embed('https://www.youtube.com/watch?v=dQw4w9WgXcQ'), 'https://www.youtube.com/embed/dQw4w9WgXcQ');
  assert.equal(embed('https://youtu.be/dQw4w9WgXcQ?t=3'), 'https://www.youtube.com/embed/dQw4w9WgXcQ');
  assert.equal(embed('https://youtube.com/shorts/abcdefghijk'), 'https://www.youtube.com/embed/abcdefghijk');
  assert.equal(embed('https://vimeo.com/76979871'), 'https://player.vimeo.com/video/76979871');
  assert.equal(embed('https://example.com/watch?v=dQw4w9WgXcQ'), null);
  assert.throws(() => parseHttpUrl('javascript:alert(1)', 'externalUrl'), BadUserInputError);
  assert.throws(() => parseHttpUrl('not a url', 'externalUrl'), BadUserInputError);
});
