import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.js';
import type { BlobStore } from '../blob/index.js';
import type { AssetRow } from '../db/types.js';
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
  },
): Promise<void> {
  const { deps, asset, size, cacheControl } = options;
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
  await serveRendition(req, res, { deps, asset, variant: thumbnailVariant(thumbnail.size), cacheControl, filename });
}

/** Whom a rendition is sent for, and how: its cache rule, the rate of a keyless `client`, a fetch limit. */
interface RenditionDelivery {
  deps: Pick<DownloadRouteDeps, 'blobs' | 'renditions'>;
  asset: AssetRow;
  cacheControl: string;
  client?: string;
  consume?: () => Promise<boolean>;
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
    const rendition = await deps.renditions.get(asset, variant, options.client);
    const extension = rendition.mime_type.replace('image/', '').replace('jpeg', 'jpg');
    if (!variant.still && rendition.animated === 0 && ANIMATED_ORIGINALS.has(asset.mime_type ?? ''))
      res.setHeader('X-Rendition-Frames', 'first');
    try {
      await serveBlob(req, res, {
        store: deps.blobs,
        key: rendition.blob_key,
        size: rendition.size,
        mimeType: rendition.mime_type,
        filename: options.filename ?? `${base}-${rendition.width}x${rendition.height}.${extension}`,
        checksum: rendition.checksum,
        cacheControl: versioned
          ? `${asset.is_public ? 'public' : 'private'}, max-age=31536000, immutable`
          : options.cacheControl,
        consume: options.consume,
      });
      return;
    } catch (error) {
      // Evicted between being found and being sent: made again once, as a first request would.
      if (attempt > 1 || res.headersSent || !(await deps.renditions.lost(rendition))) throw error;
    }
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
    const { typename, id } = decodeGlobalId(globalId);
    if (typename !== 'Asset') throw new NotFoundError();
    const [asset] = await deps.access.findReadable(principal, [id]);
    if (!asset && principal && !principal.scopes.has('read:assets')) {
      throw new ForbiddenError('Downloading needs the read:assets scope.');
    }
    if (!asset) throw new NotFoundError();
    const cacheControl = asset.is_public ? 'public, max-age=300' : 'private, no-cache';
    const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
    const rendition = parseRendition(query);
    const thumbnail = query.get('thumbnail');
    // Only the asset's own org and mode go unbounded: another tenant's key may not cycle its renditions.
    const own = principal?.orgId === asset.org_id && principal.mode === asset.mode;
    const client = own ? undefined : (req.socket.remoteAddress ?? 'unknown');
    if (rendition) await sendRendition(req, res, { deps, asset, params: rendition, cacheControl, client });
    else if (thumbnail) await sendThumbnail(req, res, { deps, asset, size: thumbnail, cacheControl });
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
