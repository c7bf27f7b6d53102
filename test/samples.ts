/**
 * Sample files of every format the pipeline reads, made here from scratch (or with
 * sharp for the image codecs), so the suite needs nothing but itself.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { png } from './helpers.js';

const solid = (width: number, height: number, alpha = false) =>
  sharp({
    create: {
      width,
      height,
      channels: alpha ? 4 : 3,
      background: alpha ? { r: 200, g: 30, b: 30, alpha: 0.5 } : { r: 200, g: 30, b: 30 },
    },
  });

/** A 40×20 JPEG whose EXIF says "rotate 90°" and carries a GPS position. */
export function jpegWithExif(): Promise<Buffer> {
  return solid(40, 20)
    .jpeg()
    .withExif({
      IFD0: { Make: 'assetgate-test' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSLongitudeRef: 'W', GPSLongitude: '0/1 7/1 0/1' },
    })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

export const imageSamples: Record<string, () => Promise<Buffer>> = {
  'photo.png': async () => png(30, 20),
  'anim.gif': () => solid(30, 20).gif().toBuffer(),
  'pic.webp': () => solid(30, 20, true).webp().toBuffer(),
  'pic.avif': () => solid(30, 20).avif().toBuffer(),
  'scan.tiff': () => solid(30, 20).tiff().toBuffer(),
  'logo.svg': async () =>
    Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20"><rect width="30" height="20" fill="red"/></svg>',
    ),
  'old.bmp': async () => bmp(30, 20),
  'favicon.ico': async () => ico(png(16, 16)),
};

/** An uncompressed 24-bit BMP. */
export function bmp(width: number, height: number): Buffer {
  const row = Math.ceil((width * 3) / 4) * 4;
  const data = Buffer.alloc(row * height, 0x80);
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'ascii');
  header.writeUInt32LE(54 + data.length, 2);
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(width, 18);
  header.writeInt32LE(height, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(24, 28);
  header.writeUInt32LE(data.length, 34);
  return Buffer.concat([header, data]);
}

/** An ICO holding one PNG image. */
export function ico(image: Buffer): Buffer {
  const header = Buffer.from([0, 0, 1, 0, 1, 0]);
  const entry = Buffer.alloc(16);
  entry[0] = 16;
  entry[1] = 16;
  entry.writeUInt16LE(1, 4);
  entry.writeUInt16LE(32, 6);
  entry.writeUInt32LE(image.length, 8);
  entry.writeUInt32LE(22, 12);
  return Buffer.concat([header, entry, image]);
}

/**
 * A PDF of `pages` pages with "Hello brave new world" on each, titled and authored, and a
 * coloured block whose place and colour change from page to page (so pages look different).
 */
export function pdfWithText(pages = 2): Buffer {
  const objects: string[] = [];
  const kids = Array.from({ length: pages }, (_, i) => `${4 + i * 2} 0 R`).join(' ');
  objects.push('<< /Type /Catalog /Pages 2 0 R >>');
  objects.push(`<< /Type /Pages /Kids [${kids}] /Count ${pages} >>`);
  objects.push('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>');
  for (let i = 0; i < pages; i++) {
    const block = `${i % 2 ? '1 0 0' : '0 0 1'} rg 56 ${560 - ((i * 150) % 500)} 500 120 re f`;
    const stream = `BT /F1 18 Tf 50 700 Td (Hello brave new world) Tj ET ${block}`;
    objects.push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents ${5 + i * 2} 0 R >>`,
    );
    objects.push(`<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`);
  }
  objects.push('<< /Title (Quarterly Report) /Author (Ada Lovelace) >>');
  let body = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((object, i) => {
    offsets.push(body.length);
    body += `${i + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = body.length;
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) body += `${String(offset).padStart(10, '0')} 00000 n \n`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R /Info ${objects.length} 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

/** `seconds` of 16-bit mono PCM at `rate` Hz, as WAV: silence, or a 440 Hz tone at `amplitude` (0–1). */
export function wav(seconds: number, rate = 8000, amplitude = 0): Buffer {
  const data = Buffer.alloc(Math.round(seconds * rate) * 2);
  for (let i = 0; amplitude > 0 && i < data.length / 2; i++) {
    data.writeInt16LE(Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * 440 * i) / rate)), i * 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

/** A PNG whose header declares 100 000 × 100 000 pixels: a decompression bomb. */
/**
 * An animated GIF whose logical screen is `width`×`height` and whose `frames` frames are
 * each one pixel at its top-left corner: a few bytes per frame, whatever the screen.
 */
export function screenSizedGif(width: number, height: number, frames: number): Buffer {
  const screen = Buffer.alloc(7);
  screen.writeUInt16LE(width, 0);
  screen.writeUInt16LE(height, 2);
  screen[4] = 0x80; // a global colour table of 2 colours
  const loop = Buffer.from([0x21, 0xff, 0x0b, ...Buffer.from('NETSCAPE2.0'), 3, 1, 0, 0, 0]);
  // Per frame: a 0.1 s delay, a 1×1 image at (0, 0), LZW (minimum code size 2) of clear, 0, end.
  const frame = Buffer.from([0x21, 0xf9, 4, 0, 10, 0, 0, 0, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0]);
  return Buffer.concat([
    Buffer.from('GIF89a'),
    screen,
    Buffer.from([0, 0, 0, 255, 255, 255]),
    loop,
    ...Array.from({ length: frames }, () => frame),
    Buffer.from([0x3b]),
  ]);
}

export function pixelBomb(): Buffer {
  const real = png(1, 1);
  const bomb = Buffer.from(real);
  bomb.writeUInt32BE(100_000, 16);
  bomb.writeUInt32BE(100_000, 20);
  // Fix the IHDR CRC so only the size is hostile.
  const crc = crc32(bomb.subarray(12, 29));
  bomb.writeUInt32BE(crc, 29);
  return bomb;
}

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** A small MP4 (H.264, 64×48, 1 s) kept in test/fixtures. */
export function mp4(): Buffer {
  return readFileSync(new URL('./fixtures/clip.mp4', import.meta.url));
}

/** A three-frame animated GIF, 40×30. */
export async function animatedGif(): Promise<Buffer> {
  const frame = (colour: string) =>
    sharp({ create: { width: 40, height: 30, channels: 4, background: colour } })
      .png()
      .toBuffer();
  return sharp([await frame('#ff0000'), await frame('#00ff00'), await frame('#0000ff')], {
    join: { animated: true },
  })
    .gif()
    .toBuffer();
}
