import type { IncomingMessage, ServerResponse } from 'node:http';
import { finished, pipeline } from 'node:stream/promises';
import parseRange from 'range-parser';
import type { BlobStore } from '../blob/index.js';
import { NotFoundError } from '../errors.js';
import { contentDisposition } from '../adapters/content-disposition.js';
import { isActiveType } from '../adapters/media-type.js';

/** What is needed to answer a download of one blob. */
export interface BlobResponse {
  /** The store that holds `key` (or any source of bytes that answers the same two calls). */
  store: Pick<BlobStore, 'get' | 'sendTo'>;
  key: string;
  size: number;
  mimeType: string;
  filename: string;
  /** `sha256:<hex>`: the strong ETag. */
  checksum: string;
  /** Cache-Control to send. */
  cacheControl: string;
  /**
   * Called once a GET is known to send bytes (not for HEAD, 304 or 416); when it
   * resolves false no byte is sent and NOT_FOUND is thrown. Fetch limits hook in here.
   */
  consume?: () => Promise<boolean>;
}

function etagOf(checksum: string): string {
  return `"${checksum.replace(/^sha256:/, '')}"`;
}

function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/**
 * Answers GET or HEAD for a blob: Range (206/416), ETag with If-None-Match (304)
 * and If-Range, RFC 6266 Content-Disposition, nosniff; active types (HTML, SVG,
 * XML, JS) only as sandboxed attachments. Resolves `true` when a whole body was
 * sent to its end (a completed download).
 */
export async function serveBlob(req: IncomingMessage, res: ServerResponse, blob: BlobResponse): Promise<boolean> {
  const etag = etagOf(blob.checksum);
  const active = isActiveType(blob.mimeType);
  res.setHeader('ETag', etag);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', blob.cacheControl);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Type', blob.mimeType.startsWith('text/') ? `${blob.mimeType}; charset=utf-8` : blob.mimeType);
  res.setHeader('Content-Disposition', contentDisposition(active ? 'attachment' : 'inline', blob.filename));
  if (active) res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");

  if (matches(req.headers['if-none-match'], etag)) {
    res.statusCode = 304;
    res.end();
    return false;
  }

  let range: { start: number; end: number } | undefined;
  const rangeHeader = req.headers.range;
  const ifRange = req.headers['if-range'];
  if (rangeHeader && (!ifRange || ifRange === etag)) {
    const parsed = parseRange(blob.size, rangeHeader, { combine: true });
    if (parsed === -1) {
      res.statusCode = 416;
      res.setHeader('Content-Range', `bytes */${blob.size}`);
      res.end();
      return false;
    }
    // Malformed ranges are ignored (RFC 9110); several ranges get the whole blob.
    if (parsed !== -2 && parsed.type === 'bytes' && parsed.length === 1) range = parsed[0];
  }

  const length = range ? range.end - range.start + 1 : blob.size;
  if (req.method === 'GET' && blob.consume && !(await blob.consume())) throw new NotFoundError();
  res.statusCode = range ? 206 : 200;
  if (range) res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${blob.size}`);
  res.setHeader('Content-Length', String(length));
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return req.method !== 'HEAD' && !range;
  }

  try {
    if (blob.store.sendTo) {
      // Always the bytes Content-Length promised: a blob shorter on disk fails, never ends short.
      const bytes = range ?? { start: 0, end: blob.size - 1 };
      if (!(await blob.store.sendTo(blob.key, res, bytes))) throw new Error(`blob ${blob.key} is missing`);
      res.end();
      await finished(res);
    } else {
      const stream = await blob.store.get(blob.key, range);
      if (!stream) throw new Error(`blob ${blob.key} is missing`);
      await pipeline(stream, res);
    }
  } catch (error) {
    // The client hung up before the last byte: an incomplete download, not a server fault.
    if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' && res.destroyed) return false;
    throw error;
  }
  return !range;
}
