import type { RequestListener } from 'node:http';
import type { YogaServerInstance } from 'graphql-yoga';
import type { BlobStore } from './blob/index.js';
import type { Config } from './config.js';
import type { Db } from './db/database.js';
import type { UnitOfWork } from './db/repositories.js';
import { createBackground } from './features/background.js';
import { closeAll, type Feature, settledBy } from './features/feature.js';
import { createGraphQL } from './features/graphql.js';
import { createHttpRoutes } from './features/http-routes.js';
import { createOperations } from './features/operations.js';
import { openServices, type WebhookOptions } from './features/services.js';
import { openStorage } from './features/storage.js';
import { createRequestObserver } from './http/observe.js';
import { createRouter, type RouteTable } from './http/router.js';
import { useAuthentication } from './http/use-authentication.js';
import type { JobRunner } from './jobs/job-runner.js';
import type { Sweeper } from './services/lifecycle/sweeper.js';
import { createIdleGc } from './observability/idle-gc.js';
import { createLogger, type Logger } from './observability/logger.js';
import { FFMPEG_MISSING } from './services/delivery/previews.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { HotRenditions } from './services/delivery/hot-renditions.js';
import { surfaceOf } from './http/roles.js';
import { refreshStatistics } from './db/statistics.js';
import type { Context, Services } from './schema/context.js';
import { fsck, type FsckOptions, type FsckReport } from './services/lifecycle/fsck.js';

export { jobHandlersOf } from './features/services.js';

/** Collaborators a caller (mostly a test) may supply instead of the configured ones. */
export interface AppOverrides {
  db?: Db;
  blobs?: BlobStore;
  clock?: () => number;
  /** Where unexpected errors are reported. @default the logger, at error */
  logError?: (error: unknown) => void;
  /** Where logs go. @default JSON lines on stdout at LOG_LEVEL */
  logger?: Logger;
  /** Run background jobs in this app. @default true when JOB_CONCURRENCY > 0 */
  runJobs?: boolean;
  /** How webhook deliveries are retried and when a failing webhook is disabled. */
  webhooks?: WebhookOptions;
}

/** A built assetgate: the Node request listener and what it is made of. */
export interface App {
  handler: RequestListener;
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  services: Services;
  /** The repositories, for what runs beside the services (jobs, housekeeping) and for tests. */
  repositories: UnitOfWork;
  db: Db;
  blobs: BlobStore;
  /** Path prefixes of the plain HTTP routes (besides /graphql). */
  routes: string[];
  /** Exact paths answered outside GraphQL: health, metrics, the asset browser. */
  pages: string[];
  /** The route table: every path and prefix answered (`/graphql` too), with the methods each answers. */
  table: RouteTable;
  /** Housekeeping, run every SWEEP_INTERVAL; callable directly. */
  sweeper: Sweeper;
  logger: Logger;
  metrics: Metrics;
  /** From now on `/readyz` answers 503: a balancer stops sending requests here. */
  beginShutdown(): void;
  /** The consistency check of this app's database and store (`fsck`). */
  fsck(options?: FsckOptions): Promise<FsckReport>;
  /** Background jobs of this process; null when it runs none. */
  jobs: JobRunner | null;
  /**
   * Stops everything; running jobs and webhook attempts get `jobDeadlineMs` to finish, then
   * their leases go back to the queue. The stores close once `requestsDone` too, and once
   * every request's handler has finished (a cut upload puts its asset back first), at most
   * until `settleBy` (epoch ms); without `settleBy` they do not wait for handlers.
   */
  close(options?: { jobDeadlineMs?: number; requestsDone?: Promise<void>; settleBy?: number }): Promise<void>;
}

/**
 * Builds everything from `config`: storage, the services, then the features that serve
 * them (GraphQL, the plain routes, the operator pages, background work). Each feature
 * says what it adds and how it closes; they close in the reverse order.
 */
export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const logger =
    overrides.logger ??
    createLogger({ level: config.logLevel, format: config.logFormat, bufferBytes: config.logBuffer });
  const logError = overrides.logError ?? ((error: unknown) => logger.error({ err: error }, 'unexpected error'));
  const clock = overrides.clock ?? Date.now;
  const storage = await openStorage(config, { db: overrides.db, blobs: overrides.blobs, logError });
  const { db, repos, blobs } = storage;
  const core = await openServices(config, { repos, blobs, clock, logError, logger, webhooks: overrides.webhooks });
  const { services } = core;
  // Warm renditions in memory: served by the download route, reported by the metrics.
  const hot =
    config.renditionHotTtl > 0 && config.role !== 'worker'
      ? new HotRenditions({ maxBytes: config.renditionHotMax, ttlMs: config.renditionHotTtl * 1000, clock })
      : undefined;
  const metrics = createMetrics(
    {
      jobCounts: () => repos.jobs.countByStatus(),
      backlog: () => services.backlog(),
      renditions: () => ({ inFlight: services.renditions.inFlight, made: services.renditions.made }),
      held: () => hot?.usage ?? { entries: 0, bytes: 0 },
    },
    { maxOperations: config.metricsMaxOperations },
  );
  services.processing.onFailure(() => metrics.extractionFailed());
  services.processing.onReady((asset) => services.previews.queue(asset));
  if (!services.renditions.ffmpeg) logger.warn(FFMPEG_MISSING);

  const operations = createOperations(config, { db, blobs, metrics, backlog: services.backlog });
  const httpRoutes = createHttpRoutes({ config, services, blobs, hot, logError });
  const authentication = useAuthentication((key) => services.apiKeys.authenticate(key));
  const served: Feature[] = [httpRoutes, operations];
  const graphql = createGraphQL({
    config,
    services,
    authentication,
    logError,
    plugins: served.flatMap((feature) => feature.plugins ?? []),
  });
  const background = createBackground({
    config,
    services,
    repos,
    blobs,
    metrics,
    logger,
    logError,
    clock,
    runJobs: overrides.runJobs,
    refreshStatistics: () => refreshStatistics(db),
  });
  // One full collection once requests stop (IDLE_GC_DELAY): memory comes back between bursts.
  const idleGc = createIdleGc({ quietMs: config.idleGcDelay * 1000 });
  const memory: Feature = { close: async () => idleGc.stop() };
  // Closed in the reverse order: readiness says 503 first, the database goes last.
  // The handlers of cut requests put back what they held before the services and stores close.
  const settle: Feature = { close: ({ settleBy } = {}) => settledBy(router.settled(), settleBy) };
  const features: Feature[] = [storage, core, settle, graphql, background, memory, ...served];
  const routes = Object.assign({}, ...features.map((feature) => feature.routes ?? {}));
  const pages = Object.assign({}, ...features.map((feature) => feature.pages ?? {}));
  // A worker serves probes and metrics only; an API-only process serves all but runs no jobs.
  const surface = surfaceOf(config.role, { graphql: graphql.handler, exact: pages, routes });
  const router = createRouter({
    ...surface,
    log: logError,
    observe: createRequestObserver({ logger, metrics }),
    draining: operations.draining,
  });
  const handler: RequestListener = (req, res) => {
    idleGc.track(res);
    return router(req, res);
  };
  for (const feature of features) feature.start?.();

  return {
    handler,
    yoga: graphql.yoga,
    services,
    repositories: repos,
    logger,
    metrics,
    beginShutdown: operations.beginShutdown,
    db,
    blobs,
    routes: Object.keys(surface.routes),
    pages: Object.keys(surface.exact),
    table: router.table,
    sweeper: background.sweeper,
    fsck: (options) => fsck({ repos, blobs }, { orphanGraceMs: config.fsckGrace * 1000, now: clock(), ...options }),
    jobs: background.jobs,
    close: (options = {}) => closeAll(features, options),
  };
}
