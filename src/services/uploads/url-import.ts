import { randomUUID } from 'node:crypto';
import type { Principal } from '../../auth/principal.js';
import { tenantOf } from '../../auth/principal.js';
import { type BlobStore, createBlobKey } from '../../blob/index.js';
import type { UnitOfWork } from '../../db/repositories.js';
import { nowIso } from '../../db/database.js';
import type { AssetRow, JobRow } from '../../db/types.js';
import { AppError, BadUserInputError, PayloadTooLargeError } from '../../errors.js';
import type { JobQueue } from '../../jobs/job-queue.js';
import type { AssetEvents } from '../assets/asset-events.js';
import type { AssetFields } from '../assets/asset-fields.js';
import type { AssetService } from '../assets/asset-service.js';
import { parseHttpUrl } from '../assets/embed.js';
import { FetchRefused, type SafeFetchOptions, safeFetch } from '../../adapters/safe-fetch.js';

/** Network failures that say something about the source, not about us: no retry. */
const SOURCE_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ETIMEDOUT',
  'EPROTO',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);

export interface UrlImportDeps {
  repos: UnitOfWork;
  assetService: AssetService;
  blobs: BlobStore;
  queue: JobQueue;
  events: AssetEvents;
  fetch: SafeFetchOptions;
  /** Largest file an import may bring. */
  maxBytes: number;
  clock: () => number;
}

export interface ImportInput extends AssetFields {
  url: string;
  filename?: string | null;
}

/** The file name a URL suggests: its last path segment, decoded; a malformed escape there is the client's mistake. */
function filenameFrom(url: URL): string {
  const segment = url.pathname.split('/').filter(Boolean).pop() ?? '';
  let last: string;
  try {
    last = decodeURIComponent(segment);
  } catch {
    throw new BadUserInputError('url', 'The URL ends in a malformed percent-escape; give a filename.');
  }
  return last || url.hostname;
}

/**
 * `importAssetFromUrl`: the asset answers at once, WAITING; the `import` job
 * fetches the URL (SSRF-safe), streams it into the store, and queues extraction.
 */
export class UrlImportService {
  constructor(private readonly deps: UrlImportDeps) {}

  async create(principal: Principal, input: ImportInput): Promise<AssetRow> {
    const url = parseHttpUrl(input.url, 'url');
    const tenant = tenantOf(principal);
    const checked = await this.deps.assetService.checkFields(tenant, {
      ...input,
      filename: input.filename ?? filenameFrom(url),
    });
    const asset = await this.deps.repos.transaction(async (tx) => {
      const inserted = await this.deps.assetService.insertNew(tx, tenant, {
        fields: checked,
        isPublic: input.isPublic,
        type: 'OTHER',
        status: 'WAITING',
        metadata: JSON.stringify({ sourceUrl: url.href }),
      });
      await this.deps.queue.enqueue(tx, { kind: 'import', asset: inserted });
      return inserted;
    });
    this.deps.queue.wake();
    return asset;
  }

  /** The `import` job. Idempotent: an asset that already has its bytes is left alone. */
  async run(job: JobRow): Promise<void> {
    const { deps } = this;
    const asset = await deps.repos.assets.findByIdAnyTenant(job.asset_id);
    if (!asset || asset.blob_key || asset.status !== 'WAITING') return;
    const source = (JSON.parse(asset.metadata ?? '{}') as { sourceUrl?: string }).sourceUrl;
    if (!source) return this.#fail(asset, 'the asset has no source URL');
    try {
      const { response } = await safeFetch(source, deps.fetch);
      const length = Number(response.headers['content-length']);
      if (length > deps.maxBytes) {
        response.destroy();
        throw new PayloadTooLargeError(deps.maxBytes);
      }
      // Recorded only if the asset is still WAITING: deleted meanwhile, the bytes are dropped.
      await deps.assetService.storeBytes(
        {
          orgId: asset.org_id,
          stream: response,
          blobKey: createBlobKey(randomUUID()),
          maxBytes: deps.maxBytes,
          filename: asset.filename,
        },
        (tx, file) =>
          tx.assets.updateIfStatusAnyTenant(asset.id, 'WAITING', {
            ...file,
            status: 'PROCESSING',
            updated_at: nowIso(deps.clock),
          }),
      );
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (error instanceof FetchRefused || error instanceof AppError || (code && SOURCE_ERRORS.has(code))) {
        return this.#fail(asset, `import failed: ${(error as Error).message}`);
      }
      throw error; // our side (the store, the database): retried
    }
  }

  async #fail(asset: AssetRow, reason: string): Promise<void> {
    const failed = await this.deps.repos.assets.updateIfStatusAnyTenant(asset.id, 'WAITING', {
      status: 'FAILED',
      failure_reason: reason.slice(0, 500),
      updated_at: nowIso(this.deps.clock),
    });
    if (failed) await this.deps.events.publish(failed, 'asset.failed');
  }
}
