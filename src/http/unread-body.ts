import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The most of a body no route reads (a GET, DELETE or OPTIONS carrying one, a request
 * refused before its body) that is read and discarded to keep the connection: a little
 * more than a large JSON operation's headers, far less than an upload.
 */
export const UNREAD_BODY_MAX = 64 * 1024;

/**
 * Makes sure a request answered without reading its body leaves the connection usable.
 * A small body (declared up to UNREAD_BODY_MAX, or chunked and found to be so) is read
 * and discarded, so the next request on the kept-alive connection is answered; a larger
 * one is not read: the answer says `Connection: close` and the connection ends with it.
 * Closing with the body still arriving would reset the connection, losing the answer
 * and whatever the client sent after it.
 */
export function settleUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  if (req.readableEnded || req.destroyed || res.headersSent) return;
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > UNREAD_BODY_MAX) {
    res.setHeader('Connection', 'close');
    res.once('finish', () => req.destroy());
    return;
  }
  let seen = 0;
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > UNREAD_BODY_MAX) req.destroy(); // chunked and larger than it looked: not worth reading
  });
  req.on('error', () => undefined); // a client gone meanwhile: nothing to answer
  req.resume();
}

/**
 * Settles the body of `req` when its answer starts, unless something reads the body
 * (a route that takes one pipes or listens to it): every route that takes no body,
 * its 404 and 405 too, keeps the promise of `settleUnreadBody` without having to ask.
 */
export function settleWhenAnswered(req: IncomingMessage, res: ServerResponse): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: Parameters<typeof writeHead>) {
    if (req.readableFlowing === null) settleUnreadBody(req, res);
    return writeHead.apply(this, args);
  } as typeof writeHead;
}
