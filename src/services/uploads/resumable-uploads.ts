import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Principal } from '../../auth/principal.js';
import { tenantOf } from '../../auth/principal.js';
import { type BlobStore, createBlobKey } from '../../blob/index.js';
import type { UnitOfWork } from '../../db/repositories.js';
import { nowIso } from '../../db/database.js';
import type { AssetRow, UploadPartRow } from '../../db/types.js';
import {
  AppError,
  BadUserInputError,
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from '../../errors.js';
import { decodeGlobalId, idOfType } from '../../global-id.js';
import { mayUseUpload, type UploadVerb } from '../assets/asset-access.js';
import type { AssetService } from '../assets/asset-service.js';
import type { MediaPolicy } from '../assets/media-policy.js';
import { ByteMeter, type KnownBytes, PREFIX_BYTES } from './ingest.js';
import type { QuotaService } from './quota.js';
import type { UploadUrlService } from './upload-urls.js';

export interface ResumableUploadDeps {
  repos: UnitOfWork;
  assetService: AssetService;
  uploadUrls: UploadUrlService;
  quota: QuotaService;
  blobs: BlobStore;
  /** Refuses media types the deployment does not take: a first chunk holding the whole head is judged as it arrives. */
  accept?: MediaPolicy;
  maxFileSize: number;
  /** Seconds an upload nobody touches stays resumable. */
  ttl: number;
  clock: () => number;
}

/** Where a resumable upload stands, as the tus protocol tells it. */
export interface UploadState {
  id: string;
  offset: number;
  length: number;
  createdAt: string;
  /** Until when it can be resumed; null once complete. */
  expiresAt: string | null;
  expired: boolean;
  complete: boolean;
}

/** The tus `Upload-Metadata` a creation may carry, decoded. */
export type UploadMetadata = Record<string, string | null | undefined>;

/** The SHA-256, size and first bytes of an upload's bytes so far. */
class RunningDigest {
  hash = createHash('sha256');
  bytes = 0;
  #head: Buffer[] = [];
  #headBytes = 0;

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.#headBytes < PREFIX_BYTES) {
      const part = Buffer.from(chunk.subarray(0, PREFIX_BYTES - this.#headBytes));
      this.#head.push(part);
      this.#headBytes += part.length;
    }
  }

  /** A copy to go on with: a chunk that fails leaves this one as it was. */
  fork(): RunningDigest {
    const copy = new RunningDigest();
    copy.hash = this.hash.copy();
    copy.bytes = this.bytes;
    copy.#head = [...this.#head];
    copy.#headBytes = this.#headBytes;
    return copy;
  }

  result(): KnownBytes {
    return { size: this.bytes, checksum: `sha256:${this.hash.digest('hex')}`, head: Buffer.concat(this.#head) };
  }
}

/**
 * Digests of uploads growing in place whose every chunk came through this process, in
 * order, so finishing one need not read it again. Lost on a restart or when a chunk went
 * to another gateway: the upload is then read once at the end. Bounded: the oldest go.
 */
class RunningDigests {
  static readonly MAX = 256;
  readonly #entries = new Map<string, RunningDigest>();

  /** What to feed a chunk at `offset` with: a fresh digest at 0, a copy of the running one if it stands there. */
  resume(id: string, offset: number): RunningDigest | undefined {
    if (offset === 0) return new RunningDigest();
    const entry = this.#entries.get(id);
    return entry?.bytes === offset ? entry.fork() : undefined;
  }

  keep(id: string, digest: RunningDigest): void {
    this.#entries.delete(id);
    this.#entries.set(id, digest);
    if (this.#entries.size > RunningDigests.MAX) this.#entries.delete(this.#entries.keys().next().value!);
  }

  take(id: string): RunningDigest | undefined {
    const entry = this.#entries.get(id);
    this.#entries.delete(id);
    return entry;
  }
}

function booleanOf(value: string | null | undefined, field: string): boolean | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new BadUserInputError(field, `${field} is "true" or "false".`);
}

/**
 * Resumable uploads (tus 1.0): an asset WAITING for a known number of bytes, which
 * arrive in chunks, each stored as a part blob and acknowledged only once stored and
 * recorded, so an acknowledged byte survives a crash of the gateway and can be resumed
 * from any gateway. Quota is reserved as bytes arrive and held by the asset's row. When
 * the last byte is in, the parts are streamed, in order, into one blob through the same
 * checks as every other upload (sniffed type, checksum, size, media policy) and the
 * parts go.
 */
export class ResumableUploadService {
  readonly #digests = new RunningDigests();

  constructor(private readonly deps: ResumableUploadDeps) {}

  #now(): string {
    return nowIso(this.deps.clock);
  }

  #expiry(): string {
    return new Date(this.deps.clock() + this.deps.ttl * 1000).toISOString();
  }

  /**
   * A new upload of `length` bytes (tus creation) as a WAITING asset with id `id`: the
   * metadata names the file and may set `title`, `tags` (comma-separated), `directoryId`
   * and `isPublic`. Refused before any byte: too large (413), over the quota (507).
   */
  async create(
    principal: Principal,
    { id, length, metadata }: { id: string; length: number; metadata: UploadMetadata },
  ): Promise<AssetRow> {
    const { deps } = this;
    const tenant = tenantOf(principal);
    if (!Number.isSafeInteger(length) || length < 0)
      throw new BadUserInputError('Upload-Length', 'Upload-Length is a number of bytes.');
    if (length > deps.maxFileSize) throw new PayloadTooLargeError(deps.maxFileSize);
    const filename = metadata.filename;
    if (!filename) throw new BadUserInputError('filename', 'Upload-Metadata must name the file (filename).');
    const directoryId = metadata.directoryId ? idOfType(decodeGlobalId(metadata.directoryId), 'Directory') : null;
    const checked = await deps.assetService.checkFields(tenant, {
      filename,
      title: metadata.title || null,
      description: metadata.description || null,
      tags: metadata.tags ? metadata.tags.split(',') : null,
      directoryId,
    });
    const isPublic = booleanOf(metadata.isPublic, 'isPublic');
    await deps.assetService.checkQuota(tenant.orgId, length);
    return deps.assetService.insertNew(deps.repos, tenant, {
      fields: checked,
      isPublic,
      id,
      type: 'OTHER',
      status: 'WAITING',
      declared_size: length,
      received_bytes: 0,
      upload_expires_at: this.#expiry(),
    });
  }

  /**
   * Lets a signed upload URL's asset take its bytes in parts from now on (its first tus
   * request). Only an asset that declared its size can: tus needs the length up front.
   */
  async startFromUrl(asset: AssetRow): Promise<void> {
    if (asset.declared_size === null) {
      throw new BadUserInputError('size', 'Only an upload URL made with a declared size can be resumed.');
    }
    if (asset.received_bytes !== null) return;
    await this.deps.repos.assets.updateIfStatusAnyTenant(asset.id, 'WAITING', { received_bytes: 0 });
  }

  /**
   * Resumable upload `id` as `actor` may `verb` it (the access rule, `mayUseUpload`);
   * NOT_FOUND for anything else: unknown, another org's or mode's, or, to end it, finished.
   */
  async find(actor: Principal, id: string, verb: UploadVerb): Promise<AssetRow> {
    const [asset] = /^[0-9a-f-]{36}$/.test(id) ? await this.deps.repos.assets.findByIds(tenantOf(actor), [id]) : [];
    if (!asset || !mayUseUpload(actor, asset, verb)) throw new NotFoundError('Upload');
    return asset;
  }

  /** Where upload `id` stands; null when there is no such resumable upload. */
  async state(id: string): Promise<UploadState | null> {
    const asset = await this.deps.repos.assets.findByIdAnyTenant(id);
    if (!asset || asset.received_bytes === null || asset.declared_size === null) return null;
    const complete = asset.status !== 'WAITING';
    const expired =
      !complete && asset.upload_expires_at !== null && Date.parse(asset.upload_expires_at) <= this.deps.clock();
    return {
      id,
      offset: complete ? asset.declared_size : asset.received_bytes,
      length: asset.declared_size,
      createdAt: asset.created_at,
      expiresAt: complete ? null : asset.upload_expires_at,
      expired,
      complete,
    };
  }

  /**
   * Appends the chunk `body` at `offset` and returns the new offset. A store that can
   * grow a blob in place (`writeAt`, the filesystem) keeps the whole upload in one blob;
   * another stores each chunk as a part blob. Either way the chunk is recorded only if
   * the upload still stands at `offset`: a chunk that lost a race (another gateway, a
   * delete, the expiry) is answered CONFLICT. The quota grows with the bytes as they
   * pass; a failure gives back what this chunk took.
   */
  async append(id: string, offset: number, body: Readable): Promise<number> {
    const { deps } = this;
    const asset = await deps.repos.assets.findByIdAnyTenant(id);
    if (!asset || asset.received_bytes === null || asset.declared_size === null) throw new NotFoundError('Upload');
    if (asset.status !== 'WAITING' || asset.received_bytes !== offset) {
      throw new ConflictError(`The upload is at offset ${asset.received_bytes}, not ${offset}.`);
    }
    const inPlace = deps.blobs.writeAt !== undefined;
    const key = inPlace ? createBlobKey(id, 'upload') : createBlobKey(randomUUID());
    const digest = inPlace ? this.#digests.resume(id, offset) : undefined;
    const reservation = deps.quota.open(asset.org_id);
    const meter = new ByteMeter({
      maxBytes: asset.declared_size - offset,
      reservation,
      observe: digest && ((chunk) => digest.update(chunk)),
      // A first chunk that holds the whole head is judged on the way in; a head split over chunks is judged at the end.
      screen:
        offset === 0 && deps.accept
          ? { accept: deps.accept, filename: asset.filename, whole: asset.declared_size }
          : undefined,
    });
    // The media type can be refused when the chunk ends, after the store stopped listening for errors: the
    // store's write still rejects with it (or the row check below fails the chunk), never an unhandled 'error' event.
    meter.on('error', () => undefined);
    let stored = false;
    try {
      // A chunk cut short (the client went away) keeps what arrived: the client resumes from there.
      body.on('error', () => meter.end());
      let size: number;
      if (inPlace) size = (await deps.blobs.writeAt!(key, offset, body.pipe(meter))).size - offset;
      else {
        await deps.blobs.put(key, body.pipe(meter));
        stored = true;
        size = meter.bytes;
      }
      // The row holds exactly the chunk's bytes (none without a quota); what the reservation's steps took beyond goes back.
      const held = reservation.handOver();
      const kept = Math.min(held, size);
      let recorded;
      try {
        recorded = await deps.repos.uploadParts.append(
          { assetId: id, offset, size, blobKey: key, reserved: kept },
          this.#expiry(),
          this.#now(),
        );
      } finally {
        // What no part holds goes back, the part written or not (a busy database fails the chunk).
        await deps.quota.orgs.release(asset.org_id, recorded ? held - kept : held);
      }
      if (!recorded) throw new ConflictError('The upload changed meanwhile (another request, an expiry or a delete).');
      for (const stale of recorded.stale) if (stale !== key) await deps.blobs.delete(stale);
      if (!inPlace && size === 0) await deps.blobs.delete(key);
      if (digest?.bytes === offset + size) this.#digests.keep(id, digest);
      return offset + size;
    } catch (error) {
      // A part of its own goes; bytes grown in place stay (those before `offset` were acknowledged), a refused head's too.
      if (stored || (inPlace && offset === 0)) await deps.blobs.delete(key);
      await reservation.release();
      // Refused by its head as it arrived: the upload waits to be sent again, with the reason, as one refused at the end does.
      if (error instanceof UnsupportedMediaTypeError) {
        await deps.repos.assets.updateIfStatusAnyTenant(id, 'WAITING', {
          failure_reason: error.message,
          updated_at: this.#now(),
        });
      }
      throw error;
    }
  }

  /**
   * Turns a complete upload into its asset: its bytes become one blob through the checks
   * every upload passes (kept where they are when they grew in place, hashed already when
   * every chunk came through this process; otherwise the parts, streamed in order, are
   * copied); the asset goes PROCESSING (extraction queued, `assetUpdated` fired) and the
   * parts go. A refused file (type, declared checksum) leaves the upload empty and
   * WAITING, to be sent again. Finishing twice answers the asset.
   */
  async finish(id: string): Promise<AssetRow> {
    const { deps } = this;
    const asset = await deps.repos.assets.findByIdAnyTenant(id);
    if (!asset || asset.received_bytes === null || asset.declared_size === null) throw new NotFoundError('Upload');
    // The claim takes over the quota the parts hold: from here this request gives it back or settles it.
    const claimed = await deps.repos.assets.claimUploadAnyTenant(asset.id, {
      version: asset.url_version,
      now: this.#now(),
      takeReserved: asset.upload_reserved,
    });
    if (!claimed) {
      if (asset.status !== 'WAITING') return asset; // finished already (a repeated last PATCH)
      throw new ConflictError('This upload expired or changed meanwhile.');
    }
    const parts = await deps.repos.uploadParts.list(id);
    const grown = parts.length > 0 && parts.every((part) => part.blob_key === parts[0].blob_key);
    const digest = this.#digests.take(id);
    const known = grown && digest?.bytes === asset.declared_size ? digest.result() : undefined;
    let body: Readable;
    if (!grown) body = Readable.from(this.#concat(parts));
    else body = known ? Readable.from([]) : ((await deps.blobs.get(parts[0].blob_key)) ?? Readable.from([]));
    let stored: AssetRow | undefined;
    try {
      stored = await deps.uploadUrls.storeClaimed(claimed, body, {
        held: asset.upload_reserved,
        ...(grown && { adopt: { key: parts[0].blob_key, known } }),
        stored: { received_bytes: claimed.declared_size, upload_reserved: 0 },
        failed: (error) => ({
          received_bytes: 0,
          upload_reserved: 0,
          upload_expires_at: this.#expiry(),
          failure_reason: error instanceof AppError ? error.message : 'The upload could not be stored.',
        }),
      });
      return stored;
    } finally {
      // Stored or refused, the parts have served: their bytes are the blob now, or must be sent again.
      for (const key of await deps.repos.uploadParts.deleteAll(id))
        if (key !== stored?.blob_key) await deps.blobs.delete(key);
    }
  }

  async *#concat(parts: UploadPartRow[]): AsyncGenerator<Buffer> {
    let expected = 0;
    for (const part of parts) {
      if (part.offset !== expected) throw new Error(`upload part at ${part.offset}, expected ${expected}`);
      const stream = await this.deps.blobs.get(part.blob_key);
      if (!stream) throw new Error(`upload part ${part.blob_key} is missing from the store`);
      for await (const chunk of stream) yield chunk as Buffer;
      expected += part.size;
    }
  }

  /**
   * Ends an upload still in progress (tus termination): the asset, its parts and the
   * quota they held go. One that finished meanwhile is an asset now: NOT_FOUND, it stays.
   */
  async terminate(actor: Principal, id: string): Promise<void> {
    const upload = await this.find(actor, id, 'terminate');
    // An unfinished upload has nothing to restore: it goes for good, parts and all.
    await this.deps.assetService.delete(tenantOf(actor), upload.id, { permanently: true, onlyWaiting: true });
  }
}
