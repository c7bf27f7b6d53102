import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { AppError, BadUserInputError } from '../errors.js';
import { sendError } from './respond.js';

/** A route that got the part of the path after its prefix, percent-decoded. */
export type Route = (req: IncomingMessage, res: ServerResponse, rest: string) => Promise<void>;

/** The rest of a route's path, decoded; a malformed escape (`%`, `%E0%A4%A`) is the client's mistake. */
function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new BadUserInputError('path', 'The URL path has a malformed percent-escape.');
  }
}

/** A route answering one exact path (`/healthz`, `/metrics`, `/`). */
export type ExactRoute = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

/**
 * The server's request listener: GraphQL under `/graphql`, routes of one exact path,
 * plain routes by prefix, and 404 for the rest. Everything a request runs happens
 * inside one promise whose failure is answered here: a domain error with its status,
 * anything else logged and answered 500 without detail. No request can throw past this
 * point, so none can end the process. `observe` sees every request from start to end.
 */
export function createRouter(options: {
  graphql: (req: IncomingMessage, res: ServerResponse) => unknown;
  exact: Record<string, ExactRoute>;
  routes: Record<string, Route>;
  log: (error: unknown) => void;
  observe?: (req: IncomingMessage, res: ServerResponse, route: string) => void;
  /** True while the gateway drains: new requests get 503 and `Connection: close`, probes excepted. */
  draining?: () => boolean;
}): RequestListener {
  const { graphql, exact, routes, log, observe, draining } = options;
  const dispatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (draining?.()) {
      res.setHeader('Connection', 'close');
      if (path !== '/readyz' && path !== '/healthz') {
        observe?.(req, res, 'draining');
        res.statusCode = 503;
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('Retry-After', '1');
        res.end('{"error":{"code":"SERVICE_UNAVAILABLE","message":"This gateway is shutting down."}}');
        return;
      }
    }
    if (path === '/graphql' || path.startsWith('/graphql/')) {
      observe?.(req, res, '/graphql');
      await graphql(req, res);
      return;
    }
    if (Object.hasOwn(exact, path)) {
      observe?.(req, res, path);
      await exact[path](req, res);
      return;
    }
    const prefix = Object.keys(routes).find((p) => path.startsWith(p));
    observe?.(req, res, prefix ?? 'unknown');
    if (!prefix) {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'application/json');
      res.end('{"error":{"code":"NOT_FOUND","message":"No such route."}}');
      return;
    }
    await routes[prefix](req, res, decodePath(path.slice(prefix.length)));
  };
  return (req, res) => {
    dispatch(req, res).catch((error: unknown) => {
      // A refused request whose body is still arriving: answer, then close instead of reading the rest.
      if (!req.readableEnded && !res.headersSent) {
        res.setHeader('Connection', 'close');
        res.once('finish', () => req.destroy());
      }
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
