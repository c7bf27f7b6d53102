import { ApiKeyRepository } from './api-key-repository.js';
import { AssetRepository } from './asset-repository.js';
import { BlobRepository } from './blob-repository.js';
import type { Db } from './database.js';
import { DirectoryRepository } from './directory-repository.js';
import { DownloadTokenRepository } from './download-token-repository.js';
import { JobRepository } from './job-repository.js';
import { OrgRepository } from './org-repository.js';
import type { PageStatements } from './page-statements.js';
import { RenditionRepository } from './rendition-repository.js';
import { UploadPartRepository } from './upload-part-repository.js';
import { WebhookRepository } from './webhook-repository.js';

/** Every repository, over one connection pool or one transaction. */
export interface Repositories {
  apiKeys: ApiKeyRepository;
  assets: AssetRepository;
  /** The org's one copy of each content, counted by reference. */
  copies: BlobRepository;
  directories: DirectoryRepository;
  downloadTokens: DownloadTokenRepository;
  jobs: JobRepository;
  orgs: OrgRepository;
  renditions: RenditionRepository;
  uploadParts: UploadPartRepository;
  webhooks: WebhookRepository;
}

/**
 * The repositories plus the unit of work: `transaction(fn)` hands `fn` the same
 * repositories bound to one transaction, committed when `fn` resolves and rolled back
 * when it throws. A service opens it and calls the repositories in the order it takes
 * their locks, so the order reads in the service. Called on repositories that are
 * bound to a transaction already, it joins that one.
 */
export interface UnitOfWork extends Repositories {
  transaction<T>(fn: (tx: UnitOfWork) => Promise<T>): Promise<T>;
}

/** What the repositories of one database share, whether over its pool or one of its transactions. */
export interface RepositoryOptions {
  /** Page statements compiled per shape (DOCUMENT_CACHE_MAX). */
  pageStatements: PageStatements;
}

/** The repositories over `db` (a pool, or a transaction). */
export function createRepositories(db: Db, options: RepositoryOptions): UnitOfWork {
  const repositories: UnitOfWork = {
    apiKeys: new ApiKeyRepository(db),
    assets: new AssetRepository(db, options.pageStatements),
    copies: new BlobRepository(db),
    directories: new DirectoryRepository(db),
    downloadTokens: new DownloadTokenRepository(db),
    jobs: new JobRepository(db),
    orgs: new OrgRepository(db),
    renditions: new RenditionRepository(db),
    uploadParts: new UploadPartRepository(db),
    webhooks: new WebhookRepository(db),
    transaction: (fn) =>
      db.isTransaction ? fn(repositories) : db.transaction().execute((trx) => fn(createRepositories(trx, options))),
  };
  return repositories;
}
