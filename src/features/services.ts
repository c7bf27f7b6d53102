import { ApiKeyService } from '../auth/api-key-service.js';
import { loadSigningSecret } from '../auth/signing-secret.js';
import { UrlSigner } from '../auth/url-signer.js';
import type { BlobStore } from '../blob/index.js';
import type { Config } from '../config.js';
import type { UnitOfWork } from '../db/repositories.js';
import { createExtractPool } from '../jobs/extract-pool.js';
import { createJobQueue } from '../jobs/job-queue.js';
import { createBacklog } from '../jobs/backlog.js';
import type { JobRunnerOptions } from '../jobs/job-runner.js';
import type { Services } from '../schema/context.js';
import { AssetAccess } from '../services/assets/asset-access.js';
import { createAssetEvents } from '../services/assets/asset-events.js';
import { AssetReads } from '../services/assets/asset-reads.js';
import { AssetService } from '../services/assets/asset-service.js';
import { DirectoryService } from '../services/assets/directory-service.js';
import { DownloadUrlService } from '../services/delivery/download-urls.js';
import { createMediaPolicy } from '../services/assets/media-policy.js';
import { ProcessingService } from '../services/delivery/processing.js';
import { QuotaService } from '../services/uploads/quota.js';
import { MemoryRateLimiter } from '../adapters/rate-limiter.js';
import { createSharedRedis, type SharedRedis } from '../adapters/redis.js';
import { RedisRateLimiter } from '../adapters/redis-rate-limiter.js';
import { RedisUploadSlots } from '../adapters/redis-upload-slots.js';
import { RenditionCache } from '../services/delivery/rendition-cache.js';
import { RenditionService } from '../services/delivery/renditions.js';
import { ResumableUploadService } from '../services/uploads/resumable-uploads.js';
import { MemoryUploadSlots } from '../adapters/upload-slots.js';
import { UploadUrlService } from '../services/uploads/upload-urls.js';
import { UrlImportService } from '../services/uploads/url-import.js';
import { WebhookService } from '../services/lifecycle/webhooks.js';
import type { Logger } from '../observability/logger.js';
import type { Feature } from './feature.js';
import { createFfmpeg, findFfmpeg } from '../adapters/ffmpeg.js';
import { createPreviewMaker } from '../services/delivery/previews.js';
import { createPreviewJob } from '../services/delivery/preview-job.js';

/** Waits before each retry of a failed webhook delivery: about a day in all, then it fails for good. */
const WEBHOOK_RETRY_DELAYS_MS = [10_000, 60_000, 300_000, 1_800_000, 7_200_000, 21_600_000, 43_200_000];

/** What the use cases are built on. */
export interface ServiceWiring {
  repos: UnitOfWork;
  blobs: BlobStore;
  redis: SharedRedis | null;
  clock: () => number;
  logError: (error: unknown) => void;
  logger: Logger;
  webhooks?: WebhookOptions;
}

/** How webhook deliveries are retried and when a failing webhook is disabled. */
export interface WebhookOptions {
  retryDelaysMs?: readonly number[];
  disableAfter?: number;
}

/** The use cases, wired to the repositories and stores. */
export async function createServices(config: Config, wiring: ServiceWiring): Promise<Services> {
  const { repos, blobs, redis, clock, logError, logger, webhooks: webhookOptions = {} } = wiring;
  const queue = createJobQueue(clock);
  const events = createAssetEvents(redis?.eventTarget);
  const signer = new UrlSigner({
    secret: await loadSigningSecret(config.signingSecret, config.dataDir),
    previous: config.signingSecretPrevious,
    previousUntil: config.signingPreviousUntil,
    clock,
  });
  const apiKeys = new ApiKeyService({
    keys: repos.apiKeys,
    orgs: repos.orgs,
    clock,
    cache: { ttlMs: config.keyCacheTtl * 1000, max: config.keyCacheMax },
  });
  const access = new AssetAccess({ assets: repos.assets, principalOfKey: (id) => apiKeys.principalById(id) });
  const webhooks = new WebhookService({
    webhooks: repos.webhooks,
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
  const quota = new QuotaService(repos.orgs, config.orgStorageQuota);
  const accept = createMediaPolicy(config.allowedMediaTypes, config.deniedMediaTypes);
  const assets = new AssetService({
    repos,
    blobs,
    queue,
    events,
    quota,
    accept,
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
    threads: config.extractThreads,
    timeoutMs: config.extractTimeout * 1000,
    memoryMb: config.extractMemoryMb,
    idleTimeoutMs: config.extractIdleTimeout * 1000,
  });
  const ffmpegPath = findFfmpeg(config.ffmpegPath);
  const ffmpeg = ffmpegPath
    ? createFfmpeg({
        path: ffmpegPath,
        timeoutMs: config.extractTimeout * 1000,
        memoryBytes: config.ffmpegMemory,
        maxRunning: config.extractThreads,
      })
    : null;
  const uploadUrls = new UploadUrlService({
    repos,
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
  const renditions = new RenditionService({
    renditions: repos.renditions,
    blobs,
    pool: extractPool,
    cache: new RenditionCache({
      renditions: repos.renditions,
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
    queueWaitMs: config.renditionQueueWait * 1000,
    maxImagePixels: config.maxImagePixels,
    previews: createPreviewMaker({ pool: extractPool, ffmpeg }),
    clock,
  });
  // The first page, poster frame or waveform of each PDF, video and audio file, made after extraction.
  const previews = createPreviewJob({
    assets: repos.assets,
    jobs: repos.jobs,
    renditions,
    events,
    clock,
    wake: () => queue.wake(),
  });
  return {
    config,
    queue,
    events,
    backlog: createBacklog(repos.jobs, clock),
    processing: new ProcessingService({
      assets: repos.assets,
      blobs,
      pool: extractPool,
      events,
      thumbnailSizes: config.thumbnailSizes,
      maxImagePixels: config.maxImagePixels,
      pdfWordPagesMax: config.pdfWordPagesMax,
      clock,
    }),
    urlImports: new UrlImportService({
      repos,
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
    assets,
    assetReads: new AssetReads(repos),
    apiKeys,
    access,
    rateLimiter: redis
      ? new RedisRateLimiter(redis.commands, config.rateLimit)
      : new MemoryRateLimiter(config.rateLimit, clock),
    uploadSlots,
    directories: new DirectoryService(repos.directories, clock),
    downloadUrls: new DownloadUrlService({
      assets: repos.assets,
      access,
      blobs,
      direct: config.s3.direct === 'download' || config.s3.direct === 'both',
      tokens: repos.downloadTokens,
      signer,
      publicUrl: config.publicUrl,
      defaultTtl: config.downloadUrlTtl,
      maxTtl: config.downloadUrlMaxTtl,
      maxUrlsPerAsset: config.maxDownloadUrlsPerAsset,
      events,
      clock,
    }),
    uploadUrls,
    webhooks,
    renditions,
    previews,
    resumableUploads: new ResumableUploadService({
      repos,
      assetService: assets,
      uploadUrls,
      quota,
      blobs,
      accept,
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
    preview: (job) => services.previews.run(job),
  };
}

/** The use cases and the shared state (Redis) they may stand on. */
export interface ServicesFeature extends Feature {
  services: Services;
}

/**
 * Connects to Redis when one is configured and builds the services. Serves once Redis
 * answers; if it does not within 5 s, serves anyway: requests that need it fail with a
 * clear error until it does (and the log says why).
 */
export async function openServices(config: Config, wiring: Omit<ServiceWiring, 'redis'>): Promise<ServicesFeature> {
  const redis = config.redisUrl ? createSharedRedis(config.redisUrl, wiring.logError) : null;
  if (redis && !(await redis.ready(5000)))
    wiring.logError(new Error('Redis is not reachable yet; starting without it'));
  const services = await createServices(config, { ...wiring, redis });
  return {
    services,
    async close() {
      await services.processing.close();
      await redis?.close();
    },
  };
}
