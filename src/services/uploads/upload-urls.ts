import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Principal } from '../../auth/principal.js';
import { tenantOf } from '../../auth/principal.js';
import { type ReplaceClaims, SignatureError, type UrlClaims, type UrlSigner } from '../../auth/url-signer.js';
import { type BlobStore, createBlobKey } from '../../blob/index.js';
import type { UnitOfWork } from '../../db/repositories.js';
import type { AssetAccess } from '../assets/asset-access.js';
import { nowIso } from '../../db/database.js';
import type { Updateable } from 'kysely';
import type { AssetRow, AssetsTable, JobRow } from '../../db/types.js';
import {
  AppError,
  BadUserInputError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
} from '../../errors.js';
import type { AssetFields } from '../assets/asset-fields.js';
import type { AssetService } from '../assets/asset-service.js';
import type { KnownBytes } from './ingest.js';
import type { JobQueue } from '../../jobs/job-queue.js';
import type { UploadSlots } from '../../adapters/upload-slots.js';

const CHECKSUM = /^sha256:[0-9a-f]{64}$/;
/** How soon the job of a direct upload first looks for its bytes in the store. */
const DIRECT_POLL_MS = 1000;

/**
 * When to look again: every second at first, then a tenth of the time the upload has
 * waited, at most every 30 s, so a thousand idle upload URLs do not cost a thousand
 * store requests a second.
 */
function nextLook(asset: AssetRow, now: number): { retryAt: number } {
  const waited = now - Date.parse(asset.created_at);
  return { retryAt: now + Math.min(30_000, Math.max(DIRECT_POLL_MS, waited / 10)) };
}

export interface UploadUrlServiceDeps {
  repos: UnitOfWork;
  access: AssetAccess;
  assetService: AssetService;
  blobs: BlobStore;
  signer: UrlSigner;
  queue: JobQueue;
  slots: UploadSlots;
  publicUrl: string;
  maxFileSize: number;
  /** Lifetime of an upload URL, seconds. */
  ttl: number;
  /** Seconds the sweep waits past an upload's expiry; an upload under way beats more often than that. */
  sweepGrace: number;
  /** Where a failed heartbeat is reported (the upload goes on). */
  logError: (error: unknown) => void;
  /**
   * Hand out the store's own upload URL (a presigned PUT) where it has one: the bytes
   * skip the gateway, which checks them once they are in (S3_DIRECT=upload|both).
   */
  direct: boolean;
  clock: () => number;
}

export interface UploadUrlInput extends AssetFields {
  filename: string;
  /** The client's claim; informational only: the type is judged from the bytes. */
  contentType?: string | null;
  size?: number | null;
  checksum?: string | null;
  /** With `checksum`: when the tenant already stores those bytes, make the asset on them at once. */
  reuseStored?: boolean | null;
}

/** What a replace URL is made for: the asset and what its PUT will carry. */
export interface ReplaceUrlInput {
  id: string;
  filename?: string | null;
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
  ): Promise<{ asset: AssetRow; uploadUrl: string | null; expiresAt: string | null }> {
    const { deps } = this;
    const tenant = tenantOf(principal);
    const checked = await deps.assetService.checkFields(tenant, input);
    const checksum = await this.#checkDeclared(tenant.orgId, input);
    if (input.reuseStored) {
      if (checksum === null) throw new BadUserInputError('checksum', 'reuseStored needs the checksum of the bytes.');
      // Whether the org holds some bytes is for keys that may read what it holds.
      if (!principal.scopes.has('read:assets')) throw new ForbiddenError('reuseStored needs the read:assets scope.');
      const asset = await deps.assetService.createOnStored(tenant, {
        fields: checked,
        isPublic: input.isPublic,
        checksum,
        size: input.size,
      });
      if (asset) return { asset, uploadUrl: null, expiresAt: null };
    }
    const now = deps.clock();
    const expires = Math.floor(now / 1000) + deps.ttl;
    const expiresAt = new Date(expires * 1000).toISOString();
    const direct = deps.direct && deps.blobs.presignPut !== undefined;
    const asset = await deps.repos.transaction(async (tx) => {
      const inserted = await deps.assetService.insertNew(tx, tenant, {
        fields: checked,
        isPublic: input.isPublic,
        type: 'OTHER',
        status: 'WAITING',
        declared_size: input.size ?? null,
        declared_checksum: checksum,
        upload_expires_at: expiresAt,
      });
      // A direct upload is watched for by a job: the store does not tell the gateway.
      if (direct) await deps.queue.enqueue(tx, { kind: 'direct-upload', asset: inserted, delayMs: DIRECT_POLL_MS });
      return inserted;
    });
    if (direct) {
      const uploadUrl = await deps.blobs.presignPut!(createBlobKey(asset.id), { expiresIn: deps.ttl });
      return { asset, uploadUrl, expiresAt };
    }
    return { asset, uploadUrl: this.#url(asset, { keyId: principal.keyId, expires }), expiresAt };
  }

  /** The gateway's signed PUT URL for `asset`, granted by key `keyId` until `expires`; a replace URL with `replace`. */
  #url(asset: AssetRow, grant: Pick<UrlClaims, 'keyId' | 'expires' | 'replace'>): string {
    const { keyId, expires, replace } = grant;
    const token = this.deps.signer.sign({
      method: 'PUT',
      assetId: asset.id,
      version: asset.url_version,
      expires,
      keyId,
      ...(replace && { replace }),
    });
    return `${this.deps.publicUrl}/up/${token}`;
  }

  /** The declared size (a whole number, within the limits and the quota) and checksum, normalised. */
  async #checkDeclared(
    orgId: string,
    input: { size?: number | null; checksum?: string | null },
  ): Promise<string | null> {
    const { deps } = this;
    if (input.size != null) {
      if (!Number.isInteger(input.size) || input.size < 0)
        throw new BadUserInputError('size', 'size is a whole number of bytes.');
      if (input.size > deps.maxFileSize) throw new PayloadTooLargeError(deps.maxFileSize);
      await deps.assetService.checkQuota(orgId, input.size);
    }
    const checksum = input.checksum?.toLowerCase() ?? null;
    if (checksum !== null && !CHECKSUM.test(checksum)) {
      throw new BadUserInputError('checksum', 'checksum is "sha256:" followed by 64 hex digits.');
    }
    return checksum;
  }

  /**
   * A URL whose PUT replaces the bytes of a stored asset, as `replaceAssetFile` does: good
   * for one replacement of the version it was made for, until it expires or the key
   * that asked for it loses write:assets.
   */
  async createReplace(
    principal: Principal,
    input: ReplaceUrlInput,
  ): Promise<{ asset: AssetRow; uploadUrl: string; expiresAt: string }> {
    const { deps } = this;
    const tenant = tenantOf(principal);
    const asset = await deps.assetService.replaceable(tenant, input.id);
    const checksum = await this.#checkDeclared(tenant.orgId, input);
    const expires = Math.floor(deps.clock() / 1000) + deps.ttl;
    const uploadUrl = this.#url(asset, {
      keyId: principal.keyId,
      expires,
      replace: { version: asset.version, size: input.size ?? null, checksum, filename: input.filename ?? null },
    });
    return { asset, uploadUrl, expiresAt: new Date(expires * 1000).toISOString() };
  }

  /**
   * Takes the bytes of a signed PUT. The URL is good for one successful upload:
   * a second is CONFLICT. A failed one (limit, declared size or checksum, a
   * client that vanished) stores nothing and leaves the asset WAITING for a retry.
   */
  async receive(token: string, body: Readable, granted?: (keyId: string) => void): Promise<AssetRow> {
    const grant = await this.#verify(token);
    const { claims } = grant;
    granted?.(claims.keyId);
    const release = await this.deps.slots.acquire(claims.keyId);
    try {
      return claims.replace ? await this.#replace(grant, claims.replace, body) : await this.#receive(claims, body);
    } finally {
      release();
    }
  }

  /** The PUT of a replace URL: NOT_FOUND once the asset is gone or its URLs died, CONFLICT once the URL was used. */
  async #replace({ claims, grantor }: Grant, replace: ReplaceClaims, body: Readable): Promise<AssetRow> {
    const [current] = await this.deps.repos.assets.findByIds(tenantOf(grantor), [claims.assetId]);
    if (!current) throw new NotFoundError();
    if (current.version === replace.version && current.url_version !== claims.version) throw new NotFoundError();
    return this.deps.assetService.replaceFile(tenantOf(grantor), current.id, {
      stream: body,
      filename: replace.filename,
      expectedSize: replace.size,
      expectedChecksum: replace.checksum,
      version: replace.version,
    });
  }

  /**
   * The asset a signed upload URL fills, for a resumable (tus) request on it, and the key
   * that granted it (whose upload slots the request takes): NOT_FOUND once the asset is
   * gone or its URL was superseded, CONFLICT once it has its bytes.
   */
  async grantOf(token: string): Promise<{ asset: AssetRow; keyId: string }> {
    const { claims } = await this.#verify(token);
    if (claims.replace) throw new BadUserInputError('uploadUrl', 'A replace link takes its bytes in one PUT.');
    const asset = await this.deps.repos.assets.findByIdAnyTenant(claims.assetId);
    if (!asset || asset.url_version !== claims.version) throw new NotFoundError();
    if (asset.status !== 'WAITING') throw new ConflictError('This upload link has been used already.');
    return { asset, keyId: claims.keyId };
  }

  /** The claims of a good upload URL and the key that made it, which may still write; FORBIDDEN otherwise. */
  async #verify(token: string): Promise<Grant> {
    let claims: UrlClaims;
    try {
      claims = this.deps.signer.verify(token, 'PUT');
    } catch (error) {
      if (error instanceof SignatureError) throw new ForbiddenError('This upload link is invalid or has expired.');
      throw error;
    }
    // The URL is the grant of the key that asked for it, and lives no longer than that key's right to write.
    const grantor = await this.deps.access.principalOfKey(claims.keyId);
    if (!grantor?.scopes.has('write:assets')) throw new ForbiddenError('This upload link is invalid or has expired.');
    return { claims, grantor };
  }

  /**
   * The job of a direct upload: once the bytes are in the store under the asset's key,
   * checks them as the gateway checks a PUT it receives (size, checksum, media type,
   * quota), then records the asset PROCESSING with extraction queued. Bytes that fail
   * the checks are deleted and the asset waits for another try, with the reason in
   * `failureReason`; no bytes by the URL's expiry leave the asset to the sweep.
   */
  async finishDirect(job: JobRow): Promise<void | { retryAt: number }> {
    const { deps } = this;
    const asset = await deps.repos.assets.findByIdAnyTenant(job.asset_id);
    if (!asset || asset.status !== 'WAITING' || asset.blob_key) return;
    const key = createBlobKey(asset.id);
    const now = deps.clock();
    if (!(await deps.blobs.head(key))) {
      const expired = asset.upload_expires_at !== null && Date.parse(asset.upload_expires_at) <= now;
      return expired ? undefined : nextLook(asset, now);
    }
    const claimed = await deps.repos.assets.claimUploadAnyTenant(asset.id, {
      version: asset.url_version,
      now: nowIso(deps.clock),
    });
    if (!claimed) {
      await deps.blobs.delete(key); // arrived after the URL expired
      return;
    }
    const waitAgain = (reason: string | null) =>
      deps.repos.assets.updateIfStatusAnyTenant(claimed.id, 'PROCESSING', {
        status: 'WAITING',
        failure_reason: reason,
        updated_at: nowIso(deps.clock),
      });
    const body = await deps.blobs.get(key);
    if (!body) {
      await waitAgain(null); // gone between the look and the read: look again
      return nextLook(asset, now);
    }
    try {
      await this.#store(claimed, body, { adopt: { key } });
      return;
    } catch (error) {
      const refused = error instanceof AppError;
      // Refused bytes go, whichever check refused them (a size limit trips before they are all
      // read), and before the asset waits again: a retry PUT must not be deleted with them.
      if (refused) await deps.blobs.delete(key);
      await waitAgain(refused ? error.message : 'The upload could not be stored.');
      if (!refused) throw error;
      return nextLook(asset, deps.clock()); // the URL may be tried again
    }
  }

  /**
   * Stores under a new key (or, with `adopt`, checks in place) the bytes of a claimed upload
   * against what it declared, and records the asset PROCESSING; undefined when it went away
   * meanwhile.
   */
  #store(claimed: AssetRow, body: Readable, options: StoreClaimedOptions): Promise<AssetRow | undefined> {
    const { deps } = this;
    return deps.assetService.storeBytes(
      {
        orgId: claimed.org_id,
        stream: body,
        blobKey: options.adopt?.key ?? createBlobKey(randomUUID()),
        adopt: options.adopt !== undefined,
        held: options.held,
        known: options.adopt?.known,
        maxBytes: deps.maxFileSize,
        expectedSize: claimed.declared_size,
        expectedChecksum: claimed.declared_checksum,
        filename: claimed.filename,
      },
      (tx, file) =>
        tx.assets.updateIfStatusAnyTenant(claimed.id, 'PROCESSING', {
          ...file,
          ...options.stored,
          failure_reason: null,
          upload_expires_at: null,
          updated_at: nowIso(deps.clock),
        }),
    );
  }

  async #receive(claims: UrlClaims, body: Readable): Promise<AssetRow> {
    const { deps } = this;
    const now = nowIso(deps.clock);
    const claimed = await deps.repos.assets.claimUploadAnyTenant(claims.assetId, {
      version: claims.version,
      now,
      whole: true,
    });
    if (!claimed) {
      const current = await deps.repos.assets.findByIdAnyTenant(claims.assetId);
      if (!current || current.url_version !== claims.version) throw new NotFoundError();
      if (current.status !== 'WAITING') throw new ConflictError('This upload link has been used already.');
      if (current.received_bytes) {
        throw new ConflictError('This upload is under way in parts: resume it with tus HEAD and PATCH.');
      }
      throw new ForbiddenError('This upload link is invalid or has expired.');
    }
    return this.storeClaimed(claimed, body);
  }

  /**
   * Stores the bytes of an upload claimed for storing (PROCESSING) under a new key, with a
   * heartbeat that keeps the sweep away however long they take. On failure nothing is
   * stored and the asset waits again (with `options.failed` applied), so its URL can be
   * tried again; NOT_FOUND when it was deleted (or swept) while the bytes arrived.
   */
  async storeClaimed(claimed: AssetRow, body: Readable, options: StoreClaimedOptions = {}): Promise<AssetRow> {
    const { deps } = this;
    let stored: AssetRow | undefined;
    const heartbeat = setInterval(
      () => void deps.repos.assets.touchUploadAnyTenant(claimed.id, nowIso(deps.clock)).catch(deps.logError),
      Math.max(100, (deps.sweepGrace * 1000) / 4),
    );
    try {
      stored = await this.#store(claimed, body, options);
    } catch (error) {
      await deps.repos.assets.updateIfStatusAnyTenant(claimed.id, 'PROCESSING', {
        status: 'WAITING',
        ...options.failed?.(error),
        updated_at: nowIso(deps.clock),
      });
      throw error;
    } finally {
      clearInterval(heartbeat);
    }
    if (!stored) throw new NotFoundError();
    return stored;
  }
}

/** A verified upload URL's claims, and the key that granted it (which may still write). */
interface Grant {
  claims: UrlClaims;
  grantor: Principal;
}

/** How `storeClaimed` records a resumable upload's end. */
export interface StoreClaimedOptions {
  /** Quota bytes the upload already holds; they join the store's reservation. */
  held?: number;
  /** The bytes are in the store already under `key` (checked there, not copied); `known` spares reading them. */
  adopt?: { key: string; known?: KnownBytes };
  /** Columns set with the stored bytes. */
  stored?: Updateable<AssetsTable>;
  /** Columns set when the asset waits again after `error`. */
  failed?: (error: unknown) => Updateable<AssetsTable>;
}
