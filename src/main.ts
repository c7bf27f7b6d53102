import type { IncomingMessage, ServerResponse } from 'node:http';
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { ConfigError } from './errors.js';
import { createHttpServer } from './http/server.js';
import { flushLog } from './observability/logger.js';

/** The server's entry point: the only module that reads `process.env`. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`assetgate: bad configuration: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  const app = await createApp(config);
  const bootstrap = await app.services.apiKeys.bootstrap();
  if (bootstrap) {
    console.log(
      `Created org "default" and an API key with every scope. It is shown only this once:\n\n  ${bootstrap.key}\n`,
    );
    console.log(
      `Use it as: curl -H 'Authorization: Bearer ${bootstrap.key}' ${config.publicUrl}/graphql -d '{"query":"{ viewer { org scopes } }"}' -H 'content-type: application/json'\n`,
    );
  }
  const server = createHttpServer(app.handler, config);
  server.listen(config.port, config.host, () => {
    if (config.role === 'worker') {
      app.logger.info(
        { url: config.publicUrl, role: config.role, jobConcurrency: config.jobConcurrency },
        `assetgate worker listening on ${config.publicUrl} (/healthz, /readyz and /metrics only)`,
      );
      return;
    }
    app.logger.info(
      { url: config.publicUrl, graphql: `${config.publicUrl}/graphql`, role: config.role },
      `assetgate listening on ${config.publicUrl} (GraphQL and GraphiQL at ${config.publicUrl}/graphql)`,
    );
  });
  // Requests under way: a drain waits for them, and ends event streams (SSE) at once.
  const open = new Map<ServerResponse, IncomingMessage>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    open.set(res, req);
    res.once('close', () => open.delete(res));
  });
  let stopping = false;
  /**
   * SIGTERM or SIGINT: from the first moment `/readyz` answers 503 and every new request
   * 503 with `Connection: close`, while the listener still accepts (a balancer sees the
   * 503s, not refused connections). Subscriptions (SSE) end at once: their clients
   * reconnect elsewhere. Requests, jobs and webhook attempts under way get until
   * SHUTDOWN_TIMEOUT less a margin for the final closes; then what is left is cut, and
   * jobs and deliveries go back to be retried by any gateway. The process exits 0 by
   * SHUTDOWN_TIMEOUT whatever is still running.
   */
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const timeoutMs = config.shutdownTimeout * 1000;
    const deadline = Date.now() + timeoutMs;
    const drainBy = deadline - Math.min(1000, timeoutMs / 5);
    app.logger.info({ signal, timeoutSeconds: config.shutdownTimeout }, 'shutting down');
    // The hard stop: whatever hangs in the final closes, the process is gone by the deadline.
    setTimeout(() => {
      app.logger.warn('the shutdown timeout came: exiting with work still closing');
      process.exit(0);
    }, timeoutMs).unref();
    app.beginShutdown();
    for (const [res, req] of open) if (/text\/event-stream/.test(req.headers.accept ?? '')) res.destroy();
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    server.closeIdleConnections();
    const requestsDone = (async () => {
      while (open.size > 0 && Date.now() < drainBy) await new Promise((resolve) => setTimeout(resolve, 50));
      clearInterval(idle);
      if (open.size > 0)
        app.logger.warn({ requests: open.size }, 'requests still under way at the shutdown timeout were cut');
      server.close();
      server.closeAllConnections();
    })();
    // Background work drains alongside the requests, under the same deadline.
    // Cut handlers get until just before the hard stop to put back what they held (an upload its asset).
    const background = app.close({
      jobDeadlineMs: Math.max(0, drainBy - Date.now()),
      requestsDone,
      settleBy: deadline - Math.min(200, timeoutMs / 10),
    });
    try {
      await background;
      app.logger.info('stopped');
      await flushLog(app.logger, Math.max(0, deadline - Date.now()));
      process.exit(0);
    } catch (error) {
      app.logger.error({ err: error }, 'shutdown failed');
      await flushLog(app.logger, 1000);
      process.exit(1);
    }
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

await main();
