import type { ServerResponse } from 'node:http';
import { type AppError, httpStatusOf } from '../errors.js';

/** The JSON body of a failed plain HTTP request: the contract's code, the message and the error's extensions. */
export function errorBody(error: AppError): string {
  return JSON.stringify({ error: { code: error.code, message: error.message, ...error.extensions } });
}

/**
 * Answers a plain HTTP route's failure as JSON with the contract's code and status,
 * unless headers are gone. The one writer of error bodies: routes throw domain errors.
 */
export function sendError(res: ServerResponse, error: AppError): void {
  if (res.headersSent) {
    res.destroy(error);
    return;
  }
  const body = errorBody(error);
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
