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
    app.logger.info(
      { url: config.publicUrl, graphql: `${config.publicUrl}/graphql` },
      `assetgate listening on ${config.publicUrl} (GraphQL and GraphiQL at ${config.publicUrl}/graphql)`,
    );
  });
  let stopping = false;
  /**
   * SIGTERM or SIGINT: /readyz turns 503 and no new connection is taken; requests under
   * way (uploads, downloads) get SHUTDOWN_TIMEOUT to finish, then what is left is cut;
   * jobs get what remains of it before their leases go back to the queue; the database
   * is closed and the process exits 0.
   */
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const deadline = Date.now() + config.shutdownTimeout * 1000;
    app.logger.info({ signal, timeoutSeconds: config.shutdownTimeout }, 'shutting down');
    app.beginShutdown();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Keep-alive connections with nothing under way go now; busy ones once their answer is out.
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    server.closeIdleConnections();
    const drained = await Promise.race([
      closed.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))),
    ]);
    clearInterval(idle);
    if (!drained) {
      app.logger.warn('requests still under way at the shutdown timeout were cut');
      server.closeAllConnections();
    }
    try {
      await app.close({ jobDeadlineMs: Math.max(0, deadline - Date.now()) });
      app.logger.info('stopped');
      await flushLog(app.logger, Math.max(1000, deadline - Date.now()));
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
