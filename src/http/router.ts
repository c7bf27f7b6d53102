import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { AppError, BadUserInputError, NotFoundError, ServiceUnavailableError, UnexpectedError } from '../errors.js';
import { sendError } from './respond.js';
import { settleUnreadBody, settleWhenAnswered } from './unread-body.js';

/** The HTTP methods a route may answer. */
export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/** What every entry of the route table declares: the methods it answers (any other is 405). */
export interface Answers {
  readonly methods: readonly Method[];
}

/** A route that got the part of the path after its prefix, percent-decoded. */
export type Route = ((req: IncomingMessage, res: ServerResponse, rest: string) => Promise<void>) & Answers;

/** A route answering one exact path (`/healthz`, `/metrics`, `/`). */
export type ExactRoute = ((req: IncomingMessage, res: ServerResponse) => Promise<void> | void) & Answers;

/** A handler with the methods it answers: the router answers any other method 405 with `Allow`. */
export function answering<H extends (...args: never[]) => unknown>(methods: readonly Method[], handle: H): H & Answers {
  return Object.assign(handle, { methods });
}

/** What GraphQL over HTTP answers at `/graphql`: queries by GET, operations by POST, CORS preflights. */
export const GRAPHQL_METHODS: readonly Method[] = ['GET', 'POST', 'OPTIONS'];

/** The route table: each exact path or prefix the router answers (with `/graphql`), and its methods. */
export type RouteTable = Readonly<Record<string, readonly Method[]>>;

/** The router's request listener, and the table it routes by. */
export type Router = RequestListener & {
  table: RouteTable;
  /** Resolves once every request handled so far has finished its work (a cut one its clean-up too). */
  settled(): Promise<void>;
};

/** The rest of a route's path, decoded; a malformed escape (`%`, `%E0%A4%A`) is the client's mistake. */
function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new BadUserInputError('path', 'The URL path has a malformed percent-escape.');
  }
}

/** 405 with `Allow` unless the route answers the request's method; true when the request may go on. */
function allowed(req: IncomingMessage, res: ServerResponse, methods: readonly Method[]): boolean {
  if (methods.includes(req.method as Method)) return true;
  res.statusCode = 405;
  res.setHeader('Allow', methods.join(', '));
  res.end();
  return false;
}

/**
 * The server's request listener: GraphQL under `/graphql`, routes of one exact path,
 * plain routes by prefix, and 404 for the rest; a method a route does not declare is
 * 405. Everything a request runs happens inside one promise whose failure is answered
 * here: a domain error with its status, anything else logged and answered 500 without
 * detail. No request can throw past this point, so none can end the process. `observe`
 * sees every request from start to end.
 */
export function createRouter(options: {
  /** Absent: this process serves no GraphQL, and `/graphql` is 404 like any unknown path. */
  graphql?: (req: IncomingMessage, res: ServerResponse) => unknown;
  exact: Record<string, ExactRoute>;
  routes: Record<string, Route>;
  log: (error: unknown) => void;
  observe?: (req: IncomingMessage, res: ServerResponse, route: string) => void;
  /** True while the gateway drains: new requests get 503 and `Connection: close`, probes excepted. */
  draining?: () => boolean;
}): Router {
  const { graphql, exact, routes, log, observe, draining } = options;
  const dispatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (draining?.()) {
      res.setHeader('Connection', 'close');
      if (path !== '/readyz' && path !== '/healthz') {
        observe?.(req, res, 'draining');
        throw new ServiceUnavailableError(1, 'This gateway is shutting down.');
      }
    }
    if (graphql && (path === '/graphql' || path.startsWith('/graphql/'))) {
      observe?.(req, res, '/graphql');
      if (allowed(req, res, GRAPHQL_METHODS)) await graphql(req, res);
      return;
    }
    if (Object.hasOwn(exact, path)) {
      observe?.(req, res, path);
      if (allowed(req, res, exact[path].methods)) await exact[path](req, res);
      return;
    }
    const prefix = Object.keys(routes).find((p) => path.startsWith(p));
    observe?.(req, res, prefix ?? 'unknown');
    if (!prefix) throw new NotFoundError('Route', 'No such route.');
    const route = routes[prefix];
    if (allowed(req, res, route.methods)) await route(req, res, decodePath(path.slice(prefix.length)));
  };
  // Handlers under way: a socket cut by shutdown closes at once, but its handler still puts things back.
  const running = new Set<Promise<void>>();
  const listener: RequestListener = (req, res) => {
    settleWhenAnswered(req, res);
    const handled = dispatch(req, res).catch((error: unknown) => {
      settleUnreadBody(req, res);
      if (error instanceof AppError) return sendError(res, error);
      log(error);
      sendError(res, new UnexpectedError({ cause: error }));
    });
    running.add(handled);
    void handled.finally(() => running.delete(handled));
  };
  const table: RouteTable = {
    ...(graphql && { '/graphql': GRAPHQL_METHODS }),
    ...Object.fromEntries(Object.entries(exact).map(([path, route]) => [path, route.methods])),
    ...Object.fromEntries(Object.entries(routes).map(([prefix, route]) => [prefix, route.methods])),
  };
  const settled = async () => {
    while (running.size > 0) await Promise.allSettled(running);
  };
  return Object.assign(listener, { table, settled });
}
