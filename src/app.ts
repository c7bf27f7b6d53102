import type { IncomingMessage, RequestListener } from 'node:http';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { useRateLimit } from './http/use-rate-limit.js';
import { createMediaPolicy } from './services/media-policy.js';
import { QuotaService } from './services/quota.js';
import { MemoryRateLimiter } from './services/rate-limiter.js';
import { createSharedRedis, type SharedRedis } from './services/redis.js';
import { RedisRateLimiter } from './services/redis-rate-limiter.js';
import { RedisUploadSlots } from './services/redis-upload-slots.js';
import { MemoryUploadSlots } from './services/upload-slots.js';
import { getOperationAST } from 'graphql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { ApiKeyService, presentedKey } from './auth/api-key-service.js';
import { tenantOf } from './auth/principal.js';
import { loadSigningSecret } from './auth/signing-secret.js';
import { UrlSigner } from './auth/url-signer.js';
import { type BlobStore, createBlobStore } from './blob/index.js';
import type { Config } from './config.js';
import { ApiKeyRepository } from './db/api-key-repository.js';
import { AssetRepository } from './db/asset-repository.js';
import { createDatabase, type Db } from './db/database.js';
import { DirectoryRepository } from './db/directory-repository.js';
import { DownloadTokenRepository } from './db/download-token-repository.js';
import { migrateOrThrow } from './db/migrate.js';
import { OrgRepository } from './db/org-repository.js';
import { UploadPartRepository } from './db/upload-part-repository.js';
import { ResumableUploadService } from './services/resumable-uploads.js';
import { RenditionService } from './services/renditions.js';
import { RenditionCache } from './services/rendition-cache.js';
import { BlobRepository } from './db/blob-repository.js';
import { RenditionRepository } from './db/rendition-repository.js';
import { createDownloadRoute, createSignedDownloadRoute } from './http/download-route.js';
import { answering, createRouter, type ExactRoute, type RouteTable } from './http/router.js';
import { createUploadRoute } from './http/upload-route.js';
import { createTus } from './http/tus-route.js';
import { useAuthentication } from './http/use-authentication.js';
import { useBodyLimit } from './http/use-body-limit.js';
import { useCostLimit } from './http/use-cost-limit.js';
import { createMaskError, useErrorCodes } from './http/use-error-codes.js';
import { useGraphQLUpload } from './http/use-graphql-upload.js';
import { createSweeper, type Sweeper } from './jobs/sweeper.js';
import { createIdleGc } from './observability/idle-gc.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { annotate, createRequestObserver } from './http/observe.js';
import { createBrowserRoutes } from './http/browser-route.js';
import { createGraphiQLPage } from './http/graphiql-page.js';
import { createMetricsRoute, GRAPHIQL_EXAMPLE, readiness, sendJson, useOperationMetrics } from './http/operations.js';
import { fsck, type FsckOptions, type FsckReport } from './services/fsck.js';
import { createExtractPool } from './jobs/extract-pool.js';
import { createJobQueue } from './jobs/job-queue.js';
import { createJobRunner, type JobRunner, type JobRunnerOptions } from './jobs/job-runner.js';
import { JobRepository } from './db/job-repository.js';
import { createAssetEvents } from './services/asset-events.js';
import { WebhookRepository } from './db/webhook-repository.js';
import { WebhookService } from './services/webhooks.js';
import { ProcessingService } from './services/processing.js';
import { UrlImportService } from './services/url-import.js';
import type { Context, Services } from './schema/context.js';
import { buildSchema } from './schema/index.js';
import { AssetAccess } from './services/asset-access.js';
import { AssetService } from './services/asset-service.js';
import { DirectoryService } from './services/directory-service.js';
import { DownloadUrlService } from './services/download-urls.js';
import { UploadUrlService } from './services/upload-urls.js';

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
  webhooks?: { retryDelaysMs?: readonly number[]; disableAfter?: number };
}

/** A built assetgate: the Node request listener and what it is made of. */
export interface App {
  handler: RequestListener;
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  services: Services;
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

/** Waits before each retry of a failed webhook delivery: about a day in all, then it fails for good. */
const WEBHOOK_RETRY_DELAYS_MS = [10_000, 60_000, 300_000, 1_800_000, 7_200_000, 21_600_000, 43_200_000];

/** The use cases, wired to their repositories and stores. */
async function createServices(
  config: Config,
  db: Db,
  blobs: BlobStore,
  redis: SharedRedis | null,
  clock: () => number,
  logError: (error: unknown) => void,
  logger: Logger,
  webhookOptions: AppOverrides['webhooks'] = {},
): Promise<Services> {
  const assetRepository = new AssetRepository(db);
  const jobRepository = new JobRepository(db);
  const queue = createJobQueue(jobRepository, clock);
  const events = createAssetEvents(redis?.eventTarget);
  const directoryRepository = new DirectoryRepository(db);
  const signer = new UrlSigner({
    secret: await loadSigningSecret(config.signingSecret, config.dataDir),
    previous: config.signingSecretPrevious,
    previousUntil: config.signingPreviousUntil,
    clock,
  });
  const orgs = new OrgRepository(db);
  const apiKeys = new ApiKeyService(new ApiKeyRepository(db), orgs, clock);
  const access = new AssetAccess({ assets: assetRepository, principalOfKey: (id) => apiKeys.principalById(id) });
  const uploadParts = new UploadPartRepository(db);
  const renditionRepository = new RenditionRepository(db);
  const copies = new BlobRepository(db);
  const webhookRepository = new WebhookRepository(db);
  const webhooks = new WebhookService({
    webhooks: webhookRepository,
    fetch: {
      allow: config.webhookAllow,
      connectTimeoutMs: config.importConnectTimeout * 1000,
      idleTimeoutMs: config.importIdleTimeout * 1000,
    },
    retryDelaysMs: webhookOptions.retryDelaysMs ?? WEBHOOK_RETRY_DELAYS_MS,
    disableAfter: webhookOptions.disableAfter ?? config.webhookDisableAfter,
    timeoutMs: config.webhookTimeout * 1000,
    concurrency: config.webhookConcurrency,
    perEndpoint: config.webhookEndpointConcurrency,
    onDisabled: (hook, error) =>
      logger.warn({ webhookId: hook.id, org: hook.org_id, mode: hook.mode, lastError: error }, 'webhook disabled'),
    clock,
    logError,
  });
  // Every lifecycle event is kept and handed to webhooks. The change itself is committed by
  // then: a failure to record it is logged, and does not turn the caller's success into an error.
  events.recordWith((type, asset) => webhooks.record(type, asset).catch(logError));
  const quota = new QuotaService(orgs, config.orgStorageQuota);
  const assets = new AssetService({
    assets: assetRepository,
    parts: uploadParts,
    renditions: renditionRepository,
    directories: directoryRepository,
    blobs,
    copies,
    queue,
    events,
    quota,
    accept: createMediaPolicy(config.allowedMediaTypes, config.deniedMediaTypes),
    maxFileSize: config.maxFileSize,
    trashRetention: config.trashRetention,
    clock,
  });
  const uploadSlots = redis
    ? new RedisUploadSlots(redis.commands, {
        perKey: config.uploadConcurrency,
        waitMs: config.uploadConcurrencyWait * 1000,
        logError,
      })
    : new MemoryUploadSlots(config.uploadConcurrency, config.uploadConcurrencyWait * 1000);
  // Extraction and renditions share the worker threads, their time and memory caps.
  const extractPool = createExtractPool({
    threads: Math.max(1, config.jobConcurrency),
    timeoutMs: config.extractTimeout * 1000,
    memoryMb: config.extractMemoryMb,
    idleTimeoutMs: config.extractIdleTimeout * 1000,
  });
  const uploadUrls = new UploadUrlService({
    assets: assetRepository,
    access,
    assetService: assets,
    blobs,
    signer,
    queue,
    slots: uploadSlots,
    publicUrl: config.publicUrl,
    maxFileSize: config.maxFileSize,
    ttl: config.uploadUrlTtl,
    sweepGrace: config.uploadSweepGrace,
    direct: config.s3.direct === 'upload' || config.s3.direct === 'both',
    logError,
    clock,
  });
  return {
    config,
    queue,
    events,
    jobRepository,
    processing: new ProcessingService({
      assets: assetRepository,
      blobs,
      pool: extractPool,
      events,
      thumbnailSizes: config.thumbnailSizes,
      maxImagePixels: config.maxImagePixels,
      clock,
    }),
    urlImports: new UrlImportService({
      assets: assetRepository,
      assetService: assets,
      blobs,
      queue,
      events,
      fetch: {
        allow: config.importAllow,
        maxRedirects: 3,
        connectTimeoutMs: config.importConnectTimeout * 1000,
        idleTimeoutMs: config.importIdleTimeout * 1000,
      },
      maxBytes: config.importMaxSize,
      clock,
    }),
    assetRepository,
    directoryRepository,
    uploadParts,
    assets,
    apiKeys,
    access,
    orgs,
    rateLimiter: redis
      ? new RedisRateLimiter(redis.commands, config.rateLimit)
      : new MemoryRateLimiter(config.rateLimit, clock),
    uploadSlots,
    directories: new DirectoryService(directoryRepository, clock),
    downloadUrls: new DownloadUrlService({
      assets: assetRepository,
      access,
      blobs,
      direct: config.s3.direct === 'download' || config.s3.direct === 'both',
      tokens: new DownloadTokenRepository(db),
      signer,
      publicUrl: config.publicUrl,
      defaultTtl: config.downloadUrlTtl,
      maxTtl: config.downloadUrlMaxTtl,
      maxUrlsPerAsset: config.maxDownloadUrlsPerAsset,
      clock,
    }),
    uploadUrls,
    renditionRepository,
    copies,
    webhooks,
    webhookRepository,
    renditions: new RenditionService({
      renditions: renditionRepository,
      blobs,
      pool: extractPool,
      cache: new RenditionCache({
        renditions: renditionRepository,
        blobs,
        maxBytes: config.renditionCacheMax,
        maxPerAsset: config.renditionMaxPerAsset,
        anonymous:
          config.renditionAnonRate === 0
            ? null
            : redis
              ? new RedisRateLimiter(redis.commands, config.renditionAnonRate, 'assetgate:rendition-rate:')
              : new MemoryRateLimiter(config.renditionAnonRate, clock),
        clock,
      }),
      widths: config.imageWidths,
      queueLimit: config.renditionQueue,
      maxImagePixels: config.maxImagePixels,
      clock,
    }),
    resumableUploads: new ResumableUploadService({
      assets: assetRepository,
      parts: uploadParts,
      assetService: assets,
      uploadUrls,
      quota,
      blobs,
      maxFileSize: config.maxFileSize,
      ttl: config.uploadUrlTtl,
      clock,
    }),
  };
}

/** What each kind of background job runs. */
export function jobHandlersOf(services: Services): JobRunnerOptions['handlers'] {
  return {
    extract: (job) => services.processing.extract(job),
    import: (job) => services.urlImports.run(job),
    'direct-upload': (job) => services.uploadUrls.finishDirect(job),
  };
}

/** Builds everything (database, blob store, GraphQL, routes, housekeeping) from `config`. */
export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const logError = overrides.logError ?? ((error: unknown) => logger.error({ err: error }, 'unexpected error'));
  const clock = overrides.clock ?? Date.now;
  const db =
    overrides.db ??
    createDatabase({
      url: config.databaseUrl,
      onBackgroundError: logError,
      cacheSize: config.sqliteCacheSize,
    });
  const blobs = overrides.blobs ?? createBlobStore(config.blobStore, config.dataDir, config.s3);
  await migrateOrThrow(db);
  const redis = config.redisUrl ? createSharedRedis(config.redisUrl, logError) : null;
  // Serve once Redis answers; if it does not within 5 s, serve anyway: requests that need it fail
  // with a clear error until it does (and the log says why).
  if (redis && !(await redis.ready(5000))) logError(new Error('Redis is not reachable yet; starting without it'));
  const services = await createServices(config, db, blobs, redis, clock, logError, logger, overrides.webhooks);
  const { apiKeys, assetRepository } = services;
  const metrics = createMetrics(
    {
      jobCounts: () => services.jobRepository.countByStatus(),
      renditions: () => ({ inFlight: services.renditions.inFlight, made: services.renditions.made }),
    },
    { maxOperations: config.metricsMaxOperations },
  );
  services.processing.onFailure(() => metrics.extractionFailed());
  let shuttingDown = false;

  const authentication = useAuthentication((key) => apiKeys.authenticate(key));
  const graphiql = createGraphiQLPage({ title: 'assetgate GraphiQL', defaultQuery: GRAPHIQL_EXAMPLE });
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema: buildSchema(),
    graphqlEndpoint: '/graphql',
    multipart: false,
    maxRequestBodySize: false,
    landingPage: false,
    batching: false,
    // GraphiQL whole from the gateway (no CDN), opening on an example and a hint for the key.
    renderGraphiQL: graphiql.render,
    logging: false, // unexpected errors are logged by maskError; expected ones are answers, not logs
    maskedErrors: { maskError: createMaskError(logError) },
    context: ({ request, req }): Context => {
      const principal = authentication.principalOf(request);
      const node = req as IncomingMessage | undefined;
      if (node && principal) annotate(node, { org: principal.orgId, keyId: principal.keyId });
      const clientAddress = node?.socket.remoteAddress ?? 'unknown';
      return { services, principal, tenant: principal && tenantOf(principal), clientAddress, req: node };
    },
    plugins: [
      graphiql.useGraphiQLPolicy(),
      authentication.plugin,
      useGraphQLUpload({
        maxFileSize: config.maxFileSize,
        maxFiles: config.maxFilesPerRequest,
        acquireSlot: (request) => {
          const principal = authentication.principalOf(request);
          return services.uploadSlots.acquire(principal ? principal.keyId : 'anonymous');
        },
      }),
      useBodyLimit(config.maxJsonBodySize),
      EnvelopArmorPlugin({
        maxDepth: { n: config.graphqlLimits.depth },
        maxAliases: { n: config.graphqlLimits.aliases },
        maxDirectives: { n: config.graphqlLimits.directives },
        maxTokens: { n: config.graphqlLimits.tokens },
        costLimit: { enabled: false }, // useCostLimit: it also reads page sizes given as variables
        blockFieldSuggestion: { enabled: !config.introspection },
      }),
      useCostLimit({ maxCost: config.graphqlLimits.cost }),
      ...(config.introspection ? [] : [useDisableIntrospection()]),
      ...(config.rateLimit > 0 ? [useRateLimit(services.rateLimiter)] : []),
      useErrorCodes(),
      useOperationMetrics(metrics),
      // Compiles each (cached) query to a function: list pages spend their time in resolvers, not the executor.
      // Subscriptions stay on graphql-js: graphql-jit does not hand a subscription's inline arguments to its resolver.
      useGraphQlJit(
        {},
        { enableIf: (args) => getOperationAST(args.document, args.operationName)?.operation !== 'subscription' },
      ),
    ],
  });

  const authenticateRequest = async (req: IncomingMessage) => {
    const key = presentedKey((name) => req.headers[name] as string | undefined);
    const principal = key === null ? null : await apiKeys.authenticate(key);
    if (principal) annotate(req, { org: principal.orgId, keyId: principal.keyId });
    return principal;
  };
  const tus = createTus({
    uploads: services.resumableUploads,
    slots: services.uploadSlots,
    authenticate: authenticateRequest,
    publicUrl: config.publicUrl,
    maxFileSize: config.maxFileSize,
    logError,
  });
  const routes = {
    '/download/': createDownloadRoute({
      access: services.access,
      assets: assetRepository,
      blobs,
      renditions: services.renditions,
      authenticate: authenticateRequest,
    }),
    '/dl/': createSignedDownloadRoute({
      assets: assetRepository,
      blobs,
      renditions: services.renditions,
      urls: services.downloadUrls,
    }),
    '/up/': createUploadRoute({
      uploads: services.uploadUrls,
      resumable: services.resumableUploads,
      tus,
      maxFileSize: config.maxFileSize,
    }),
    '/tus/': tus.route,
  };
  const exact: Record<string, ExactRoute> = {
    '/healthz': answering(['GET', 'HEAD'], (_req, res) => sendJson(res, 200, { ok: true })),
    '/readyz': answering(['GET', 'HEAD'], async (_req, res) => {
      const checks = await readiness({ db, blobs, shuttingDown: () => shuttingDown });
      sendJson(res, checks.ok ? 200 : 503, checks);
    }),
    '/metrics': createMetricsRoute(metrics, config.metricsToken),
    ...createBrowserRoutes(config.publicUrl),
  };
  const router = createRouter({
    graphql: yoga as unknown as RequestListener,
    exact,
    routes,
    log: logError,
    observe: createRequestObserver({ logger, metrics }),
    draining: () => shuttingDown,
  });
  const idleGc = createIdleGc({ quietMs: config.idleGcDelay * 1000 });
  const handler: RequestListener = (req, res) => {
    idleGc.track(res);
    return router(req, res);
  };

  const runJobs = overrides.runJobs ?? config.jobConcurrency > 0;
  const jobs = runJobs
    ? createJobRunner({
        jobs: services.jobRepository,
        handlers: jobHandlersOf(services),
        onGiveUp: (job, error) => services.processing.giveUp(job, error),
        concurrency: Math.max(1, config.jobConcurrency),
        clock,
        logError,
        logger,
        observe: (job, outcome, seconds) => metrics.job(job.kind, outcome, seconds),
      })
    : null;
  if (jobs) {
    services.queue.onWake(() => jobs.wake());
    jobs.start();
    // Webhook deliveries are background work too: sent by the gateways that run jobs.
    services.webhooks.start();
  }

  const sweeper = createSweeper({
    orgs: services.orgs,
    copies: services.copies,
    parts: services.uploadParts,
    renditions: services.renditionRepository,
    webhooks: services.webhookRepository,
    assets: assetRepository,
    jobs: services.jobRepository,
    tokens: new DownloadTokenRepository(db),
    blobs,
    grace: config.uploadSweepGrace,
    trashRetention: config.trashRetention,
    clock,
  });
  // Every sweep is quick; the one at start (what a crash left) and every 60th after it also check the store deeply.
  let sweeps = 0;
  let sweeping: Promise<unknown> = Promise.resolve();
  const sweep = () => {
    sweeping = sweeper.sweep({ deep: sweeps++ % 60 === 0 }).catch(logError);
  };
  if (config.sweepInterval > 0) sweep();
  const sweepTimer = config.sweepInterval > 0 ? setInterval(sweep, config.sweepInterval * 1000).unref() : undefined;

  return {
    handler,
    yoga,
    services,
    logger,
    metrics,
    beginShutdown() {
      shuttingDown = true;
    },
    db,
    blobs,
    routes: Object.keys(routes),
    pages: Object.keys(exact),
    table: router.table,
    sweeper,
    fsck: (options) =>
      fsck(
        {
          assets: assetRepository,
          blobs,
          copies: services.copies,
          orgs: services.orgs,
          parts: services.uploadParts,
          renditions: services.renditionRepository,
        },
        { orphanGraceMs: config.fsckGrace * 1000, now: clock(), ...options },
      ),
    jobs,
    async close({
      jobDeadlineMs,
      requestsDone,
      settleBy,
    }: { jobDeadlineMs?: number; requestsDone?: Promise<void>; settleBy?: number } = {}) {
      shuttingDown = true;
      clearInterval(sweepTimer);
      idleGc.stop();
      await sweeping;
      // Jobs and webhook attempts share the deadline; what is still under way then goes back to be retried.
      await Promise.all([jobs?.stop(jobDeadlineMs), services.webhooks.stop(jobDeadlineMs), requestsDone]);
      // The stores stay open until the handlers of cut requests have put back what they held.
      if (settleBy !== undefined) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, settleBy - Date.now()))));
        await Promise.race([router.settled(), late]);
        clearTimeout(timer);
      }
      await services.processing.close();
      await yoga.dispose();
      await blobs.close();
      await redis?.close();
      await db.destroy();
    },
  };
}
