/**
 * Previews: the picture a rendition of a PDF, a video or an audio file is made from (a page,
 * a frame, a waveform). Which one a URL asks for is decided here, before anything is made;
 * the picture is then made (PDF pages in the worker pool, frames and waveforms by ffmpeg)
 * and goes through the same `render` as an image, into the same rendition cache.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AssetRow } from '../../db/types.js';
import { BadUserInputError, UnsupportedMediaTypeError } from '../../errors.js';
import type { ExtractPool } from '../../jobs/extract-pool.js';
import type { RenderRequest, RenderResult } from '../../jobs/extract-types.js';
import { PAGE_MAX_SIDE } from '../../jobs/pdf-page.js';
import type { Ffmpeg } from '../../adapters/ffmpeg.js';
import { peaks, WAVEFORM, WAVEFORM_RATE, waveformSvg } from './waveform.js';

/**
 * What a preview is made from: page `at` of a PDF, the frame at `at` seconds, the poster
 * (the first frame from `at` seconds on that is not black), or the waveform.
 */
export interface PreviewSource {
  kind: 'page' | 'frame' | 'poster' | 'waveform';
  /** The page (1-based) or the second; 0 for a waveform. */
  at: number;
  /** The largest picture it can give: renditions never ask past it. */
  width: number;
  height: number;
}

/** Width of a preview asked without `w` or `h`. */
export const PREVIEW_WIDTH = 1024;
/** Longest side of a video frame taken (a 4K frame whole); a stream claiming more is scaled down. */
const FRAME_MAX_SIDE = 3840;
/**
 * The poster frame is looked for from this far into a video on (a title card is usually over
 * by then), and is the first frame from there that is not black (a fade, a black opening).
 */
const POSTER_AT = 0.1;

export const FFMPEG_MISSING =
  'Video and audio previews are off on this server: no ffmpeg was found (install it, or set FFMPEG_PATH).';

/** The types a preview is made for. */
export const PREVIEWABLE = new Set(['PDF', 'VIDEO', 'AUDIO']);

/**
 * The preview `page` or `t` ask of `asset` (null for an image, which is its own picture).
 * A parameter that does not apply to the asset's type, a page past the document's last
 * and a time past the video's end are BAD_USER_INPUT, named; a video or an audio file on
 * a server without ffmpeg is UNSUPPORTED_MEDIA_TYPE, and so is a video that declares more
 * than `limits.maxPixels` pixels a frame (never handed to a decoder).
 */
export function previewSourceOf(
  asset: Pick<AssetRow, 'type' | 'width' | 'height' | 'page_count' | 'duration'>,
  params: { page?: number; t?: number },
  limits: { ffmpeg: boolean; maxPixels: number },
): PreviewSource | null {
  const refuse = (name: 'page' | 't', what: string) => {
    if (params[name] !== undefined) throw new BadUserInputError(name, `"${name}" applies to ${what} only.`);
  };
  if (asset.type !== 'PDF') refuse('page', 'PDFs');
  if (asset.type !== 'VIDEO') refuse('t', 'videos');
  if (asset.type === 'IMAGE') return null;
  if (asset.type === 'PDF') {
    const page = params.page ?? 1;
    if (asset.page_count !== null && page > asset.page_count) {
      throw new BadUserInputError('page', `"page" is at most ${asset.page_count}: the document's last page.`);
    }
    return { kind: 'page', at: page, width: PAGE_MAX_SIDE, height: PAGE_MAX_SIDE };
  }
  if (asset.type !== 'VIDEO' && asset.type !== 'AUDIO') {
    throw new BadUserInputError('w', 'Renditions are made of images, PDFs, videos and audio only.');
  }
  if (!limits.ffmpeg) throw new UnsupportedMediaTypeError(FFMPEG_MISSING);
  if (asset.type === 'AUDIO') return { kind: 'waveform', at: 0, ...WAVEFORM };
  const pixels = (asset.width ?? 0) * (asset.height ?? 0);
  if (pixels > limits.maxPixels) {
    throw new UnsupportedMediaTypeError(
      `This preview cannot be rendered: the video declares ${asset.width}×${asset.height} pixels a frame, over the limit of ${limits.maxPixels}.`,
    );
  }
  const duration = asset.duration;
  if (params.t !== undefined && duration !== null && params.t > duration) {
    throw new BadUserInputError('t', `"t" is at most ${duration.toFixed(1)}: the video's length in seconds.`);
  }
  const side = (value: number | null) => Math.min(value ?? FRAME_MAX_SIDE, FRAME_MAX_SIDE);
  const size = { width: side(asset.width), height: side(asset.height) };
  if (params.t !== undefined) return { kind: 'frame', at: params.t, ...size };
  return { kind: 'poster', at: duration ? Math.floor(duration * POSTER_AT * 10) / 10 : 0, ...size };
}

/** The part of a rendition's cache name that says which preview it was made from. */
export function previewName(source: PreviewSource | null): string {
  if (!source) return '';
  switch (source.kind) {
    case 'page':
      return `-p${source.at}`;
    case 'frame':
      return `-t${source.at.toFixed(3)}`;
    case 'poster':
      return `-poster${source.at.toFixed(3)}`;
    case 'waveform':
      return '-wave';
  }
}

export interface PreviewMakerDeps {
  pool: Pick<ExtractPool, 'render' | 'renderPage'>;
  /** Null: no ffmpeg, video and audio previews are off. */
  ffmpeg: Ffmpeg | null;
}

/** Makes the rendition `request` of the preview `source`, using `work` (a private directory) for its picture. */
export function createPreviewMaker(deps: PreviewMakerDeps) {
  return {
    ffmpeg: deps.ffmpeg,
    async make(source: PreviewSource, request: RenderRequest, work: string): Promise<RenderResult> {
      if (source.kind === 'page') {
        return deps.pool.renderPage({ ...request, page: source.at, picture: path.join(work, 'page.png') });
      }
      if (!deps.ffmpeg) throw new UnsupportedMediaTypeError(FFMPEG_MISSING);
      const picture = path.join(work, source.kind === 'waveform' ? 'waveform.svg' : 'frame.png');
      if (source.kind !== 'waveform') {
        // Scaled by ffmpeg to what the box needs (the frame covers it), not decoded at full size twice.
        const factor = Math.max((request.width ?? 0) / source.width, (request.height ?? 0) / source.height);
        const side = Math.min(FRAME_MAX_SIDE, Math.ceil(factor * Math.max(source.width, source.height)) + 2);
        if (source.kind === 'poster')
          await deps.ffmpeg.poster(request.path, picture, { from: source.at, maxSide: side });
        else await deps.ffmpeg.frame(request.path, picture, { seconds: source.at, maxSide: side });
      } else {
        let levels: number[] = [];
        await deps.ffmpeg.pcm(request.path, WAVEFORM_RATE, async (pcm) => {
          levels = await peaks(pcm, WAVEFORM.width / 2);
        });
        await writeFile(picture, waveformSvg(levels));
      }
      return deps.pool.render({ ...request, path: picture });
    },
  };
}

export type PreviewMaker = ReturnType<typeof createPreviewMaker>;
