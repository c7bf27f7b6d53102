import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.js';
import type { BlobStore } from '../blob/index.js';
import type { AssetRow, RenditionRow } from '../db/types.js';
import { ForbiddenError, NotFoundError } from '../errors.js';
import { decodeGlobalId } from '../global-id.js';
import { metadataOf } from '../services/assets/asset-metadata.js';
import type { AssetAccess } from '../services/assets/asset-access.js';
import type { DownloadUrlService } from '../services/delivery/download-urls.js';
import {
  parseRendition,
  type RenditionParams,
  type RenditionService,
  type Variant,
  versionOf,
} from '../services/delivery/renditions.js';
import { thumbnailVariant } from '../services/delivery/thumbnails.js';
import type { HotRendition, HotRenditions } from '../services/delivery/hot-renditions.js';
import { annotate } from './observe.js';
import { answering } from './router.js';
import { serveBlob } from './serve-blob.js';

export interface DownloadRouteDeps {
  access: AssetAccess;
  /** Counts one completed download of an asset. */
  countDownload: (assetId: string) => Promise<void>;
  blobs: BlobStore;
  renditions: RenditionService;
  /** The caller's API key; null for a caller without a key. Throws UNAUTHENTICATED for a bad key. */
  authenticate: (req: IncomingMessage) => Promise<Principal | null>;
  /** Warm renditions held in memory (`RENDITION_HOT_MAX`); without it every request reads the rows. */
  hot?: HotRenditions;
}

/** Headers of the route's own that a held rendition is answered with again. */
const HELD_HEADERS = ['Vary', 'X-Rendition-Frames'];

/**
 * What decides a rendition's answer before any row is read: whose assets the caller may see
 * (a key with read:assets sees its org and mode; anyone, public assets), the URL, and what
 * `format=auto` reads of Accept. Null for a download of the original (counted, not held).
 */
function hotKeyOf(principal: Principal | null, req: IncomingMessage, query: URLSearchParams): string | null {
  if (![...query.keys()].some((name) => name !== 'v')) return null;
  const sees = principal?.scopes.has('read:assets') ? `${principal.orgId}/${principal.mode}` : '';
  const accept = (req.headers.accept ?? '').toLowerCase();
  return `${sees} ${accept.includes('image/avif') ? 'a' : ''}${accept.includes('image/webp') ? 'w' : ''} ${req.url}`;
}

/** Answers a held rendition as `serveBlob` answers a stored one (ETag, 304, ranges, HEAD). */
async function serveHeld(req: IncomingMessage, res: ServerResponse, held: HotRendition): Promise<void> {
  for (const [name, value] of Object.entries(held.headers)) res.setHeader(name, value);
  await serveBlob(req, res, {
    store: {
      get: async () => null,
      sendTo: async (_key, destination, range) => {
        destination.write(range ? held.bytes.subarray(range.start, range.end + 1) : held.bytes);
        return true;
      },
    },
    key: '',
    size: held.bytes.length,
    mimeType: held.mimeType,
    filename: held.filename,
    checksum: held.checksum,
    cacheControl: held.cacheControl,
  });
}

/** Reads a rendition small enough to hold into memory; throws as a missing blob does. */
async function readHeld(blobs: BlobStore, rendition: RenditionRow): Promise<Buffer> {
  const stream = await blobs.get(rendition.blob_key);
  if (!stream) throw new Error(`blob ${rendition.blob_key} is missing`);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  // A memory of its own, exactly as large: a small one cut from Node's shared pool would keep the whole pool alive.
  const bytes = Buffer.allocUnsafeSlow(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) at += chunk.copy(bytes, at);
  return bytes;
}

/**
 * Sends an asset's thumbnail of `size` (WebP), made on first request: a rendition like any
 * other (kept in the rendition cache, made again once evicted). Not counted as a download.
 * Thumbnails of images processed before that was so are blobs of their own, served as they are.
 */
async function sendThumbnail(
  req: IncomingMessage,
  res: ServerResponse,
  options: {
    deps: Pick<DownloadRouteDeps, 'blobs' | 'renditions'>;
    asset: AssetRow;
    size: string;
    cacheControl: string;
    hold?: RenditionDelivery['hold'];
  },
): Promise<void> {
  const { deps, asset, size, cacheControl, hold } = options;
  const thumbnail = metadataOf(asset).thumbnails?.find((t) => String(t.size) === size);
  if (!thumbnail) throw new NotFoundError('Thumbnail');
  const filename = `${(asset.filename ?? 'file').replace(/\.[^.]+$/, '')}-${thumbnail.size}.webp`;
  if (thumbnail.key && thumbnail.checksum && thumbnail.bytes !== undefined) {
    await serveBlob(req, res, {
      store: deps.blobs,
      key: thumbnail.key,
      size: thumbnail.bytes,
      mimeType: 'image/webp',
      filename,
      checksum: thumbnail.checksum,
      cacheControl,
    });
    return;
  }
  // No rate of new transforms for callers without a key: an asset has a fixed few thumbnails, none to cycle.
  await serveRendition(req, res, {
    deps,
    asset,
    variant: thumbnailVariant(thumbnail.size),
    cacheControl,
    filename,
    hold,
  });
}

/**
 * Whom a rendition is sent for, and how: its cache rule, the rate of a keyless `client`, a
 * fetch limit, and where a small one is held once sent (`hold`).
 */
interface RenditionDelivery {
  deps: Pick<DownloadRouteDeps, 'blobs' | 'renditions'>;
  asset: AssetRow;
  cacheControl: string;
  client?: string;
  consume?: () => Promise<boolean>;
  hold?: { claim: (bytes: number) => (() => void) | null; keep: (held: HotRendition) => void };
}

/**
 * Sends the rendition a URL asks for (made now if it was not). A URL naming the version of
 * the bytes (`v=`) may be cached for a year: the bytes behind it never change. `client`:
 * the address of a caller without a key, whose new transforms are rate-limited.
 */
async function sendRendition(
  req: IncomingMessage,
  res: ServerResponse,
  options: RenditionDelivery & { params: RenditionParams },
): Promise<void> {
  const { params, ...rest } = options;
  const variant = rest.deps.renditions.variantOf(rest.asset, params, req.headers.accept);
  if (params.format === 'auto') res.setHeader('Vary', 'Accept');
  await serveRendition(req, res, { ...rest, variant });
}

/** Sends the rendition `variant` of `asset`, made now if it was not (or was evicted meanwhile). */
async function serveRendition(
  req: IncomingMessage,
  res: ServerResponse,
  options: RenditionDelivery & {
    variant: Variant;
    /** The name the rendition is sent under; by default the asset's, with the rendition's box. */
    filename?: string;
  },
): Promise<void> {
  const { deps, asset, variant } = options;
  const versioned = new URL(req.url ?? '/', 'http://localhost').searchParams.get('v') === versionOf(asset);
  const base = (asset.filename ?? 'image').replace(/\.[^.]+$/, '');
  for (let attempt = 1; ; attempt += 1) {
    const rendition = await untilGone(res, (signal) =>
      deps.renditions.get(asset, variant, { client: options.client, signal }),
    );
    const extension = rendition.mime_type.replace('image/', '').replace('jpeg', 'jpg');
    if (!variant.still && rendition.animated === 0 && ANIMATED_ORIGINALS.has(asset.mime_type ?? ''))
      res.setHeader('X-Rendition-Frames', 'first');
    const response = {
      mimeType: rendition.mime_type,
      filename: options.filename ?? `${base}-${rendition.width}x${rendition.height}.${extension}`,
      checksum: rendition.checksum,
      cacheControl: versioned
        ? `${asset.is_public ? 'public' : 'private'}, max-age=31536000, immutable`
        : options.cacheControl,
    };
    try {
      const room = options.hold?.claim(rendition.size);
      if (options.hold && room) {
        try {
          const headers = Object.fromEntries(
            HELD_HEADERS.flatMap((name) => (res.hasHeader(name) ? [[name, String(res.getHeader(name))]] : [])),
          );
          const held = { ...response, assetId: asset.id, headers, bytes: await readHeld(deps.blobs, rendition) };
          // Held before it is sent: its time counts from the rows read, not from a slow client's last byte.
          options.hold.keep(held);
          await serveHeld(req, res, held);
        } finally {
          room();
        }
      } else {
        await serveBlob(req, res, {
          ...response,
          store: deps.blobs,
          key: rendition.blob_key,
          size: rendition.size,
          consume: options.consume,
        });
      }
      return;
    } catch (error) {
      // Evicted between being found and being sent: made again once, as a first request would.
      if (attempt > 1 || res.headersSent || !(await deps.renditions.lost(rendition))) throw error;
    }
  }
}

/** Runs `work` with a signal that aborts when `res` closes first (its caller went away). */
async function untilGone<T>(res: ServerResponse, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const gone = new AbortController();
  const abort = () => gone.abort();
  res.once('close', abort);
  try {
    return await work(gone.signal);
  } finally {
    res.off('close', abort);
  }
}

/** Originals whose renditions keep their frames only as WebP or GIF. */
const ANIMATED_ORIGINALS = new Set(['image/gif', 'image/webp']);

/** Sends an asset's bytes and counts the download when a whole body went out. */
async function sendAsset(
  req: IncomingMessage,
  res: ServerResponse,
  options: {
    deps: Pick<DownloadRouteDeps, 'countDownload' | 'blobs'>;
    asset: AssetRow;
    cacheControl: string;
    consume?: () => Promise<boolean>;
  },
): Promise<void> {
  const { deps, asset } = options;
  if (!asset.blob_key || !asset.checksum) throw new NotFoundError();
  const completed = await serveBlob(req, res, {
    store: deps.blobs,
    key: asset.blob_key,
    size: asset.size,
    mimeType: asset.mime_type ?? 'application/octet-stream',
    filename: asset.filename ?? 'file',
    checksum: asset.checksum,
    cacheControl: options.cacheControl,
    consume: options.consume,
  });
  if (completed) await deps.countDownload(asset.id);
}

/**
 * `GET|HEAD /download/<asset id>`: the bytes of an asset, for a key of its org with
 * read:assets, or for anyone when the asset is public (its stable unsigned URL).
 * Missing and foreign are the same 404; a key without read:assets gets 403 for
 * anything not public.
 */
export function createDownloadRoute(deps: DownloadRouteDeps) {
  return answering(['GET', 'HEAD'], async (req: IncomingMessage, res: ServerResponse, globalId: string) => {
    const principal = await deps.authenticate(req);
    const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
    const hotKey = deps.hot ? hotKeyOf(principal, req, query) : null;
    const held = hotKey === null ? undefined : deps.hot!.get(hotKey);
    if (held) return serveHeld(req, res, held);
    // Taken before any row is read: a change of the asset from here on refuses to hold what was read.
    const mark = deps.hot?.mark() ?? 0;
    const hold =
      hotKey === null
        ? undefined
        : {
            claim: (bytes: number) => deps.hot!.claim(bytes),
            keep: (value: HotRendition) => deps.hot!.set(hotKey, value, mark),
          };
    const { typename, id } = decodeGlobalId(globalId);
    if (typename !== 'Asset') throw new NotFoundError();
    const [asset] = await deps.access.findReadable(principal, [id]);
    if (!asset && principal && !principal.scopes.has('read:assets')) {
      throw new ForbiddenError('Downloading needs the read:assets scope.');
    }
    if (!asset) throw new NotFoundError();
    const cacheControl = asset.is_public ? 'public, max-age=300' : 'private, no-cache';
    const rendition = parseRendition(query);
    const thumbnail = query.get('thumbnail');
    // Only the asset's own org and mode go unbounded: another tenant's key may not cycle its renditions.
    const own = principal?.orgId === asset.org_id && principal.mode === asset.mode;
    const client = own ? undefined : (req.socket.remoteAddress ?? 'unknown');
    if (rendition) await sendRendition(req, res, { deps, asset, params: rendition, cacheControl, client, hold });
    else if (thumbnail) await sendThumbnail(req, res, { deps, asset, size: thumbnail, cacheControl, hold });
    else await sendAsset(req, res, { deps, asset, cacheControl });
  });
}

/**
 * `GET|HEAD /dl/<token>[/<filename>]`: a signed download URL. No key needed: the
 * token is the grant. Fetch-limited URLs count each GET that sends bytes; HEAD
 * does not count. The trailing filename only helps tools name the file.
 */
export function createSignedDownloadRoute(
  deps: Pick<DownloadRouteDeps, 'countDownload' | 'blobs' | 'renditions'> & { urls: DownloadUrlService },
) {
  return answering(['GET', 'HEAD'], async (req: IncomingMessage, res: ServerResponse, rest: string) => {
    const rendition = parseRendition(new URL(req.url ?? '/', 'http://localhost').searchParams);
    const { asset, claims } = await deps.urls.open(rest.split('/')[0]);
    annotate(req, { org: asset.org_id, keyId: claims.keyId });
    const options = {
      cacheControl: 'private, no-store',
      // A rendition fetched through a counted URL is one of its fetches.
      consume: async () => {
        const { ok, remaining } = await deps.urls.consume(claims);
        if (remaining !== null) res.setHeader('X-Remaining-Fetches', String(remaining));
        return ok;
      },
    };
    // The token grants the asset, not a number of renditions: new ones count as a keyless caller's.
    const client = req.socket.remoteAddress ?? 'unknown';
    if (rendition) await sendRendition(req, res, { ...options, deps, asset, params: rendition, client });
    else await sendAsset(req, res, { ...options, deps, asset });
  });
}
