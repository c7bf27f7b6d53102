import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { AppError } from '../errors.js';
import { sendError } from './respond.js';

/** A route that got the part of the path after its prefix. */
export type Route = (req: IncomingMessage, res: ServerResponse, rest: string) => Promise<void>;

/**
 * The server's request listener: GraphQL under `/graphql`, plain routes by prefix,
 * `/healthz`, and 404 for the rest. An unexpected failure is logged and answered
 * 500 without detail; the server keeps serving.
 */
export function createRouter(
  graphql: RequestListener,
  routes: Record<string, Route>,
  log: (error: unknown) => void,
): RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/graphql' || path.startsWith('/graphql/')) {
      graphql(req, res);
      return;
    }
    if (path === '/healthz') {
      res.setHeader('Content-Type', 'application/json');
      res.end('{"ok":true}');
      return;
    }
    const prefix = Object.keys(routes).find((p) => path.startsWith(p));
    if (!prefix) {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'application/json');
      res.end('{"error":{"code":"NOT_FOUND","message":"No such route."}}');
      return;
    }
    routes[prefix](req, res, decodeURIComponent(path.slice(prefix.length))).catch((error: unknown) => {
      if (error instanceof AppError) return sendError(res, error);
      log(error);
      if (res.headersSent) res.destroy();
      else {
        res.statusCode = 500;
        res.setHeader('Content-Type', 'application/json');
        res.end('{"error":{"code":"INTERNAL_SERVER_ERROR","message":"Unexpected error."}}');
      }
    });
  };
}
