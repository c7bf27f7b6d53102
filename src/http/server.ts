import { createServer, type RequestListener, type Server } from 'node:http';
import type { Config } from '../config.js';

/**
 * The HTTP server around the app's handler, with the timeouts that keep slow or
 * vanished clients from holding resources: slow headers (slowloris), a whole
 * request, and silence on a connection.
 */
export function createHttpServer(
  handler: RequestListener,
  config: Pick<Config, 'httpHeadersTimeout' | 'httpRequestTimeout' | 'httpIdleTimeout'>,
): Server {
  const server = createServer(
    {
      headersTimeout: config.httpHeadersTimeout * 1000,
      requestTimeout: config.httpRequestTimeout * 1000,
      keepAliveTimeout: 5_000,
      // Node checks the two timeouts above only this often (30 s by default).
      connectionsCheckingInterval: Math.min(1000, config.httpHeadersTimeout * 500),
    },
    handler,
  );
  server.setTimeout(config.httpIdleTimeout * 1000, (socket) => socket.destroy());
  return server;
}
