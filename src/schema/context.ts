import type { WebhookService } from '../services/webhooks.js';
import type { WebhookRepository } from '../db/webhook-repository.js';
import type { IncomingMessage } from 'node:http';
import type { ApiKeyService } from '../auth/api-key-service.js';
import type { Principal } from '../auth/principal.js';
import type { Config } from '../config.js';
import type { AssetRepository } from '../db/asset-repository.js';
import type { DirectoryRepository } from '../db/directory-repository.js';
import type { UploadPartRepository } from '../db/upload-part-repository.js';
import type { BlobRepository } from '../db/blob-repository.js';
import type { RenditionRepository } from '../db/rendition-repository.js';
import type { RenditionService } from '../services/renditions.js';
import type { PreviewJob } from '../previews/preview-job.js';
import type { ResumableUploadService } from '../services/resumable-uploads.js';
import type { Tenant } from '../db/types.js';
import type { AssetAccess } from '../services/asset-access.js';
import type { AssetService } from '../services/asset-service.js';
import type { DirectoryService } from '../services/directory-service.js';
import type { DownloadUrlService } from '../services/download-urls.js';
import type { UploadUrlService } from '../services/upload-urls.js';
import type { JobRepository } from '../db/job-repository.js';
import type { OrgRepository } from '../db/org-repository.js';
import type { RateLimiter } from '../services/rate-limiter.js';
import type { UploadSlots } from '../services/upload-slots.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { AssetEvents } from '../services/asset-events.js';
import type { ProcessingService } from '../services/processing.js';
import type { UrlImportService } from '../services/url-import.js';

/** Long-lived collaborators, built once by `createApp`. */
export interface Services {
  config: Config;
  assets: AssetService;
  apiKeys: ApiKeyService;
  /** Who may see an asset: asked by every path that hands one out. */
  access: AssetAccess;
  downloadUrls: DownloadUrlService;
  processing: ProcessingService;
  urlImports: UrlImportService;
  queue: JobQueue;
  events: AssetEvents;
  jobRepository: JobRepository;
  orgs: OrgRepository;
  rateLimiter: RateLimiter;
  uploadSlots: UploadSlots;
  uploadUrls: UploadUrlService;
  directories: DirectoryService;
  assetRepository: AssetRepository;
  directoryRepository: DirectoryRepository;
  uploadParts: UploadPartRepository;
  renditionRepository: RenditionRepository;
  /** The org's one copy of each content, counted by reference. */
  copies: BlobRepository;
  renditions: RenditionService;
  /** The background job that makes each PDF's, video's and audio file's first preview. */
  previews: PreviewJob;
  resumableUploads: ResumableUploadService;
  webhooks: WebhookService;
  webhookRepository: WebhookRepository;
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
