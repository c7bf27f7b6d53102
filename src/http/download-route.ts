import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Principal, tenantOf } from '../auth/principal.js';
import type { BlobStore } from '../blob/index.js';
import type { AssetRepository } from '../db/asset-repository.js';
import type { AssetRow } from '../db/types.js';
import { ForbiddenError, NotFoundError } from '../errors.js';
import { decodeGlobalId } from '../schema/builder.js';
import { metadataOf } from '../services/asset-metadata.js';
import type { DownloadUrlService } from '../services/download-urls.js';
import { serveBlob } from './serve-blob.js';

export interface DownloadRouteDeps {
  assets: AssetRepository;
  blobs: BlobStore;
  /** The caller's API key; null for a caller without a key. Throws UNAUTHENTICATED for a bad key. */
  authenticate: (req: IncomingMessage) => Promise<Principal | null>;
}

function allowOnlyGetAndHead(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return true;
  res.setHeader('Allow', 'GET, HEAD');
  res.statusCode = 405;
  res.end();
  return false;
}

/** Sends an asset's thumbnail of `size` (WebP). Not counted as a download. */
async function sendThumbnail(
  req: IncomingMessage,
  res: ServerResponse,
  deps: Pick<DownloadRouteDeps, 'blobs'>,
  asset: AssetRow,
  size: string,
  cacheControl: string,
): Promise<void> {
  const thumbnail = metadataOf(asset).thumbnails?.find((t) => String(t.size) === size);
  if (!thumbnail) throw new NotFoundError('Thumbnail');
  const base = (asset.filename ?? 'file').replace(/\.[^.]+$/, '');
  await serveBlob(req, res, deps.blobs, {
    key: thumbnail.key,
    size: thumbnail.bytes,
    mimeType: 'image/webp',
    filename: `${base}-${thumbnail.size}.webp`,
    checksum: thumbnail.checksum,
    cacheControl,
  });
}

/** Sends an asset's bytes and counts the download when a whole body went out. */
async function sendAsset(
  req: IncomingMessage,
  res: ServerResponse,
  deps: Pick<DownloadRouteDeps, 'assets' | 'blobs'>,
  asset: AssetRow,
  options: { cacheControl: string; consume?: () => Promise<boolean> },
): Promise<void> {
  if (!asset.blob_key || !asset.checksum) throw new NotFoundError();
  const completed = await serveBlob(req, res, deps.blobs, {
    key: asset.blob_key,
    size: asset.size,
    mimeType: asset.mime_type ?? 'application/octet-stream',
    filename: asset.filename ?? 'file',
    checksum: asset.checksum,
    ...options,
  });
  if (completed) await deps.assets.countDownload(asset.id);
}

/**
 * `GET|HEAD /download/<asset id>`: the bytes of an asset, for a key of its org with
 * read:assets, or for anyone when the asset is public (its stable unsigned URL).
 * Missing and foreign are the same 404; a key without read:assets gets 403 for
 * anything not public.
 */
export function createDownloadRoute(deps: DownloadRouteDeps) {
  return async (req: IncomingMessage, res: ServerResponse, globalId: string): Promise<void> => {
    if (!allowOnlyGetAndHead(req, res)) return;
    const principal = await deps.authenticate(req);
    const { typename, id } = decodeGlobalId(globalId);
    if (typename !== 'Asset') throw new NotFoundError();
    const mayRead = principal?.scopes.has('read:assets') ?? false;
    let asset: AssetRow | undefined;
    if (principal && mayRead) [asset] = await deps.assets.findByIds(tenantOf(principal), [id]);
    if (!asset) [asset] = await deps.assets.findPublicByIds([id]);
    if (!asset && principal && !mayRead) throw new ForbiddenError('Downloading needs the read:assets scope.');
    if (!asset) throw new NotFoundError();
    const cacheControl = asset.is_public ? 'public, max-age=300' : 'private, no-cache';
    const thumbnail = new URL(req.url ?? '/', 'http://localhost').searchParams.get('thumbnail');
    if (thumbnail) await sendThumbnail(req, res, deps, asset, thumbnail, cacheControl);
    else await sendAsset(req, res, deps, asset, { cacheControl });
  };
}

/**
 * `GET|HEAD /dl/<token>[/<filename>]`: a signed download URL. No key needed: the
 * token is the grant. Fetch-limited URLs count each GET that sends bytes; HEAD
 * does not count. The trailing filename only helps tools name the file.
 */
export function createSignedDownloadRoute(
  deps: Pick<DownloadRouteDeps, 'assets' | 'blobs'> & { urls: DownloadUrlService },
) {
  return async (req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> => {
    if (!allowOnlyGetAndHead(req, res)) return;
    const { asset, claims } = await deps.urls.open(rest.split('/')[0]);
    await sendAsset(req, res, deps, asset, {
      cacheControl: 'private, no-store',
      consume: async () => {
        const { ok, remaining } = await deps.urls.consume(claims);
        if (remaining !== null) res.setHeader('X-Remaining-Fetches', String(remaining));
        return ok;
      },
    });
  };
}
