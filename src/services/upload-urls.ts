import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Principal } from '../auth/principal.js';
import { tenantOf } from '../auth/principal.js';
import { SignatureError, type UrlClaims, type UrlSigner } from '../auth/url-signer.js';
import { type BlobStore, createBlobKey } from '../blob/index.js';
import type { AssetRepository } from '../db/asset-repository.js';
import { nowIso } from '../db/database.js';
import type { AssetRow } from '../db/types.js';
import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError, PayloadTooLargeError } from '../errors.js';
import type { AssetFields, AssetService } from './asset-service.js';
import { ingest } from './ingest.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { UploadSlots } from './upload-slots.js';

const CHECKSUM = /^sha256:[0-9a-f]{64}$/;

export interface UploadUrlServiceDeps {
  assets: AssetRepository;
  assetService: AssetService;
  blobs: BlobStore;
  signer: UrlSigner;
  queue: JobQueue;
  slots: UploadSlots;
  publicUrl: string;
  maxFileSize: number;
  /** Lifetime of an upload URL, seconds. */
  ttl: number;
  clock: () => number;
}

export interface UploadUrlInput extends AssetFields {
  filename: string;
  /** The client's claim; informational only: the type is judged from the bytes. */
  contentType?: string | null;
  size?: number | null;
  checksum?: string | null;
}

/**
 * Two-step uploads: an asset in WAITING with a signed PUT URL, then the bytes.
 * The design leaves room for stores that take uploads themselves (a presigned
 * S3 PUT): `create` would hand out the store's URL and a completion hook would
 * take the place of `receive`.
 */
export class UploadUrlService {
  constructor(private readonly deps: UploadUrlServiceDeps) {}

  async create(
    principal: Principal,
    input: UploadUrlInput,
  ): Promise<{ asset: AssetRow; uploadUrl: string; expiresAt: string }> {
    const { deps } = this;
    const tenant = tenantOf(principal);
    const checked = await deps.assetService.checkFields(tenant, input);
    if (input.size != null) {
      if (!Number.isInteger(input.size) || input.size < 0)
        throw new BadUserInputError('size', 'size is a whole number of bytes.');
      if (input.size > deps.maxFileSize) throw new PayloadTooLargeError(deps.maxFileSize);
      await deps.assetService.checkQuota(tenant.orgId, input.size);
    }
    const checksum = input.checksum?.toLowerCase() ?? null;
    if (checksum !== null && !CHECKSUM.test(checksum)) {
      throw new BadUserInputError('checksum', 'checksum is "sha256:" followed by 64 hex digits.');
    }
    const now = deps.clock();
    const expires = Math.floor(now / 1000) + deps.ttl;
    const expiresAt = new Date(expires * 1000).toISOString();
    const asset = await deps.assetService.insertNew(tenant, checked, input.isPublic, {
      type: 'OTHER',
      status: 'WAITING',
      declared_size: input.size ?? null,
      declared_checksum: checksum,
      upload_expires_at: expiresAt,
    });
    const token = deps.signer.sign({
      method: 'PUT',
      assetId: asset.id,
      version: asset.url_version,
      expires,
      keyId: principal.keyId,
    });
    return { asset, uploadUrl: `${deps.publicUrl}/up/${token}`, expiresAt };
  }

  /**
   * Takes the bytes of a signed PUT. The URL is good for one successful upload:
   * a second is CONFLICT. A failed one (limit, declared size or checksum, a
   * client that vanished) stores nothing and leaves the asset WAITING for a retry.
   */
  async receive(token: string, body: Readable): Promise<AssetRow> {
    const { deps } = this;
    let claims: UrlClaims;
    try {
      claims = deps.signer.verify(token, 'PUT');
    } catch (error) {
      if (error instanceof SignatureError) throw new ForbiddenError('This upload link is invalid or has expired.');
      throw error;
    }
    const release = await deps.slots.acquire(claims.keyId);
    try {
      return await this.#receive(claims, body);
    } finally {
      release();
    }
  }

  async #receive(claims: UrlClaims, body: Readable): Promise<AssetRow> {
    const { deps } = this;
    const now = nowIso(deps.clock);
    const claimed = await deps.assets.claimUpload(claims.assetId, claims.version, now);
    if (!claimed) {
      const current = await deps.assets.findById(claims.assetId);
      if (!current || current.url_version !== claims.version) throw new NotFoundError();
      if (current.status !== 'WAITING') throw new ConflictError('This upload link has been used already.');
      throw new ForbiddenError('This upload link is invalid or has expired.');
    }
    let stored: AssetRow | undefined;
    try {
      stored = await deps.assetService.storeBytes(
        claimed.org_id,
        body,
        {
          blobKey: createBlobKey(randomUUID()),
          maxBytes: deps.maxFileSize,
          expectedSize: claimed.declared_size,
          expectedChecksum: claimed.declared_checksum,
          filename: claimed.filename,
        },
        (file, alongside) =>
          deps.assets.updateIfStatus(
            claimed.id,
            'PROCESSING',
            { ...file, upload_expires_at: null, updated_at: nowIso(deps.clock) },
            alongside,
          ),
      );
    } catch (error) {
      // Nothing was stored: the link stays good for another try.
      await deps.assets.updateIfStatus(claimed.id, 'PROCESSING', { status: 'WAITING', updated_at: nowIso(deps.clock) });
      throw error;
    }
    if (!stored) throw new NotFoundError(); // deleted (or swept) while the bytes were arriving
    return stored;
  }
}
