import type { ServerResponse } from 'node:http';
import { type AppError, httpStatusOf } from '../errors.js';

/** Answers a plain HTTP route's failure as JSON with the contract's code, unless headers are gone. */
export function sendError(res: ServerResponse, error: AppError): void {
  if (res.headersSent) {
    res.destroy(error);
    return;
  }
  const body = JSON.stringify({ error: { code: error.code, message: error.message, ...error.extensions } });
  res.statusCode = httpStatusOf(error.code);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (typeof error.extensions.retryAfter === 'number')
    res.setHeader('Retry-After', String(error.extensions.retryAfter));
  for (const name of ['Content-Disposition', 'ETag', 'Content-Range', 'Accept-Ranges', 'Cache-Control'])
    res.removeHeader(name);
  res.end(body);
}
