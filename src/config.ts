import os from 'node:os';
import path from 'node:path';
import { operations, limits, processing, signedUrls } from './config-sections.js';
import { type Env, type LogLevel, type Role, boolean, bytes, duration, integer, url } from './config-values.js';
import { ConfigError } from './errors.js';

export { LOG_LEVELS, ROLES, parseBytes, parseDuration, type LogLevel, type Role } from './config-values.js';

/** An S3-compatible store's connection. */
export interface S3Config {
  /** URL of any S3-compatible server (MinIO, Ceph, R2…). @default AWS */
  endpoint: string | null;
  /** The bucket's region. @default 'us-east-1' */
  region: string;
  /** Path-style addressing, for local servers. @default false */
  forcePathStyle: boolean;
  /**
   * Both or neither; unset, the SDK's default chain (profile, instance role) is used. Never logged.
   * @env AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
   * @default the SDK's chain
   */
  credentials: { accessKeyId: string; secretAccessKey: string } | null;
  /** Which signed URLs go straight to the bucket: `off`, `download`, `upload` or `both`. @default 'off' */
  direct: 'off' | 'download' | 'upload' | 'both';
}

/** Everything the server and the CLI are configured with. Built by `loadConfig`. */

export interface Config {
  /** TCP port. @default 4000 */
  port: number;
  /** Interface to bind. @default '0.0.0.0' */
  host: string;
  /** Folder for the embedded database, blobs and generated secrets. @default './data' */
  dataDir: string;
  /** `sqlite:<path>` or `postgres://…`. @default `sqlite:$DATA_DIR/assetgate.db` */
  databaseUrl: string;
  /**
   * PostgreSQL connections this process opens at most (its pool); ignored with SQLite, which
   * has one connection. Every gateway and worker holds its own pool: keep their sum below the
   * server's `max_connections`. @default 10
   */
  databasePool: number;
  /**
   * Longest wait for a PostgreSQL connection, seconds: for a free one while all DATABASE_POOL
   * are busy, or for a new one to open. Past it the request fails with 503 SERVICE_UNAVAILABLE
   * (`Retry-After`) instead of hanging; ignored with SQLite. @default 10
   */
  databasePoolWait: number;
  /** `fs` (under `$DATA_DIR/blobs`), `fs:<dir>`, `memory` or `s3://BUCKET[/PREFIX]`. @default 'fs' */
  blobStore: string;
  /** How to reach the bucket when `blobStore` is `s3://…`. */
  s3: S3Config;
  /** Redis shared by several gateways (rate limits, upload slots, events); null keeps them in process. */
  redisUrl: string | null;
  /** Base of every URL the API hands out, without a trailing slash. @default `http://localhost:$PORT` */
  publicUrl: string;
  /** Largest accepted file in bytes. @default 200 MiB */
  maxFileSize: number;
  /** Most files in one multipart request. @default 100 */
  maxFilesPerRequest: number;
  /** Largest JSON (non-multipart) request body in bytes. @default 1 MiB */
  maxJsonBodySize: number;
  /** Whether introspection and field suggestions are on. @env GRAPHQL_INTROSPECTION @default true */
  introspection: boolean;
  /** HMAC secret for signed URLs; generated into `$DATA_DIR/signing.key` when unset. */
  signingSecret: string | null;
  /** The secret before the last rotation: still accepted until `signingPreviousUntil`. */
  signingSecretPrevious: string | null;
  /** When the previous secret stops being accepted; null: while it is configured. */
  signingPreviousUntil: Date | null;
  /** Default lifetime of a download URL, seconds. @default 3600 */
  downloadUrlTtl: number;
  /** Longest lifetime a download URL may ask for, seconds. @default 7 days */
  downloadUrlMaxTtl: number;
  /** Most download URLs one asset hands out before it goes dark; null: no limit. @default null */
  maxDownloadUrlsPerAsset: number | null;
  /** Lifetime of an upload URL, seconds. @default 3600 */
  uploadUrlTtl: number;
  /** How long an expired, never-used upload is kept before the sweep removes it, seconds. @default 3600 */
  uploadSweepGrace: number;
  /** How often the sweep runs, seconds; 0 turns it off. @default 60 */
  sweepInterval: number;
  /** How long a deleted asset stays in the trash before the sweep purges it, seconds; 0: no trash. @default 30d */
  trashRetention: number;
  /**
   * How long a finished job (done, or failed for good) is kept for inspection before the sweep
   * deletes it, seconds: the queue stays small, so its lookups and counts stay cheap. @default 3600
   */
  jobRetention: number;
  /**
   * Blobs younger than this (by the store's last-modified time) are left out of fsck's orphan
   * check: an upload or a thumbnail between its bytes and its row looks like one. Seconds;
   * keep it above the longest upload (on S3 a multipart object dates from its start). @default 3600
   */
  fsckGrace: number;
  /**
   * What this process does, so API and processing scale apart: `all` serves everything and runs
   * background work; `api` serves everything and runs no jobs (JOB_CONCURRENCY is forced to 0);
   * `worker` runs jobs, webhook deliveries and the sweep, and serves only `/healthz`, `/readyz`
   * and `/metrics`. @default all
   */
  role: Role;
  /**
   * Background jobs (extraction, previews, imports) in progress at once in this process; 0: none
   * here. A job spends much of its time on the database and the store, so several run for each
   * thread; the CPU they use is bounded by EXTRACT_THREADS. Always 0 with `ROLE=api`; at least 1
   * with `ROLE=worker`. @default 4 × EXTRACT_THREADS
   */
  jobConcurrency: number;
  /**
   * Threads (and ffmpeg processes) doing the CPU work of jobs and renditions at once; more work
   * waits for one. The default leaves a core to the event loop that serves requests.
   * @default CPU cores − 1, at least 1
   */
  extractThreads: number;
  /** Longest extraction of one file, seconds; the worker is stopped past it. @default 30 */
  extractTimeout: number;
  /** Heap cap of an extraction worker, MiB. @env EXTRACT_MEMORY @default 256 */
  extractMemoryMb: number;
  /**
   * Seconds an extraction worker thread may stay idle before it exits and gives its heap
   * (and libvips' buffers) back; the next job starts a new one. @default 10
   */
  extractIdleTimeout: number;
  /**
   * SQLite page cache of the serving connection, bytes (`PRAGMA cache_size`): hot pages of
   * the tables, indexes and full-text index are kept in memory up to this. @default 8 MiB
   */
  sqliteCacheSize: number;
  /**
   * SQLite statements kept prepared by their SQL text; past it the oldest is dropped (and
   * prepared again when next asked). The product's statements are a few hundred at most, a
   * list's `ids` filter adding one per length. @default 500
   */
  sqliteStatementCache: number;
  /**
   * Seconds without a request after which, if requests came before, the process runs one
   * full garbage collection, so the heap a burst grew shrinks back while the gateway is
   * idle; 0: never (V8 alone keeps it). @default 10
   */
  idleGcDelay: number;
  /** Longest side of each thumbnail an image lists, pixels; each is a rendition drawn on its first request. @default [256] */
  thumbnailSizes: number[];
  /** Images declaring more pixels are refused unread (pixel bombs). @default 100 000 000 */
  maxImagePixels: number;
  /**
   * Pages of a PDF whose words `wordCount` counts (and whose text search reads): the first
   * this many; `pageCount` still counts them all. Keeps the count of a huge PDF within
   * EXTRACT_TIMEOUT. @default 2000
   */
  pdfWordPagesMax: number;
  /** Widths and heights renditions snap up to, ascending. @default 64,128,256,384,512,768,1024,1536,2048,3840 */
  imageWidths: number[];
  /** Renditions being made or waiting for a worker at once; past it a new one waits in line (RENDITION_QUEUE_WAIT). @default 32 */
  renditionQueue: number;
  /**
   * How long a new rendition past RENDITION_QUEUE waits in line for a place, seconds, before
   * it is a 503; the line holds at most 4 × RENDITION_QUEUE requests (past it, 503 at once);
   * 0: no line, refused at once. @default 10
   */
  renditionQueueWait: number;
  /** Bytes all kept renditions may occupy together (every org); past it the least recently used go. @default 1 GiB */
  renditionCacheMax: number;
  /** Renditions kept of one asset; past it its least recently used go. @default 32 */
  renditionMaxPerAsset: number;
  /** New renditions (not yet kept) one client without a key may have made per minute, per address; 0: no limit. @default 60 */
  renditionAnonRate: number;
  /**
   * Memory each process holds its most recently asked small renditions in, bytes (units like
   * MAX_FILE_SIZE): asked again, one is answered without reading a row or the store. A
   * rendition larger than a sixteenth of it is not held, and those being read or sent to be held
   * take at most a quarter of it at once (past it they stream as before; RENDITION_HOT_TTL=0
   * holds none). @default 32 MiB
   */
  renditionHotMax: number;
  /**
   * Seconds a held rendition is answered from memory before a request reads its rows again.
   * A change of the asset (trash, visibility, new bytes) drops it at once on every gateway
   * that hears it (all of them with REDIS_URL); a change made where this process cannot hear it
   * (the CLI without Redis) reaches it within this time, as a revoked key does within
   * KEY_CACHE_TTL. At most 60: each hold ends in a request that notes the rendition as used,
   * so the rendition cache (which notes uses a minute apart) still evicts the least recently
   * used. 0 holds none. @default 5
   */
  renditionHotTtl: number;
  /**
   * The ffmpeg that makes video frames and audio waveforms. Unset: `ffmpeg` on the PATH, else the
   * binary of the optional npm package `@ffmpeg-installer/ffmpeg`; none found: video and audio
   * previews are off (415), which the log says once at start. @default null
   */
  ffmpegPath: string | null;
  /** Address space one ffmpeg run may take, bytes (units like MAX_FILE_SIZE); past it the run fails. Its time limit is EXTRACT_TIMEOUT. @default 1 GiB */
  ffmpegMemory: number;
  /** Largest file an import from a URL may bring. @default 4 GiB */
  importMaxSize: number;
  /** Private networks (CIDR) or host names imports may reach all the same. @default [] */
  importAllow: string[];
  /** Private networks (CIDR) or host names webhooks may reach all the same. @default [] */
  webhookAllow: string[];
  /** Longest webhook delivery attempt, seconds: connect, send and answer together; then it is retried. @default 10 */
  webhookTimeout: number;
  /** Webhook delivery attempts one gateway runs at once, all orgs together; one org gets half at most. @default 16 */
  webhookConcurrency: number;
  /** Webhook delivery attempts at once to one webhook. @default 2 */
  webhookEndpointConcurrency: number;
  /** Failed deliveries in a row after which a webhook is disabled (`enableWebhook` turns it back on). @default 25 */
  webhookDisableAfter: number;
  /** Seconds to connect to an import's source. @default 10 */
  importConnectTimeout: number;
  /** Seconds an import's source may stay silent. @default 30 */
  importIdleTimeout: number;
  /** GraphQL operations (root fields, aliases count) per key per minute; 0: no limit. @default 100 */
  rateLimit: number;
  /** Uploads one key may run at once. @default 5 */
  uploadConcurrency: number;
  /** How long an upload over that number waits for a slot, seconds; 0: refused at once. @default 0 */
  uploadConcurrencyWait: number;
  /** Bytes each org may store (both modes together); null: no quota. @default null */
  orgStorageQuota: number | null;
  /** Media types accepted (patterns like image/*), judged from the bytes; empty: all. */
  allowedMediaTypes: string[];
  /** Media types refused, judged from the bytes. */
  deniedMediaTypes: string[];
  /** Query limits (graphql-armor, and a cost that counts page sizes given as variables). */
  graphqlLimits: {
    /** Deepest query. @env GRAPHQL_MAX_DEPTH @default 12 */
    depth: number;
    /** Most aliases in a query. @env GRAPHQL_MAX_ALIASES @default 30 */
    aliases: number;
    /** Most directives in a query. @env GRAPHQL_MAX_DIRECTIVES @default 50 */
    directives: number;
    /** Most tokens in a query. @env GRAPHQL_MAX_TOKENS @default 5000 */
    tokens: number;
    /** Highest estimated cost of an operation, page sizes from its variables included. @env GRAPHQL_MAX_COST @default 20000 */
    cost: number;
  };
  /** Seconds for a client to send its request headers (slowloris). @default 20 */
  httpHeadersTimeout: number;
  /** Seconds a whole request may take, body included. @default 3600 */
  httpRequestTimeout: number;
  /** Seconds a connection may stay silent. @default 60 */
  httpIdleTimeout: number;
  /** pino level: fatal, error, warn, info, debug, trace or silent. @default info */
  logLevel: LogLevel;
  /** `json` (one line per event) or `pretty` (for people). @default json */
  logFormat: 'json' | 'pretty';
  /**
   * Bytes of JSON log lines that may wait for stdout (written asynchronously); while
   * stdout takes nothing and this much waits, new lines are dropped. @default 16MiB
   */
  logBuffer: number;
  /**
   * Seconds a checked API key is trusted without reading its row again: a key revoked
   * through another gateway or the CLI stops within this time (at once on the gateway
   * that revoked it); 0 reads the row on every request. @default 5
   */
  keyCacheTtl: number;
  /** API keys kept checked at most; the least recently used go first. @default 10000 */
  keyCacheMax: number;
  /**
   * Parsed GraphQL documents whose own work (the cost estimate's plan, the columns a list
   * reads) is kept, so that a request repeating a query does not redo it; as many again
   * list statements compiled per shape (the columns, filters, order and page size of a
   * request, whatever its values). The least recently used go first. @default 1000
   */
  documentCacheMax: number;
  /** Bearer token `/metrics` asks for; null: no metrics served. */
  metricsToken: string | null;
  /**
   * GraphQL operation names `/metrics` labels by name: a name counts once a key's request
   * under it succeeded; past this many, and for every other name, the label is `other`. @default 200
   */
  metricsMaxOperations: number;
  /** Seconds a shutdown waits for requests and jobs under way. @default 30 */
  shutdownTimeout: number;
}

/** The environment variables read, for documentation and error messages. */
export const CONFIG_VARIABLES = [
  'PORT',
  'HOST',
  'DATA_DIR',
  'DATABASE_URL',
  'DATABASE_POOL',
  'DATABASE_POOL_WAIT',
  'BLOB_STORE',
  'S3_ENDPOINT',
  'S3_REGION',
  'S3_FORCE_PATH_STYLE',
  'S3_DIRECT',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'REDIS_URL',
  'PUBLIC_URL',
  'MAX_FILE_SIZE',
  'MAX_FILES_PER_REQUEST',
  'MAX_JSON_BODY_SIZE',
  'GRAPHQL_INTROSPECTION',
  'SIGNING_SECRET',
  'SIGNING_SECRET_PREVIOUS',
  'SIGNING_PREVIOUS_UNTIL',
  'DOWNLOAD_URL_TTL',
  'DOWNLOAD_URL_MAX_TTL',
  'MAX_DOWNLOAD_URLS_PER_ASSET',
  'UPLOAD_URL_TTL',
  'UPLOAD_SWEEP_GRACE',
  'SWEEP_INTERVAL',
  'TRASH_RETENTION',
  'JOB_RETENTION',
  'FSCK_GRACE',
  'ROLE',
  'JOB_CONCURRENCY',
  'EXTRACT_THREADS',
  'EXTRACT_TIMEOUT',
  'EXTRACT_MEMORY',
  'EXTRACT_IDLE_TIMEOUT',
  'SQLITE_CACHE_SIZE',
  'SQLITE_STATEMENT_CACHE',
  'IDLE_GC_DELAY',
  'THUMBNAIL_SIZES',
  'MAX_IMAGE_PIXELS',
  'PDF_WORD_PAGES_MAX',
  'IMAGE_WIDTHS',
  'RENDITION_QUEUE',
  'RENDITION_QUEUE_WAIT',
  'RENDITION_CACHE_MAX',
  'RENDITION_MAX_PER_ASSET',
  'RENDITION_ANON_RATE',
  'RENDITION_HOT_MAX',
  'RENDITION_HOT_TTL',
  'FFMPEG_PATH',
  'FFMPEG_MEMORY',
  'IMPORT_MAX_SIZE',
  'IMPORT_ALLOW',
  'IMPORT_CONNECT_TIMEOUT',
  'IMPORT_IDLE_TIMEOUT',
  'WEBHOOK_ALLOW',
  'WEBHOOK_TIMEOUT',
  'WEBHOOK_CONCURRENCY',
  'WEBHOOK_ENDPOINT_CONCURRENCY',
  'WEBHOOK_DISABLE_AFTER',
  'RATE_LIMIT',
  'UPLOAD_CONCURRENCY',
  'UPLOAD_CONCURRENCY_WAIT',
  'ORG_STORAGE_QUOTA',
  'ALLOWED_MEDIA_TYPES',
  'DENIED_MEDIA_TYPES',
  'GRAPHQL_MAX_DEPTH',
  'GRAPHQL_MAX_ALIASES',
  'GRAPHQL_MAX_DIRECTIVES',
  'GRAPHQL_MAX_TOKENS',
  'GRAPHQL_MAX_COST',
  'HTTP_HEADERS_TIMEOUT',
  'HTTP_REQUEST_TIMEOUT',
  'HTTP_IDLE_TIMEOUT',
  'LOG_LEVEL',
  'LOG_FORMAT',
  'LOG_BUFFER',
  'KEY_CACHE_TTL',
  'KEY_CACHE_MAX',
  'DOCUMENT_CACHE_MAX',
  'METRICS_TOKEN',
  'METRICS_MAX_OPERATIONS',
  'SHUTDOWN_TIMEOUT',
] as const;

function s3Config(env: Env): S3Config {
  const raw = env.S3_ENDPOINT?.trim();
  const endpoint = raw ? url('S3_ENDPOINT', raw) : null;
  const accessKeyId = env.AWS_ACCESS_KEY_ID?.trim();
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY?.trim();
  if (!accessKeyId !== !secretAccessKey) {
    throw new ConfigError(
      accessKeyId ? 'AWS_SECRET_ACCESS_KEY' : 'AWS_ACCESS_KEY_ID',
      'set both access key variables, or neither.',
    );
  }
  const direct = env.S3_DIRECT?.trim() || 'off';
  if (direct !== 'off' && direct !== 'download' && direct !== 'upload' && direct !== 'both') {
    throw new ConfigError('S3_DIRECT', `"${direct}" is not one of off, download, upload, both.`);
  }
  return {
    endpoint,
    region: env.S3_REGION?.trim() || 'us-east-1',
    forcePathStyle: boolean(env, 'S3_FORCE_PATH_STYLE', false),
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : null,
    direct,
  };
}

/**
 * The configuration from `env`. `cores`: the CPUs this process may use, which sets the
 * default number of background jobs.
 */
export function loadConfig(env: Env, cwd = process.cwd(), cores = os.availableParallelism()): Config {
  const port = integer(env, 'PORT', { fallback: 4000, min: 0, max: 65535 });
  const host = env.HOST?.trim() || '0.0.0.0';
  const dataDir = path.resolve(cwd, env.DATA_DIR?.trim() || './data');

  const databaseUrl = env.DATABASE_URL?.trim() || `sqlite:${path.join(dataDir, 'assetgate.db')}`;
  if (!/^(sqlite:|postgres(ql)?:\/\/)/.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'must start with sqlite: or postgres://.');
  }

  const blobStore = env.BLOB_STORE?.trim() || 'fs';
  if (
    !/^(fs(:.+)?|memory|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[A-Za-z0-9!_.*'()\/-]*[A-Za-z0-9!_.*'()-])?)$/.test(
      blobStore,
    )
  ) {
    throw new ConfigError('BLOB_STORE', `"${blobStore}" is not one of fs, fs:<dir>, memory, s3://BUCKET[/PREFIX].`);
  }
  const redisUrl = env.REDIS_URL?.trim() || null;
  if (redisUrl !== null && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError('REDIS_URL', 'must start with redis:// or rediss://.');
  }

  const publicUrl = url('PUBLIC_URL', env.PUBLIC_URL?.trim() || `http://localhost:${port}`);

  return {
    port,
    host,
    dataDir,
    databaseUrl,
    databasePool: integer(env, 'DATABASE_POOL', { fallback: 10, min: 1, max: 10_000 }),
    databasePoolWait: duration(env, 'DATABASE_POOL_WAIT', { fallback: 10, min: 0.01 }),
    blobStore,
    s3: s3Config(env),
    redisUrl,
    publicUrl,
    maxFileSize: bytes(env, 'MAX_FILE_SIZE', 200 * 1024 ** 2),
    maxFilesPerRequest: integer(env, 'MAX_FILES_PER_REQUEST', { fallback: 100, min: 1, max: 10_000 }),
    maxJsonBodySize: bytes(env, 'MAX_JSON_BODY_SIZE', 1024 ** 2),
    introspection: boolean(env, 'GRAPHQL_INTROSPECTION', true),
    ...signedUrls(env),
    ...processing(env, cores),
    ...limits(env),
    ...operations(env),
  };
}
