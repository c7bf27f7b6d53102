/**
 * Files the preview tests make for themselves at test time: videos from ffmpeg's own test
 * sources, PDFs written in code, and the hostile cases of each (a 10-hour video, a
 * 10,000-page PDF, a video lying about its size, a PDF whose image inflates to gigabytes).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deflateSync } from 'node:zlib';

const FFMPEG = () => process.env.FFMPEG_PATH || 'ffmpeg';

/** Runs ffmpeg with `args` (inputs and codec) writing `file` in a folder of its own; the bytes. */
function ffmpegMade(file: string, args: string[]): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'assetgate-video-'));
  try {
    const out = path.join(dir, file);
    execFileSync(FFMPEG(), ['-hide_banner', '-loglevel', 'error', ...args, out]);
    return fs.readFileSync(out);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface VideoOptions {
  /** Like `320x240`. @default 320x240 */
  size?: string;
  /** Frames a second. @default 10 */
  rate?: string;
  /** The first seconds drawn all black (a black opening). @default 0 */
  blackFor?: number;
  /** `moov` before the media data (web-optimised), else after it, as ffmpeg writes by default. */
  faststart?: boolean;
}

/**
 * An MP4 (H.264) of `seconds` whose picture changes each second (ffmpeg's `testsrc` shows a
 * counter), made by ffmpeg's own test source at test time.
 */
export function makeVideo(seconds: number, options: VideoOptions = {}): Buffer {
  const { size = '320x240', rate = '10', blackFor = 0 } = options;
  const black = blackFor > 0 ? ['-vf', `drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='lt(t,${blackFor})'`] : [];
  return ffmpegMade('clip.mp4', [
    ...['-f', 'lavfi', '-i', `testsrc=duration=${seconds}:size=${size}:rate=${rate}`, ...black],
    ...['-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast'],
    ...(options.faststart ? ['-movflags', '+faststart'] : []),
  ]);
}

/** A real 10-hour MP4, cheaply: 32×32 pixels, one frame a minute (600 frames). */
export function tenHourVideo(): Buffer {
  return makeVideo(36_000, { size: '32x32', rate: '1/60' });
}

/**
 * A QuickTime file of uncompressed video (`rawvideo`, 150 KiB a frame), `seconds` long at
 * 25 frames a second: large for few seconds of ffmpeg's work, `moov` at the end.
 */
export function rawVideo(seconds: number): Buffer {
  return ffmpegMade('raw.mov', [
    ...['-f', 'lavfi', '-i', `testsrc=duration=${seconds}:size=320x240:rate=25`],
    ...['-pix_fmt', 'uyvy422', '-c:v', 'rawvideo'],
  ]);
}

/**
 * `mp4` with the bytes of its pictures (the `mdat` box) overwritten: its index whole (it is
 * read at upload), nothing in it decodable.
 */
export function withoutPictures(mp4: Buffer): Buffer {
  const copy = Buffer.from(mp4);
  const mdat = topLevelBoxes(copy).find((box) => box.type === 'mdat');
  if (!mdat) throw new Error('no mdat box');
  copy.fill(0xff, mdat.offset + 8, mdat.offset + mdat.size);
  return copy;
}

/** The top-level boxes of an ISO media file, in order: type and offset. */
export function topLevelBoxes(file: Buffer): { type: string; offset: number; size: number }[] {
  const boxes = [];
  let offset = 0;
  while (offset + 8 <= file.length) {
    let size = file.readUInt32BE(offset);
    const type = file.toString('latin1', offset + 4, offset + 8);
    if (size === 1) size = Number(file.readBigUInt64BE(offset + 8));
    if (size === 0) size = file.length - offset;
    boxes.push({ type, offset, size });
    offset += size;
  }
  return boxes;
}

/**
 * `mp4` with its video track's declared size (the `tkhd` box and the `avc1` sample entry)
 * changed to `width`×`height`; the H.264 stream inside keeps its own.
 */
export function lyingAboutSize(mp4: Buffer, width: number, height: number): Buffer {
  const copy = Buffer.from(mp4);
  for (let at = copy.indexOf('tkhd'); at !== -1; at = copy.indexOf('tkhd', at + 4)) {
    const version = copy[at + 4];
    const field = at + 4 + (version === 1 ? 88 : 76);
    if (copy.readUInt32BE(field) === 0) continue; // an audio track: no size
    copy.writeUInt32BE(width * 65536, field);
    copy.writeUInt32BE(height * 65536, field + 4);
  }
  const entry = copy.indexOf('avc1', copy.indexOf('stsd')); // not the brand of the same name in ftyp
  if (entry === -1) throw new Error('no avc1 sample entry');
  copy.writeUInt16BE(width, entry + 28);
  copy.writeUInt16BE(height, entry + 30);
  return copy;
}

/** A PDF of `objects` (numbered from 1; the first is the catalog), with its cross-reference table. */
function pdfOf(objects: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from('%PDF-1.4\n', 'latin1')];
  let length = parts[0].length;
  const offsets: number[] = [];
  objects.forEach((object, i) => {
    offsets.push(length);
    const part = Buffer.concat([
      Buffer.from(`${i + 1} 0 obj\n`, 'latin1'),
      typeof object === 'string' ? Buffer.from(object, 'latin1') : object,
      Buffer.from('\nendobj\n', 'latin1'),
    ]);
    parts.push(part);
    length += part.length;
  });
  let xref = `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) xref += `${String(offset).padStart(10, '0')} 00000 n \n`;
  xref += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`;
  return Buffer.concat([...parts, Buffer.from(xref, 'latin1')]);
}

/** A PDF of `pages` pages that all draw one shared content stream, two rectangles (about 60 bytes a page). */
export function manyPagePdf(pages: number): Buffer {
  return sharedPagePdf(pages, '0 0 1 rg 72 400 468 200 re f 1 0 0 rg 72 100 468 200 re f');
}

/** A PDF of `pages` pages that all show one shared line of three words: "alpha beta gamma". */
export function wordyPdf(pages: number): Buffer {
  return sharedPagePdf(pages, 'BT /F1 12 Tf 72 700 Td (alpha beta gamma) Tj ET');
}

/** A PDF of `pages` pages that all draw `content` (in Helvetica as /F1 when it writes). */
function sharedPagePdf(pages: number, content: string): Buffer {
  const kids = Array.from({ length: pages }, (_, i) => `${5 + i} 0 R`).join(' ');
  return pdfOf([
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${kids}] /Count ${pages} /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> >>`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    ...Array.from({ length: pages }, () => '<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>'),
  ]);
}

/**
 * A one-page PDF whose page draws an image of `side`×`side` black pixels (1 bit each,
 * deflated) over the whole page: a few tens of kilobytes that decode to `side`² pixels
 * (20,000: 400 million; drawn whole, over a minute and 3.6 GB here).
 */
export function pdfBomb(side: number): Buffer {
  const data = deflateSync(Buffer.alloc(Math.ceil(side / 8) * side), { level: 9 });
  const content = 'q 612 0 0 792 0 0 cm /Im1 Do Q';
  return pdfOf([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im1 5 0 R >> >> /Contents 4 0 R >>',
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    Buffer.concat([
      Buffer.from(
        `<< /Type /XObject /Subtype /Image /Width ${side} /Height ${side} /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /FlateDecode /Length ${data.length} >>\nstream\n`,
        'latin1',
      ),
      data,
      Buffer.from('\nendstream', 'latin1'),
    ]),
  ]);
}
