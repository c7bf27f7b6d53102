/**
 * Runs in a worker thread (piscina), never on the server's event loop: every
 * parser of untrusted bytes lives here, under the pool's time and memory caps.
 * Reads one local file, returns what could be learnt, writes thumbnails to the
 * paths it is given.
 */
import { createReadStream } from 'node:fs';
import { imageSize } from 'image-size';
import { open as openFile, readFile } from 'node:fs/promises';
import { dominantColor } from './dominant-color.js';
import {
  type ExtractRequest,
  type ExtractResult,
  type PageRenderRequest,
  type RenderRequest,
  type RenderResult,
  SEARCH_TEXT_LIMIT,
} from './extract-types.js';

import { drawPage, openPdf } from './pdf-page.js';

/** Longest side of the ThumbHash input (and of the pixels the colour is counted on). */
const PLACEHOLDER_SIZE = 100;

/**
 * Formats whose size is the header's, not the first frame's: a GIF's logical screen holds
 * every frame (libvips tells the first frame's, 1×1 for a 4000×4000 GIF of 1×1 frames).
 */
const SCREEN_SIZED = new Set(['gif']);
/** Enough of a file for the headers `declared` reads. */
const HEADER_BYTES = 4096;

/** Formats libvips (sharp) cannot decode: header dimensions only. */
const HEADER_ONLY_IMAGES = new Set(['image/bmp', 'image/x-icon', 'image/vnd.microsoft.icon', 'image/x-ms-bmp']);

export default async function extract(request: ExtractRequest): Promise<ExtractResult> {
  switch (request.type) {
    case 'IMAGE':
      return HEADER_ONLY_IMAGES.has(request.mimeType) ? headerOnlyImage(request) : image(request);
    case 'PDF':
      return pdf(request);
    case 'AUDIO':
    case 'VIDEO':
      return media(request);
    default:
      // Only text-like files come here (see hasExtractor in services/delivery/processing.ts).
      return text(request);
  }
}

/** The size an image's header declares, read from its first bytes only (a GIF's: its first 10). */
async function declared(file: string): Promise<{ width: number; height: number }> {
  const handle = await openFile(file);
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(HEADER_BYTES), 0, HEADER_BYTES, 0);
    const info = imageSize(buffer.subarray(0, bytesRead));
    return { width: info.width, height: info.height };
  } finally {
    await handle.close();
  }
}

async function headerOnlyImage(request: ExtractRequest): Promise<ExtractResult> {
  const head = await readFile(request.path);
  const info = imageSize(head);
  return { width: info.width, height: info.height, format: info.type };
}

/**
 * What an image is, and the little that READY promises of it: its size, format, placeholder
 * and colour. Thumbnails are not made here: they are renditions, made on first request
 * (see services/delivery/thumbnails.ts). The pixels are decoded once, straight to at most
 * 100×100: JPEG and WebP shrink while they load (libvips decodes at 1/2, 1/4 or 1/8 scale),
 * so a large photo costs a fraction of a full decode.
 */
async function image(request: ExtractRequest): Promise<ExtractResult> {
  const { default: sharp } = await import('sharp');
  const { rgbaToThumbHash } = await import('thumbhash');
  sharp.cache(false);
  const open = () =>
    sharp(request.path, { limitInputPixels: request.maxImagePixels, failOn: 'error', sequentialRead: true });
  const meta = await open().metadata();
  // Told without decoding a frame: what the header declares, for formats whose frames may be smaller.
  const { width, height } = SCREEN_SIZED.has(meta.format ?? '') ? await declared(request.path) : meta;
  if (!width || !height) throw new Error('the image has no dimensions');
  if (width * height > request.maxImagePixels) {
    throw new Error(`the image declares ${width}×${height} pixels, over the limit of ${request.maxImagePixels}`);
  }
  // EXIF orientations 5-8 turn the picture by 90°: report what a viewer shows.
  const rotated = (meta.orientation ?? 1) >= 5;
  // Never enlarged: a ThumbHash takes any size up to 100×100. sharp's stats() is not used for
  // the colour: it reads the whole picture and cost as much as everything else here.
  const small = await open()
    .rotate()
    .resize(PLACEHOLDER_SIZE, PLACEHOLDER_SIZE, { fit: 'inside', withoutEnlargement: true, fastShrinkOnLoad: true })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const placeholder = Buffer.from(rgbaToThumbHash(small.info.width, small.info.height, small.data)).toString('base64');
  return {
    width: rotated ? height : width,
    height: rotated ? width : height,
    format: meta.format,
    hasAlpha: meta.hasAlpha,
    dominantColor: dominantColor(small.data),
    placeholder,
  };
}

async function pdf(request: ExtractRequest): Promise<ExtractResult> {
  const document = await openPdf(request.path);
  try {
    const info = (await document.getMetadata()).info as Record<string, unknown>;
    let words = 0;
    let text = '';
    const pages = Math.min(document.numPages, request.maxPdfPagesForWords);
    for (let n = 1; n <= pages; n++) {
      const page = await document.getPage(n);
      const content = await page.getTextContent();
      const pageText = content.items.map((item) => ('str' in item ? item.str : ' ')).join(' ');
      words += countWords(pageText);
      if (text.length < SEARCH_TEXT_LIMIT) text = `${text} ${pageText}`.slice(0, SEARCH_TEXT_LIMIT);
      page.cleanup();
    }
    const str = (value: unknown) =>
      typeof value === 'string' && value.trim() ? value.trim().slice(0, 500) : undefined;
    return {
      pageCount: document.numPages,
      wordCount: words,
      text: text.trim() || undefined,
      documentTitle: str(info?.Title),
      author: str(info?.Author),
    };
  } finally {
    await document.destroy();
  }
}

/** ISO base media files (MP4, MOV, M4A): music-metadata knows their audio, mp4box their video. */
const ISO_MEDIA = new Set(['video/mp4', 'video/quicktime', 'video/x-m4v', 'audio/mp4', 'audio/x-m4a', 'video/3gpp']);

async function media(request: ExtractRequest): Promise<ExtractResult> {
  const { parseFile } = await import('music-metadata');
  const { format } = await parseFile(request.path, { duration: true, skipCovers: true });
  const video = format.trackInfo?.find((track) => track.video)?.video;
  const result: ExtractResult = {
    duration: format.duration,
    codec: format.codec,
    container: format.container,
    bitRate: format.bitrate ? Math.round(format.bitrate) : undefined,
    sampleRate: format.sampleRate,
    channels: format.numberOfChannels,
    width: video?.pixelWidth,
    height: video?.pixelHeight,
  };
  if (!ISO_MEDIA.has(request.mimeType)) return result;
  const movie = await isoMovie(request.path);
  const track = movie?.videoTracks?.[0];
  return {
    ...result,
    duration: result.duration ?? (movie && movie.timescale ? movie.duration / movie.timescale : undefined),
    codec: track?.codec ?? result.codec,
    width: result.width ?? track?.video?.width,
    height: result.height ?? track?.video?.height,
  };
}

/** The `moov` of an ISO media file, read box by box (mp4box skips over the media data). */
async function isoMovie(file: string) {
  const { createFile, MP4BoxBuffer } = await import('mp4box');
  const { open } = await import('node:fs/promises');
  const parser = createFile();
  let info: ReturnType<typeof parser.getInfo> | undefined;
  let failure: unknown;
  parser.onReady = (ready) => (info = ready);
  parser.onError = (_module, message) => (failure = new Error(message));
  const handle = await openFile(file);
  try {
    let offset = 0;
    for (let reads = 0; !info && !failure && reads < 256; reads++) {
      const chunk = Buffer.alloc(1 << 20);
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, offset);
      if (bytesRead === 0) break;
      const view = chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + bytesRead);
      offset = parser.appendBuffer(MP4BoxBuffer.fromArrayBuffer(view, offset));
    }
    parser.flush();
  } finally {
    await handle.close();
  }
  if (failure) throw failure;
  return info;
}

function countWords(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

async function text(request: ExtractRequest): Promise<ExtractResult> {
  let words = 0;
  let lines = 0;
  let inWord = false;
  let last = '';
  let text = '';
  for await (const chunk of createReadStream(request.path, { encoding: 'utf8', highWaterMark: 256 * 1024 })) {
    if (text.length < SEARCH_TEXT_LIMIT) text += (chunk as string).slice(0, SEARCH_TEXT_LIMIT - text.length);
    for (const ch of chunk as string) {
      if (ch === '\n') lines += 1;
      const space = ch === ' ' || ch === '\n' || ch === '\t' || ch === '\r' || ch === '\f' || ch === '\v';
      if (!space && !inWord) words += 1;
      inWord = !space;
      last = ch;
    }
  }
  if (last && last !== '\n') lines += 1;
  return { wordCount: words, lineCount: lines, text: text.trim() || undefined };
}

/**
 * Makes one rendition: upright (EXIF orientation applied), resized into the box by `fit`,
 * in `format`, without metadata (so without location). `cover` keeps the focal point in
 * frame, or the centre of attention (sharp's `attention` strategy) without one. Animated
 * GIF and WebP stay animated as WebP or GIF; other formats take the first frame.
 */
export async function render(request: RenderRequest): Promise<RenderResult> {
  const { default: sharp } = await import('sharp');
  sharp.cache(false);
  const options = { limitInputPixels: request.maxImagePixels, failOn: 'error' as const };
  const meta = await sharp(request.path, options).metadata();
  const frames = meta.pages ?? 1;
  const frameHeight = meta.pageHeight ?? meta.height;
  if (!meta.width || !frameHeight) throw new Error('the image has no dimensions');
  if (meta.width * frameHeight * frames > request.maxImagePixels) {
    throw new Error(`the image declares more pixels than the limit of ${request.maxImagePixels}`);
  }
  const animated = frames > 1 && !request.still && (request.format === 'webp' || request.format === 'gif');
  let image = sharp(request.path, { ...options, animated }).rotate();
  const rotated = (meta.orientation ?? 1) >= 5;
  const sourceWidth = rotated ? frameHeight : meta.width;
  const sourceHeight = rotated ? meta.width : frameHeight;
  const { width, height, fit, focal } = request;
  if (fit === 'cover' && width && height && focal && !animated) {
    // Scaled to cover the box, then the window that keeps the focal point nearest its centre.
    const scale = Math.max(width / sourceWidth, height / sourceHeight);
    const scaledWidth = Math.max(width, Math.round(sourceWidth * scale));
    const scaledHeight = Math.max(height, Math.round(sourceHeight * scale));
    const clamp = (value: number, max: number) => Math.min(Math.max(0, Math.round(value)), max);
    // sharp applies an extract called after resize to the resized picture.
    image = image.resize(scaledWidth, scaledHeight, { fit: 'fill' }).extract({
      left: clamp(focal.x * scaledWidth - width / 2, scaledWidth - width),
      top: clamp(focal.y * scaledHeight - height / 2, scaledHeight - height),
      width,
      height,
    });
  } else {
    const transparent = request.format !== 'jpeg';
    image = image.resize(width, height, {
      fit,
      withoutEnlargement: true,
      position: fit === 'cover' && !animated ? sharp.strategy.attention : 'centre',
      background: transparent ? { r: 0, g: 0, b: 0, alpha: 0 } : { r: 255, g: 255, b: 255, alpha: 1 },
    });
  }
  const quality = request.quality;
  switch (request.format) {
    case 'webp':
      image = image.webp({ quality });
      break;
    case 'avif':
      image = image.avif({ quality, effort: 2 });
      break;
    case 'jpeg':
      image = image.flatten({ background: '#ffffff' }).jpeg({ quality, mozjpeg: true });
      break;
    case 'png':
      image = image.png();
      break;
    case 'gif':
      image = image.gif();
      break;
  }
  const info = await image.toFile(request.out);
  // An animated output's height is the strip of every frame; each frame is `pageHeight` tall.
  const outHeight = animated
    ? ((info as { pageHeight?: number }).pageHeight ?? Math.round(info.height / frames))
    : info.height;
  return { width: info.width, height: outHeight, animated, frames };
}

/** Makes a rendition of one page of a PDF: drawn by `drawPage`, then rendered as an image. */
export async function renderPage(request: PageRenderRequest): Promise<RenderResult> {
  await drawPage(request);
  return render({ ...request, path: request.picture });
}
