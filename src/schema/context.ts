import type { WebhookService } from '../services/lifecycle/webhooks.js';
import type { IncomingMessage } from 'node:http';
import type { ApiKeyService } from '../auth/api-key-service.js';
import type { Principal } from '../auth/principal.js';
import type { Config } from '../config.js';
import type { RenditionService } from '../services/delivery/renditions.js';
import type { ResumableUploadService } from '../services/uploads/resumable-uploads.js';
import type { PreviewJob } from '../services/delivery/preview-job.js';
import type { Tenant } from '../db/types.js';
import type { AssetAccess } from '../services/assets/asset-access.js';
import type { AssetService } from '../services/assets/asset-service.js';
import type { AssetReads } from '../services/assets/asset-reads.js';
import type { DirectoryService } from '../services/assets/directory-service.js';
import type { DownloadUrlService } from '../services/delivery/download-urls.js';
import type { UploadUrlService } from '../services/uploads/upload-urls.js';
import type { RateLimiter } from '../adapters/rate-limiter.js';
import type { UploadSlots } from '../adapters/upload-slots.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Backlog } from '../jobs/backlog.js';
import type { AssetEvents } from '../services/assets/asset-events.js';
import type { ProcessingService } from '../services/delivery/processing.js';
import type { UrlImportService } from '../services/uploads/url-import.js';

/**
 * Long-lived collaborators, built once by `createApp`: use cases, never a repository
 * (resolvers reach the database through a service).
 */
export interface Services {
  config: Config;
  assets: AssetService;
  /** Pages, tags, versions and usage: what GraphQL reads besides access-checked loads. */
  assetReads: AssetReads;
  apiKeys: ApiKeyService;
  /** Who may see an asset: asked by every path that hands one out. */
  access: AssetAccess;
  downloadUrls: DownloadUrlService;
  processing: ProcessingService;
  urlImports: UrlImportService;
  queue: JobQueue;
  events: AssetEvents;
  /** How far behind processing is, for every org or one tenant. */
  backlog: Backlog;
  rateLimiter: RateLimiter;
  uploadSlots: UploadSlots;
  uploadUrls: UploadUrlService;
  directories: DirectoryService;
  renditions: RenditionService;
  /** The background job that makes each PDF's, video's and audio file's first preview. */
  previews: PreviewJob;
  resumableUploads: ResumableUploadService;
  webhooks: WebhookService;
}

/** What every resolver receives; built per request. */
export interface Context {
  services: Services;
  /** The API key's identity; null for a caller without a key (public reads only). */
  principal: Principal | null;
  /** The org and mode whose data this request may touch; null without a key. */
  tenant: Tenant | null;
  /** The client's address, for limits on callers without a key. */
  clientAddress: string;
  /** The Node request, when served over HTTP: its log line learns the operation. */
  req?: IncomingMessage;
}
