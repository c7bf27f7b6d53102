import type { IncomingMessage, RequestListener } from 'node:http';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { useRateLimit } from './http/use-rate-limit.js';
import { createMediaPolicy } from './services/media-policy.js';
import { QuotaService } from './services/quota.js';
import { RateLimiter } from './services/rate-limiter.js';
import { UploadSlots } from './services/upload-slots.js';
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
import { createDownloadRoute, createSignedDownloadRoute } from './http/download-route.js';
import { createRouter } from './http/router.js';
import { createUploadRoute } from './http/upload-route.js';
import { useAuthentication } from './http/use-authentication.js';
import { useBodyLimit } from './http/use-body-limit.js';
import { createMaskError, useErrorCodes } from './http/use-error-codes.js';
import { useGraphQLUpload } from './http/use-graphql-upload.js';
import { createSweeper, type Sweeper } from './jobs/sweeper.js';
import { createExtractPool } from './jobs/extract-pool.js';
import { createJobQueue } from './jobs/job-queue.js';
import { createJobRunner, type JobRunner } from './jobs/job-runner.js';
import { JobRepository } from './db/job-repository.js';
import { createAssetEvents } from './services/asset-events.js';
import { ProcessingService } from './services/processing.js';
import { UrlImportService } from './services/url-import.js';
import type { Context, Services } from './schema/context.js';
import { buildSchema } from './schema/index.js';
import { AssetService } from './services/asset-service.js';
import { DirectoryService } from './services/directory-service.js';
import { DownloadUrlService } from './services/download-urls.js';
import { UploadUrlService } from './services/upload-urls.js';

/** Collaborators a caller (mostly a test) may supply instead of the configured ones. */
export interface AppOverrides {
  db?: Db;
  blobs?: BlobStore;
  clock?: () => number;
  /** Where unexpected errors are reported. @default console.error */
  logError?: (error: unknown) => void;
  /** Run background jobs in this app. @default true when JOB_CONCURRENCY > 0 */
  runJobs?: boolean;
}

/** A built assetgate: the Node request listener and what it is made of. */
export interface App {
  handler: RequestListener;
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  services: Services;
  db: Db;
  blobs: BlobStore;
  /** Path prefixes of the plain HTTP routes (besides /graphql and /healthz). */
  routes: string[];
  /** Housekeeping, run every SWEEP_INTERVAL; callable directly. */
  sweeper: Sweeper;
  /** Background jobs of this process; null when it runs none. */
  jobs: JobRunner | null;
  close(): Promise<void>;
}

/** The use cases, wired to their repositories and stores. */
async function createServices(config: Config, db: Db, blobs: BlobStore, clock: () => number): Promise<Services> {
  const assetRepository = new AssetRepository(db);
  const jobRepository = new JobRepository(db);
  const queue = createJobQueue(jobRepository, clock);
  const events = createAssetEvents();
  const directoryRepository = new DirectoryRepository(db);
  const signer = new UrlSigner({
    secret: await loadSigningSecret(config.signingSecret, config.dataDir),
    previous: config.signingSecretPrevious,
    previousUntil: config.signingPreviousUntil,
    clock,
  });
  const orgs = new OrgRepository(db);
  const assets = new AssetService({
    assets: assetRepository,
    directories: directoryRepository,
    blobs,
    queue,
    events,
    quota: new QuotaService(orgs, config.orgStorageQuota),
    accept: createMediaPolicy(config.allowedMediaTypes, config.deniedMediaTypes),
    maxFileSize: config.maxFileSize,
    clock,
  });
  const uploadSlots = new UploadSlots(config.uploadConcurrency, config.uploadConcurrencyWait * 1000);
  return {
    config,
    queue,
    events,
    jobRepository,
    processing: new ProcessingService({
      assets: assetRepository,
      blobs,
      pool: createExtractPool({
        threads: Math.max(1, config.jobConcurrency),
        timeoutMs: config.extractTimeout * 1000,
        memoryMb: config.extractMemoryMb,
      }),
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
    assets,
    apiKeys: new ApiKeyService(new ApiKeyRepository(db), orgs, clock),
    orgs,
    rateLimiter: new RateLimiter(config.rateLimit, clock),
    uploadSlots,
    directories: new DirectoryService(directoryRepository, clock),
    downloadUrls: new DownloadUrlService({
      assets: assetRepository,
      tokens: new DownloadTokenRepository(db),
      signer,
      publicUrl: config.publicUrl,
      defaultTtl: config.downloadUrlTtl,
      maxTtl: config.downloadUrlMaxTtl,
      maxUrlsPerAsset: config.maxDownloadUrlsPerAsset,
      clock,
    }),
    uploadUrls: new UploadUrlService({
      assets: assetRepository,
      assetService: assets,
      blobs,
      signer,
      queue,
      slots: uploadSlots,
      publicUrl: config.publicUrl,
      maxFileSize: config.maxFileSize,
      ttl: config.uploadUrlTtl,
      clock,
    }),
  };
}

/** Builds everything (database, blob store, GraphQL, routes, housekeeping) from `config`. */
export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const logError = overrides.logError ?? ((error: unknown) => console.error('[assetgate]', error));
  const clock = overrides.clock ?? Date.now;
  const db = overrides.db ?? createDatabase({ url: config.databaseUrl, onBackgroundError: logError });
  const blobs = overrides.blobs ?? createBlobStore(config.blobStore, config.dataDir);
  await migrateOrThrow(db);
  const services = await createServices(config, db, blobs, clock);
  const { apiKeys, assetRepository } = services;

  const authentication = useAuthentication((key) => apiKeys.authenticate(key));
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema: buildSchema(),
    graphqlEndpoint: '/graphql',
    multipart: false,
    maxRequestBodySize: false,
    landingPage: false,
    batching: false,
    logging: false, // unexpected errors are logged by maskError; expected ones are answers, not logs
    maskedErrors: { maskError: createMaskError(logError) },
    context: ({ request, req }): Context => {
      const principal = authentication.principalOf(request);
      const clientAddress = (req as IncomingMessage | undefined)?.socket.remoteAddress ?? 'unknown';
      return { services, principal, tenant: principal && tenantOf(principal), clientAddress };
    },
    plugins: [
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
        costLimit: { maxCost: config.graphqlLimits.cost },
        blockFieldSuggestion: { enabled: !config.introspection },
      }),
      ...(config.introspection ? [] : [useDisableIntrospection()]),
      ...(config.rateLimit > 0 ? [useRateLimit(services.rateLimiter)] : []),
      useErrorCodes(),
      // Compiles each (cached) query to a function: list pages spend their time in resolvers, not the executor.
      useGraphQlJit(),
    ],
  });

  const routes = {
    '/download/': createDownloadRoute({
      assets: assetRepository,
      blobs,
      authenticate: async (req) => {
        const key = presentedKey((name) => req.headers[name] as string | undefined);
        return key === null ? null : apiKeys.authenticate(key);
      },
    }),
    '/dl/': createSignedDownloadRoute({ assets: assetRepository, blobs, urls: services.downloadUrls }),
    '/up/': createUploadRoute({ uploads: services.uploadUrls, maxFileSize: config.maxFileSize }),
  };
  const handler = createRouter(yoga as unknown as RequestListener, routes, logError);

  const runJobs = overrides.runJobs ?? config.jobConcurrency > 0;
  const jobs = runJobs
    ? createJobRunner({
        jobs: services.jobRepository,
        handlers: {
          extract: (job) => services.processing.extract(job),
          import: (job) => services.urlImports.run(job),
        },
        onGiveUp: (job, error) => services.processing.giveUp(job, error),
        concurrency: Math.max(1, config.jobConcurrency),
        clock,
        logError,
      })
    : null;
  if (jobs) {
    services.queue.onWake(() => jobs.wake());
    jobs.start();
  }

  const sweeper = createSweeper({
    db,
    orgs: services.orgs,
    assets: assetRepository,
    jobs: services.jobRepository,
    tokens: new DownloadTokenRepository(db),
    blobs,
    grace: config.uploadSweepGrace,
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
    db,
    blobs,
    routes: Object.keys(routes),
    sweeper,
    jobs,
    async close() {
      clearInterval(sweepTimer);
      await sweeping;
      await jobs?.stop();
      await services.processing.close();
      await yoga.dispose();
      await blobs.close();
      await db.destroy();
    },
  };
}
