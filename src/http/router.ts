import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { AppError, BadUserInputError, NotFoundError, UnexpectedError } from '../errors.js';
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
}): RequestListener {
  const { graphql, exact, routes, log, observe } = options;
  const dispatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
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
    if (!prefix) throw new NotFoundError('Route', 'No such route.');
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
      sendError(res, new UnexpectedError({ cause: error }));
    });
  };
}
