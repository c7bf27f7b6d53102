import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { ConfigError } from './errors.js';
import { createHttpServer } from './http/server.js';

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
    console.log(`assetgate listening on ${config.publicUrl} (GraphQL and GraphiQL at ${config.publicUrl}/graphql)`);
  });
  const shutdown = () => {
    server.close(() => {
      app.close().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
    });
    server.closeIdleConnections();
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

await main();
