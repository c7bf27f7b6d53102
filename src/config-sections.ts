/**
 * The configuration's sections (operations, limits, processing, signed URLs), each read
 * from the environment by the parsers of `config-values.ts`; `loadConfig` spreads them
 * into one `Config`, whose fields document every variable.
 */
import {
  type Env,
  LOG_LEVELS,
  type LogLevel,
  ROLES,
  type Role,
  boolean,
  bytes,
  duration,
  integer,
  list,
  parseBytes,
  secret,
} from './config-values.js';
import { ConfigError } from './errors.js';

export function operations(env: Env) {
  const level = (env.LOG_LEVEL?.trim() || 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError('LOG_LEVEL', `"${level}" is not one of ${LOG_LEVELS.join(', ')}.`);
  }
  const format = env.LOG_FORMAT?.trim() || 'json';
  if (format !== 'json' && format !== 'pretty')
    throw new ConfigError('LOG_FORMAT', `"${format}" is not json or pretty.`);
  const token = env.METRICS_TOKEN?.trim() || null;
  if (token !== null && token.length < 16) {
    throw new ConfigError('METRICS_TOKEN', 'is at least 16 characters: it guards what the gateway is doing.');
  }
  return {
    logLevel: level as LogLevel,
    logFormat: format as 'json' | 'pretty',
    logBuffer: bytes(env, 'LOG_BUFFER', 16 * 1024 ** 2),
    keyCacheTtl: duration(env, 'KEY_CACHE_TTL', { fallback: 5, min: 0 }),
    keyCacheMax: integer(env, 'KEY_CACHE_MAX', { fallback: 10_000, min: 1, max: 10_000_000 }),
    documentCacheMax: integer(env, 'DOCUMENT_CACHE_MAX', { fallback: 1000, min: 1, max: 1_000_000 }),
    metricsToken: token,
    metricsMaxOperations: integer(env, 'METRICS_MAX_OPERATIONS', { fallback: 200, min: 0, max: 10_000 }),
    shutdownTimeout: duration(env, 'SHUTDOWN_TIMEOUT', { fallback: 30, min: 0 }),
  };
}

function mediaPatterns(env: Env, variable: string): string[] {
  const patterns = list(env, variable).map((p) => p.toLowerCase());
  const bad = patterns.find((p) => !/^[a-z0-9.+-]+\/([a-z0-9.+-]+|\*)$/.test(p));
  if (bad) throw new ConfigError(variable, `"${bad}" is not a media type or a pattern like image/*.`);
  return patterns;
}

export function limits(env: Env) {
  const quota = env.ORG_STORAGE_QUOTA?.trim();
  return {
    rateLimit: integer(env, 'RATE_LIMIT', { fallback: 100, min: 0, max: 1_000_000 }),
    uploadConcurrency: integer(env, 'UPLOAD_CONCURRENCY', { fallback: 5, min: 1, max: 10_000 }),
    uploadConcurrencyWait: duration(env, 'UPLOAD_CONCURRENCY_WAIT', { fallback: 0, min: 0 }),
    orgStorageQuota: quota ? parseBytes('ORG_STORAGE_QUOTA', quota) : null,
    allowedMediaTypes: mediaPatterns(env, 'ALLOWED_MEDIA_TYPES'),
    deniedMediaTypes: mediaPatterns(env, 'DENIED_MEDIA_TYPES'),
    graphqlLimits: {
      depth: integer(env, 'GRAPHQL_MAX_DEPTH', { fallback: 12, min: 1, max: 1000 }),
      aliases: integer(env, 'GRAPHQL_MAX_ALIASES', { fallback: 30, min: 0, max: 10_000 }),
      directives: integer(env, 'GRAPHQL_MAX_DIRECTIVES', { fallback: 50, min: 0, max: 10_000 }),
      tokens: integer(env, 'GRAPHQL_MAX_TOKENS', { fallback: 5000, min: 10, max: 1_000_000 }),
      cost: integer(env, 'GRAPHQL_MAX_COST', { fallback: 20000, min: 10, max: 100_000_000 }),
    },
    httpHeadersTimeout: duration(env, 'HTTP_HEADERS_TIMEOUT', { fallback: 20 }),
    httpRequestTimeout: duration(env, 'HTTP_REQUEST_TIMEOUT', { fallback: 3600 }),
    httpIdleTimeout: duration(env, 'HTTP_IDLE_TIMEOUT', { fallback: 60 }),
  };
}

const DEFAULT_IMAGE_WIDTHS = [64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3840];

export function processing(env: Env, cores: number) {
  const thumbnailSizes = list(env, 'THUMBNAIL_SIZES').map((size) => {
    if (!/^\d+$/.test(size) || Number(size) < 16 || Number(size) > 4096) {
      throw new ConfigError('THUMBNAIL_SIZES', `"${size}" is not a size between 16 and 4096.`);
    }
    return Number(size);
  });
  const imageWidths = list(env, 'IMAGE_WIDTHS').map((width) => {
    if (!/^\d+$/.test(width) || Number(width) < 1 || Number(width) > 8192) {
      throw new ConfigError('IMAGE_WIDTHS', `"${width}" is not a width between 1 and 8192.`);
    }
    return Number(width);
  });
  const allowList = (variable: string) => {
    const entries = list(env, variable);
    for (const entry of entries) {
      if (entry.includes('/') && !/^[0-9a-f.:]+\/\d{1,3}$/i.test(entry)) {
        throw new ConfigError(variable, `"${entry}" is not a CIDR range or a host name.`);
      }
    }
    return entries;
  };
  const importAllow = allowList('IMPORT_ALLOW');
  const webhookAllow = allowList('WEBHOOK_ALLOW');
  const role = (env.ROLE?.trim() || 'all') as Role;
  if (!ROLES.includes(role)) throw new ConfigError('ROLE', `"${role}" is not one of ${ROLES.join(', ')}.`);
  // Background CPU work leaves a core to the event loop, which serves every request on one
  // thread; jobs wait on the database and the store too, so more of them are in progress.
  const extractThreads = integer(env, 'EXTRACT_THREADS', { fallback: Math.max(1, cores - 1), min: 1, max: 64 });
  const jobConcurrency = integer(env, 'JOB_CONCURRENCY', {
    fallback: Math.min(64, 4 * extractThreads),
    min: 0,
    max: 64,
  });
  if (role === 'worker' && jobConcurrency === 0)
    throw new ConfigError('JOB_CONCURRENCY', 'is at least 1 with ROLE=worker: a worker runs jobs.');
  return {
    role,
    jobConcurrency: role === 'api' ? 0 : jobConcurrency,
    extractThreads,
    extractTimeout: duration(env, 'EXTRACT_TIMEOUT', { fallback: 30, min: 0.01 }),
    extractMemoryMb: integer(env, 'EXTRACT_MEMORY', { fallback: 256, min: 32, max: 16384 }),
    extractIdleTimeout: duration(env, 'EXTRACT_IDLE_TIMEOUT', { fallback: 10, min: 0 }),
    sqliteCacheSize: bytes(env, 'SQLITE_CACHE_SIZE', 8 * 1024 ** 2),
    sqliteStatementCache: integer(env, 'SQLITE_STATEMENT_CACHE', { fallback: 500, min: 1, max: 100_000 }),
    idleGcDelay: duration(env, 'IDLE_GC_DELAY', { fallback: 10, min: 0 }),
    // Ascending: the first is the smallest, which `thumbnailUrl` names.
    thumbnailSizes: env.THUMBNAIL_SIZES === undefined ? [256] : [...new Set(thumbnailSizes)].sort((a, b) => a - b),
    maxImagePixels: integer(env, 'MAX_IMAGE_PIXELS', { fallback: 100_000_000, min: 1, max: 1e10 }),
    pdfWordPagesMax: integer(env, 'PDF_WORD_PAGES_MAX', { fallback: 2000, min: 1, max: 1_000_000 }),
    imageWidths:
      env.IMAGE_WIDTHS === undefined ? DEFAULT_IMAGE_WIDTHS : [...new Set(imageWidths)].sort((a, b) => a - b),
    renditionQueue: integer(env, 'RENDITION_QUEUE', { fallback: 32, min: 1, max: 10_000 }),
    renditionQueueWait: duration(env, 'RENDITION_QUEUE_WAIT', { fallback: 10, min: 0 }),
    renditionCacheMax: bytes(env, 'RENDITION_CACHE_MAX', 1024 ** 3),
    renditionMaxPerAsset: integer(env, 'RENDITION_MAX_PER_ASSET', { fallback: 32, min: 1, max: 10_000 }),
    renditionAnonRate: integer(env, 'RENDITION_ANON_RATE', { fallback: 60, min: 0, max: 1_000_000 }),
    renditionHotMax: bytes(env, 'RENDITION_HOT_MAX', 32 * 1024 ** 2),
    renditionHotTtl: duration(env, 'RENDITION_HOT_TTL', { fallback: 5, min: 0, max: 60 }),
    ffmpegPath: env.FFMPEG_PATH?.trim() || null,
    ffmpegMemory: bytes(env, 'FFMPEG_MEMORY', 1024 ** 3),
    importMaxSize: bytes(env, 'IMPORT_MAX_SIZE', 4 * 1024 ** 3),
    importAllow,
    webhookAllow,
    webhookTimeout: duration(env, 'WEBHOOK_TIMEOUT', { fallback: 10, min: 0.1 }),
    webhookConcurrency: integer(env, 'WEBHOOK_CONCURRENCY', { fallback: 16, min: 1, max: 1000 }),
    webhookEndpointConcurrency: integer(env, 'WEBHOOK_ENDPOINT_CONCURRENCY', { fallback: 2, min: 1, max: 100 }),
    webhookDisableAfter: integer(env, 'WEBHOOK_DISABLE_AFTER', { fallback: 25, min: 1, max: 1_000_000 }),
    importConnectTimeout: duration(env, 'IMPORT_CONNECT_TIMEOUT', { fallback: 10 }),
    importIdleTimeout: duration(env, 'IMPORT_IDLE_TIMEOUT', { fallback: 30 }),
  };
}

export function signedUrls(env: Env) {
  const until = env.SIGNING_PREVIOUS_UNTIL?.trim();
  const previousUntil = until ? new Date(until) : null;
  if (previousUntil && Number.isNaN(previousUntil.getTime())) {
    throw new ConfigError('SIGNING_PREVIOUS_UNTIL', `"${until}" is not an ISO-8601 date-time.`);
  }
  const downloadUrlMaxTtl = duration(env, 'DOWNLOAD_URL_MAX_TTL', { fallback: 7 * 86400 });
  const downloadUrlTtl = duration(env, 'DOWNLOAD_URL_TTL', { fallback: 3600 });
  if (downloadUrlTtl > downloadUrlMaxTtl)
    throw new ConfigError('DOWNLOAD_URL_TTL', 'must not exceed DOWNLOAD_URL_MAX_TTL.');
  const maxUrls = env.MAX_DOWNLOAD_URLS_PER_ASSET?.trim();
  return {
    signingSecret: secret(env, 'SIGNING_SECRET'),
    signingSecretPrevious: secret(env, 'SIGNING_SECRET_PREVIOUS'),
    signingPreviousUntil: previousUntil,
    downloadUrlTtl,
    downloadUrlMaxTtl,
    maxDownloadUrlsPerAsset: maxUrls
      ? integer(env, 'MAX_DOWNLOAD_URLS_PER_ASSET', { fallback: 0, min: 1, max: 1e9 })
      : null,
    uploadUrlTtl: duration(env, 'UPLOAD_URL_TTL', { fallback: 3600 }),
    uploadSweepGrace: duration(env, 'UPLOAD_SWEEP_GRACE', { fallback: 3600, min: 0 }),
    sweepInterval: duration(env, 'SWEEP_INTERVAL', { fallback: 60, min: 0 }),
    trashRetention: duration(env, 'TRASH_RETENTION', { fallback: 30 * 86_400, min: 0 }),
    jobRetention: duration(env, 'JOB_RETENTION', { fallback: 3600, min: 0 }),
    fsckGrace: duration(env, 'FSCK_GRACE', { fallback: 3600, min: 0 }),
  };
}
