import type { BlobStore } from '../blob/index.js';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import { createBrowserRoutes } from '../http/browser-route.js';
import { createMetricsRoute, readiness, sendJson, useOperationMetrics } from '../http/operations.js';
import type { Metrics } from '../observability/metrics.js';
import { answering } from '../http/router.js';
import type { Feature } from './feature.js';

/** Health, readiness, metrics and the asset browser; readiness says 503 from `beginShutdown` on. */
export interface OperationsFeature extends Feature {
  beginShutdown(): void;
  /** True from `beginShutdown` (or close) on: the router answers new requests 503. */
  draining(): boolean;
}

/** The pages operators and people open: `/healthz`, `/readyz`, `/metrics`, `/`. */
export function createOperations(
  config: Config,
  deps: { db: Db; blobs: BlobStore; metrics: Metrics },
): OperationsFeature {
  let shuttingDown = false;
  return {
    pages: {
      '/healthz': answering(['GET', 'HEAD'], (_req, res) => sendJson(res, 200, { ok: true })),
      '/readyz': answering(['GET', 'HEAD'], async (_req, res) => {
        const checks = await readiness({ db: deps.db, blobs: deps.blobs, shuttingDown: () => shuttingDown });
        sendJson(res, checks.ok ? 200 : 503, checks);
      }),
      '/metrics': createMetricsRoute(deps.metrics, config.metricsToken),
      ...createBrowserRoutes(config.publicUrl),
    },
    plugins: [useOperationMetrics(deps.metrics)],
    beginShutdown() {
      shuttingDown = true;
    },
    draining: () => shuttingDown,
    async close() {
      shuttingDown = true;
    },
  };
}
