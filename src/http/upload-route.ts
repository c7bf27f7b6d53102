import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, PayloadTooLargeError } from '../errors.js';
import { encodeGlobalId } from '../schema/builder.js';
import type { UploadUrlService } from '../services/upload-urls.js';
import { sendError } from './respond.js';

/**
 * `PUT /up/<token>` with the raw bytes as body: the second step of a two-step
 * upload. Answers the stored asset as JSON. A refused upload whose body is still
 * arriving closes the connection instead of reading the rest.
 */
export function createUploadRoute(deps: { uploads: UploadUrlService; maxFileSize: number }) {
  return async (req: IncomingMessage, res: ServerResponse, token: string): Promise<void> => {
    if (req.method !== 'PUT') {
      res.setHeader('Allow', 'PUT');
      res.statusCode = 405;
      res.end();
      return;
    }
    try {
      const length = req.headers['content-length'];
      if (length !== undefined && Number(length) > deps.maxFileSize) throw new PayloadTooLargeError(deps.maxFileSize);
      const asset = await deps.uploads.receive(token, req);
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
    } catch (error) {
      if (!req.readableEnded) {
        res.setHeader('Connection', 'close');
        res.once('finish', () => req.destroy());
      }
      if (error instanceof AppError) sendError(res, error);
      else throw error;
    }
  };
}
