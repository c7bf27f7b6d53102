import type { IncomingMessage, ServerResponse } from 'node:http';
import { PayloadTooLargeError } from '../errors.js';
import { encodeGlobalId } from '../global-id.js';
import type { ResumableUploadService } from '../services/uploads/resumable-uploads.js';
import type { UploadUrlService } from '../services/uploads/upload-urls.js';
import { annotate } from './observe.js';
import { answering } from './router.js';
import type { Tus } from './tus-route.js';

/**
 * `PUT /up/<token>` with the raw bytes as body: the second step of a two-step
 * upload; with a declared size, tus `HEAD` and `PATCH` resume it in parts. Answers the stored asset as JSON; a refused one is answered by the router,
 * which closes the connection instead of reading the rest of the body.
 */
export function createUploadRoute(deps: {
  uploads: UploadUrlService;
  resumable: ResumableUploadService;
  tus: Tus;
  maxFileSize: number;
}) {
  return answering(['PUT', 'HEAD', 'PATCH'], async (req: IncomingMessage, res: ServerResponse, token: string) => {
    if (req.method === 'HEAD' || req.method === 'PATCH') {
      // The same URL, resumed with tus: the token names the upload and the key that granted it.
      return deps.tus.resume(req, res, async () => {
        const { asset, keyId } = await deps.uploads.grantOf(token);
        annotate(req, { org: asset.org_id, keyId });
        await deps.resumable.startFromUrl(asset);
        return { uploadId: asset.id, keyId };
      });
    }
    const length = req.headers['content-length'];
    if (length !== undefined && Number(length) > deps.maxFileSize) throw new PayloadTooLargeError(deps.maxFileSize);
    const asset = await deps.uploads.receive(token, req, (keyId) => annotate(req, { keyId }));
    annotate(req, { org: asset.org_id });
    const body = JSON.stringify({
      id: encodeGlobalId('Asset', asset.id),
      status: asset.status,
      size: asset.size,
      checksum: asset.checksum,
      mimeType: asset.mime_type,
      type: asset.type,
    });
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(body);
  });
}
