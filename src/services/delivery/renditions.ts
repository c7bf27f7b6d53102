import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type BlobStore, createBlobKey } from '../../blob/index.js';
import { nowIso } from '../../db/database.js';
import type { RenditionRepository } from '../../db/rendition-repository.js';
import type { RenditionCache } from './rendition-cache.js';
import type { AssetRow, RenditionRow } from '../../db/types.js';
import { BadUserInputError, NotFoundError, ServiceUnavailableError, UnsupportedMediaTypeError } from '../../errors.js';
import { type ExtractPool, ExtractionFailure } from '../../jobs/extract-pool.js';
import type { RenderRequest } from '../../jobs/extract-types.js';
import { FfmpegFailure } from '../../adapters/ffmpeg.js';
import { PREVIEW_WIDTH, type PreviewMaker, type PreviewSource, previewName, previewSourceOf } from './previews.js';

export const FITS = ['cover', 'contain', 'inside', 'fill'] as const;
export const FORMATS = ['webp', 'avif', 'jpeg', 'png'] as const;
export type Fit = (typeof FITS)[number];
export type Format = (typeof FORMATS)[number];

/** What a URL asks of a rendition, checked but not yet fitted to an asset. */
export interface RenditionParams {
  w?: number;
  h?: number;
  fit?: Fit;
  format: Format | 'auto';
  q?: number;
  dpr: number;
  /** The page of a PDF (1-based). */
  page?: number;
  /** The time of a video's frame, seconds. */
  t?: number;
}

/** Query parameters the download routes know; any other is a mistake worth a 400. */
const KNOWN = new Set(['w', 'h', 'fit', 'format', 'q', 'dpr', 'page', 't', 'v', 'thumbnail']);
const RENDITION = ['w', 'h', 'fit', 'format', 'q', 'dpr', 'page', 't'];
/** Longest time `t` may name, seconds (100 hours). */
const MAX_TIME = 360_000;
const MAX_SIDE = 8192;
const EXTENSIONS: Record<Format | 'gif', string> = { webp: 'webp', avif: 'avif', jpeg: 'jpg', png: 'png', gif: 'gif' };
const QUALITY: Record<Format | 'gif', number> = { webp: 80, avif: 50, jpeg: 80, png: 100, gif: 100 };
/**
 * What `q` snaps up to (past the last, the last): a few variants per box, not a hundred,
 * and steps apart that a viewer can tell. PNG and GIF are lossless here: `q` changes nothing.
 */
export const QUALITIES = [50, 75, 90] as const;
const LOSSLESS = new Set<Format | 'gif'>(['png', 'gif']);

/**
 * The rendition a download URL asks for; null when it asks for the original. Unknown,
 * repeated and out-of-range parameters are BAD_USER_INPUT, named.
 */
export function parseRendition(params: URLSearchParams): RenditionParams | null {
  for (const name of new Set(params.keys())) {
    if (!KNOWN.has(name)) {
      throw new BadUserInputError(
        name,
        `Unknown parameter "${name.slice(0, 40)}": renditions take ${RENDITION.join(', ')}.`,
      );
    }
    if (params.getAll(name).length > 1) throw new BadUserInputError(name, `"${name}" is given more than once.`);
  }
  if (!RENDITION.some((name) => params.has(name))) return null;
  const whole = (name: string, min: number, max: number): number | undefined => {
    const value = params.get(name);
    if (value === null) return undefined;
    if (!/^\d{1,5}$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new BadUserInputError(name, `"${name}" is a whole number from ${min} to ${max}.`);
    }
    return Number(value);
  };
  const oneOf = <T extends string>(name: string, values: readonly T[]): T | undefined => {
    const value = params.get(name);
    if (value === null) return undefined;
    if (!values.includes(value as T)) throw new BadUserInputError(name, `"${name}" is one of ${values.join(', ')}.`);
    return value as T;
  };
  const dpr = params.get('dpr');
  if (dpr !== null && (!/^[0-9](\.[0-9]{1,2})?$/.test(dpr) || Number(dpr) < 1 || Number(dpr) > 3)) {
    throw new BadUserInputError('dpr', '"dpr" is a number from 1 to 3.');
  }
  const t = params.get('t');
  if (t !== null && (!/^\d{1,6}(\.\d{1,3})?$/.test(t) || Number(t) > MAX_TIME)) {
    throw new BadUserInputError('t', `"t" is a number of seconds from 0 to ${MAX_TIME}, at most 3 decimals.`);
  }
  return {
    w: whole('w', 1, MAX_SIDE),
    h: whole('h', 1, MAX_SIDE),
    fit: oneOf('fit', FITS),
    format: oneOf('format', [...FORMATS, 'auto'] as const) ?? 'auto',
    q: whole('q', 1, 100),
    dpr: dpr === null ? 1 : Number(dpr),
    page: whole('page', 1, 99_999),
    t: t === null ? undefined : Number(t),
  };
}

/** Originals that may be animated: kept animated as WebP, which AVIF output here is not. */
const ANIMATABLE = new Set(['image/gif', 'image/webp']);

/** `format=auto`: AVIF, then WebP, from what the client accepts; else the original's own format. */
export function negotiate(accept: string | undefined, original: string | null): Format | 'gif' {
  const accepted = (type: string) => (accept ?? '').toLowerCase().includes(type);
  if (accepted('image/avif') && !ANIMATABLE.has(original ?? '')) return 'avif';
  if (accepted('image/webp')) return 'webp';
  switch (original) {
    case 'image/png':
      return 'png';
    case 'image/gif':
      return 'gif';
    case 'image/webp':
      return 'webp';
    default:
      return 'jpeg';
  }
}

/** The exact rendition to make of one asset: what its cache row is keyed by. */
export interface Variant {
  width: number | null;
  height: number | null;
  fit: Fit;
  format: Format | 'gif';
  quality: number;
  focal: { x: number; y: number } | null;
  /** What the rendition of a PDF, video or audio file is made from; null for an image. */
  preview: PreviewSource | null;
  /** Only the first frame of an animated original (thumbnails). */
  still?: boolean;
}

/** The first allowed size at or above `value`, else the largest. */
function snap(value: number, allowed: readonly number[]): number {
  return allowed.find((size) => size >= value) ?? allowed[allowed.length - 1];
}

/** The tag of the bytes a version-naming URL carries (`v=`): changes when the bytes change. */
export function versionOf(asset: Pick<AssetRow, 'checksum'>): string {
  return (asset.checksum ?? '').replace(/^sha256:/, '').slice(0, 12);
}

export interface RenditionServiceDeps {
  renditions: RenditionRepository;
  blobs: BlobStore;
  pool: Pick<ExtractPool, 'render'>;
  /** Its bounds: byte budget, cap per asset, new transforms for callers without a key. */
  cache: RenditionCache;
  /** Sizes widths and heights snap up to, ascending. */
  widths: readonly number[];
  /** Renditions being made at once (waiting for a worker included); past it, new ones wait in line. */
  queueLimit: number;
  /** How long a new rendition waits in line for a place, ms; past it (or with the line full), 503. 0: no line. */
  queueWaitMs: number;
  maxImagePixels: number;
  /** Makes the pictures of PDFs, videos and audio; without it only images have renditions. */
  previews?: PreviewMaker;
  clock: () => number;
}

/**
 * Image renditions on request: the parameters are fitted to the asset (device pixel
 * ratio applied, snapped up to the allowed sizes, never past the original), and the
 * rendition is made once in the extraction worker pool, kept as a derived blob keyed by
 * the variant and the bytes' digest, and served from the store from then on, within the
 * bounds of its cache (`RenditionCache`). Concurrent first requests for one rendition
 * share one transform; past `queueLimit` new ones wait in a line of bounded length and for a
 * bounded time (a page of new thumbnails asked at once is answered, a little later), and past
 * those they are refused (503) rather than queued without end.
 */
/** Requests the line holds per place of `queueLimit`. */
const LINE_PER_PLACE = 4;

export class RenditionService {
  readonly #making = new Map<string, Promise<RenditionRow>>();
  /** Places of `queueLimit` taken: by a transform, or by a request deciding whether it needs one. */
  #busy = 0;
  /** Requests waiting for a place, first come first served: each is given the place a request frees. */
  readonly #line: (() => void)[] = [];
  #made = 0;

  constructor(private readonly deps: RenditionServiceDeps) {}

  /** Fits `params` to `asset`; `accept` decides `format=auto`. */
  variantOf(asset: AssetRow, params: RenditionParams, accept?: string): Variant {
    const preview = this.deps.previews
      ? previewSourceOf(asset, params, { ffmpeg: !!this.deps.previews.ffmpeg, maxPixels: this.deps.maxImagePixels })
      : null;
    const original = preview ?? { width: asset.width, height: asset.height };
    if ((asset.type !== 'IMAGE' && !preview) || !original.width || !original.height || !asset.blob_key) {
      throw new BadUserInputError('w', 'Renditions are made of images with known dimensions only.');
    }
    const { widths } = this.deps;
    let width = params.w ? snap(Math.ceil(params.w * params.dpr), widths) : null;
    // A box asked with both sides snaps as one: its width to the allowed sizes, its height
    // from the asked ratio, so a crop keeps the shape it was asked in.
    let height = params.h
      ? params.w
        ? Math.max(1, Math.round((width! * params.h) / params.w))
        : snap(Math.ceil(params.h * params.dpr), widths)
      : null;
    // Never past the original: a box larger than it shrinks, keeping its shape.
    const shrink = Math.min(1, width ? original.width / width : 1, height ? original.height / height : 1);
    if (shrink < 1) {
      width = width && Math.max(1, Math.round(width * shrink));
      height = height && Math.max(1, Math.round(height * shrink));
    }
    // A change of format alone: at the original's size (a preview's: PREVIEW_WIDTH at most).
    if (!width && !height) width = preview ? Math.min(PREVIEW_WIDTH, original.width) : original.width;
    const fit = params.fit ?? (width && height ? 'cover' : 'inside');
    const format = params.format === 'auto' ? negotiate(accept, asset.mime_type) : params.format;
    const focal =
      fit === 'cover' && width && height && asset.focal_x !== null && asset.focal_y !== null
        ? { x: asset.focal_x, y: asset.focal_y }
        : null;
    const quality = params.q === undefined || LOSSLESS.has(format) ? QUALITY[format] : snap(params.q, QUALITIES);
    return { width, height, fit, format, quality, focal, preview };
  }

  /** The name a variant is cached under: its parameters and the digest of the bytes. */
  static variantName(asset: Pick<AssetRow, 'checksum'>, variant: Variant): string {
    const focal = variant.focal ? `@${variant.focal.x.toFixed(4)},${variant.focal.y.toFixed(4)}` : '';
    const from = previewName(variant.preview);
    const still = variant.still ? '-still' : '';
    return `${variant.width ?? ''}x${variant.height ?? ''}-${variant.fit}-q${variant.quality}${focal}${from}${still}.${variant.format}.${versionOf(asset)}`;
  }

  /**
   * The rendition `variant` of `asset`, made now if it was not. `client`: the address of a
   * caller without a key, whose new transforms are rate-limited (RATE_LIMITED); kept
   * renditions are served to anyone. `signal`: the caller went away; a request still
   * waiting in line then leaves it (SERVICE_UNAVAILABLE) rather than making a rendition for nobody.
   */
  async get(
    asset: AssetRow,
    variant: Variant,
    { client, signal }: { client?: string; signal?: AbortSignal } = {},
  ): Promise<RenditionRow> {
    const name = RenditionService.variantName(asset, variant);
    const kept = await this.deps.renditions.find(asset.id, name);
    if (kept) {
      await this.deps.cache.used(kept);
      return kept;
    }
    const flight = `${asset.id}/${name}`;
    let making = this.#making.get(flight);
    if (making) return making;
    await this.deps.cache.admit(client);
    making = this.#making.get(flight); // started by another request while this one was admitted
    if (making) return making;
    const waited = await this.#place(signal);
    // From here this request holds a place: it is handed on unless a transform takes it.
    let holding = true;
    try {
      making = this.#making.get(flight);
      if (!making && waited) {
        // Made meanwhile by a request that has ended: serve what it kept.
        const made = await this.deps.renditions.find(asset.id, name);
        if (made) return made;
        making = this.#making.get(flight);
      }
      if (making) return making;
      making = this.#make(asset, name, variant).finally(() => {
        this.#making.delete(flight);
        this.#free();
      });
      holding = false;
      this.#making.set(flight, making);
      return making;
    } finally {
      if (holding) this.#free();
    }
  }

  /**
   * Takes one of the `queueLimit` places, at once when one is free and nobody waits for it,
   * else in line behind those who do: true when it waited. A place freed passes straight to
   * the first in line, so nobody arriving later takes it first. Throws SERVICE_UNAVAILABLE
   * when the line is full, the wait passes `queueWaitMs`, or `signal` ends the wait.
   */
  async #place(signal: AbortSignal | undefined): Promise<boolean> {
    if (this.#busy < this.deps.queueLimit && this.#line.length === 0) {
      this.#busy += 1;
      return false;
    }
    const busy = () =>
      new ServiceUnavailableError(1, 'Too many renditions are being made at once; try again in a moment.');
    if (this.deps.queueWaitMs <= 0 || this.#line.length >= this.deps.queueLimit * LINE_PER_PLACE) throw busy();
    if (signal?.aborted) throw new ServiceUnavailableError(1, 'The request ended while it waited for a rendition.');
    await new Promise<void>((resolve, reject) => {
      const leave = (error: ServiceUnavailableError) => {
        const at = this.#line.indexOf(given);
        if (at !== -1) this.#line.splice(at, 1);
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        reject(error);
      };
      const given = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        resolve();
      };
      const aborted = () => leave(new ServiceUnavailableError(1, 'The request ended while it waited for a rendition.'));
      const timer = setTimeout(() => leave(busy()), this.deps.queueWaitMs);
      signal?.addEventListener('abort', aborted, { once: true });
      this.#line.push(given);
    });
    return true;
  }

  /** Gives a place up: to the first in line, or back to the free ones. */
  #free(): void {
    const next = this.#line.shift();
    if (next) next();
    else this.#busy -= 1;
  }

  /** Requests waiting in line for a place. */
  get waiting(): number {
    return this.#line.length;
  }

  /**
   * Forgets `row` when its blob is gone (evicted between finding and serving it), so the
   * next `get` makes it again; false when the blob is there, and the fault is elsewhere.
   */
  async lost(row: RenditionRow): Promise<boolean> {
    if (await this.deps.blobs.head(row.blob_key)) return false;
    await this.deps.renditions.remove([row]);
    return true;
  }

  /** The ffmpeg video and audio previews are made with; null: they are off. */
  get ffmpeg(): string | null {
    return this.deps.previews?.ffmpeg?.path ?? null;
  }

  /** Renditions being made now. */
  get inFlight(): number {
    return this.#making.size;
  }

  /** Renditions this process has made (transforms run) since it started. */
  get made(): number {
    return this.#made;
  }

  async #make(asset: AssetRow, name: string, variant: Variant): Promise<RenditionRow> {
    const { deps } = this;
    const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'assetgate-render-'));
    try {
      let source = deps.blobs.localPath?.(asset.blob_key!) ?? null;
      if (!source) {
        const stream = await deps.blobs.get(asset.blob_key!);
        if (!stream) throw new NotFoundError();
        source = path.join(work, 'original');
        await pipeline(stream, createWriteStream(source));
      }
      const out = path.join(work, `rendition.${EXTENSIONS[variant.format]}`);
      const { preview, ...box } = variant;
      const request: RenderRequest = { path: source, out, maxImagePixels: deps.maxImagePixels, ...box };
      let made;
      this.#made += 1;
      try {
        made = await (preview ? deps.previews!.make(preview, request, work) : deps.pool.render(request));
      } catch (error) {
        if (error instanceof ExtractionFailure || error instanceof FfmpegFailure) {
          const reason = error instanceof ExtractionFailure ? error.reason : error.message;
          throw new UnsupportedMediaTypeError(`This ${preview ? 'preview' : 'image'} cannot be rendered: ${reason}`);
        }
        throw error;
      }
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(out)) hash.update(chunk as Buffer);
      const { size } = await fsp.stat(out);
      // A key of its own each time it is made: an eviction of an earlier copy never deletes this one.
      const key = createBlobKey(asset.id, `r${randomBytes(7).toString('hex')}`);
      await deps.blobs.put(key, createReadStream(out));
      const at = nowIso(deps.clock);
      const row = await deps.renditions.insert({
        asset_id: asset.id,
        variant: name,
        org_id: asset.org_id,
        blob_key: key,
        mime_type: `image/${variant.format}`,
        size,
        width: made.width,
        height: made.height,
        checksum: `sha256:${hash.digest('hex')}`,
        animated: made.animated ? 1 : 0,
        created_at: at,
        used_at: at,
      });
      // Not recorded: the asset went while it was made, or another gateway recorded its own copy.
      if (row?.blob_key !== key) await deps.blobs.delete(key);
      if (!row) throw new NotFoundError();
      await deps.cache.evict(row);
      return row;
    } finally {
      await fsp.rm(work, { recursive: true, force: true });
    }
  }
}
