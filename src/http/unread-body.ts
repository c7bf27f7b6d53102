import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The most of a body no route reads (a GET, DELETE or OPTIONS carrying one, a request
 * refused before its body) that is read and discarded to keep the connection: a little
 * more than a large JSON operation's headers, far less than an upload.
 */
export const UNREAD_BODY_MAX = 64 * 1024;

/**
 * After an answer that ends a connection whose body was not read, how long and how much of
 * what the client still sends is read and discarded before the socket is destroyed.
 * Destroying it with the client's bytes unread makes the kernel reset the connection, and
 * a reset can reach the client before it has read the answer: the client then sees a
 * dropped connection instead of the 413 or 415 it was sent. A client that reads the answer
 * and closes ends this at once; one that goes on sending is cut at either bound.
 */
export const LINGER_MS = 2000;
export const LINGER_BYTES = 4 * 1024 ** 2;

/**
 * Answers `req` with `Connection: close` and, once the answer is sent, ends the connection
 * with a lingering close (see LINGER_MS): the client's remaining bytes are discarded for a
 * bounded time, so the answer is not lost to a reset.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('Connection', 'close');
  const socket = req.socket;
  // Node ends a `Connection: close` answer with destroySoon (FIN, then destroy at once).
  socket.destroySoon = function (this: typeof socket) {
    if (this.writable) this.end();
    let seen = 0;
    const cut = () => this.destroy();
    const timer = setTimeout(cut, LINGER_MS);
    this.once('close', () => clearTimeout(timer));
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > LINGER_BYTES) cut();
    });
    req.on('error', () => undefined); // the client gone meanwhile: nothing to answer
    req.resume();
    this.resume();
  };
}

/**
 * Makes sure a request answered without reading its body leaves the connection usable.
 * A small body (declared up to UNREAD_BODY_MAX, or chunked and found to be so) is read
 * and discarded, so the next request on the kept-alive connection is answered; a larger
 * one is not read: the answer says `Connection: close` and the connection ends with it,
 * in a lingering close (`closeAfterAnswer`).
 */
export function settleUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  if (req.readableEnded || req.destroyed || res.headersSent) return;
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > UNREAD_BODY_MAX) {
    closeAfterAnswer(req, res);
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
