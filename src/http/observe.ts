import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** What is known of a request by the time it ends: set by whoever learns it (authentication, GraphQL). */
export interface RequestFacts {
  id: string;
  route: string;
  org?: string;
  keyId?: string;
  operation?: string;
}

const facts = new WeakMap<IncomingMessage, RequestFacts>();
/** Bytes read and written on a keep-alive socket when its last request ended. */
const marks = new WeakMap<Socket, [number, number]>();

/** Adds what a handler learnt (the key's org and id, the GraphQL operation) to the request's log line. */
export function annotate(req: IncomingMessage, extra: Partial<Omit<RequestFacts, 'id' | 'route'>>): void {
  const known = facts.get(req);
  if (known) Object.assign(known, extra);
}

/** The id of a request: the client's `X-Request-Id` when it is a sane one, else a new one. */
function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
}

/** Requests that bring a file's bytes. */
function isUpload(req: IncomingMessage, route: string): boolean {
  if (route === '/up/') return req.method === 'PUT' || req.method === 'PATCH';
  if (route === '/tus/') return req.method === 'PATCH' || req.method === 'POST';
  return route === '/graphql' && req.method === 'POST' && /^multipart\//i.test(req.headers['content-type'] ?? '');
}

/**
 * Watches one request from its start to its end: gives it an id (echoed in
 * `X-Request-Id`), then writes one log line (method, route, status, duration, bytes in
 * and out, request id, org and key id; never the path, which may hold a signed token,
 * nor a key, nor variables) and feeds the metrics.
 */
export function createRequestObserver(deps: { logger: Logger; metrics: Metrics }) {
  return (req: IncomingMessage, res: ServerResponse, route: string): void => {
    const started = process.hrtime.bigint();
    const known: RequestFacts = { id: requestIdOf(req), route };
    facts.set(req, known);
    res.setHeader('X-Request-Id', known.id);
    const socket = req.socket;
    // From where the socket's previous request ended: its headers and body may have been read already.
    const [readBefore, writtenBefore] = marks.get(socket) ?? [0, 0];
    const upload = isUpload(req, route);
    if (upload) deps.metrics.uploadStarted();
    res.once('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const bytesIn = socket.bytesRead - readBefore;
      const bytesOut = socket.bytesWritten - writtenBefore;
      marks.set(socket, [socket.bytesRead, socket.bytesWritten]);
      if (upload) deps.metrics.uploadEnded();
      deps.metrics.request({
        route,
        method: req.method ?? '',
        status: res.statusCode,
        seconds,
        bytesIn,
        bytesOut,
        upload,
      });
      deps.logger.info(
        {
          reqId: known.id,
          method: req.method,
          route,
          status: res.statusCode,
          ms: Math.round(seconds * 10_000) / 10,
          bytesIn,
          bytesOut,
          ...(known.org && { org: known.org }),
          ...(known.keyId && { keyId: known.keyId }),
          ...(known.operation && { operation: known.operation }),
          ...(!res.writableFinished && { aborted: true }),
        },
        'request',
      );
    });
  };
}

export type RequestObserver = ReturnType<typeof createRequestObserver>;
