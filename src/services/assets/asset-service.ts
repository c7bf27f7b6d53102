import { randomUUID } from 'node:crypto';
import type { Insertable } from 'kysely';
import type { Readable } from 'node:stream';
import { type BlobStore, createBlobKey } from '../../blob/index.js';
import { nowIso } from '../../db/database.js';
import type { Repositories, UnitOfWork } from '../../db/repositories.js';
import type { AssetEventType, AssetRow, AssetsTable, Tenant } from '../../db/types.js';
import { BadUserInputError, ConflictError, NotFoundError } from '../../errors.js';
import type { JobQueue } from '../../jobs/job-queue.js';
import type { AssetEvents } from './asset-events.js';
import { derivedKeysOf } from './asset-metadata.js';
import { forgetDeleted } from './forget-deleted.js';
import type {
  AssetFields,
  AssetUpdate,
  CheckedFields,
  ExternalInput,
  FileInput,
  NewAsset,
  StoredFile,
} from './asset-fields.js';
import { patchOf } from './asset-fields.js';
import { embedUrlFor, parseHttpUrl } from './embed.js';
import { adopting, headOf, type IngestOptions, type KnownBytes, ingest, judge } from '../uploads/ingest.js';
import type { MediaPolicy } from './media-policy.js';
import type { QuotaService, Reservation } from '../uploads/quota.js';
import {
  normalizeTags,
  sanitizeFilename,
  slugify,
  titleFromFilename,
  validateDescription,
  validateTitle,
} from './naming.js';

export interface AssetServiceDeps {
  repos: UnitOfWork;
  blobs: BlobStore;
  queue: JobQueue;
  events: AssetEvents;
  quota: QuotaService;
  accept: MediaPolicy;
  maxFileSize: number;
  /** Seconds a deleted asset stays in the trash; 0: a delete is final at once. */
  trashRetention: number;
  clock?: () => number;
}

/** The asset use cases, free of GraphQL and HTTP. */
export class AssetService {
  constructor(private readonly deps: AssetServiceDeps) {}

  #now(): string {
    return nowIso(this.deps.clock);
  }

  /**
   * Validates what a client sets on a new asset: title (from the filename when
   * absent), description, tags and folder. Runs before any byte is read.
   */
  async checkFields(tenant: Tenant, input: AssetFields & { filename?: string | null }): Promise<CheckedFields> {
    const filename = input.filename === undefined ? null : sanitizeFilename(input.filename);
    return {
      filename,
      title: validateTitle(input.title ?? titleFromFilename(filename ?? '')),
      description: validateDescription(input.description),
      tags: normalizeTags(input.tags),
      directoryId: await this.checkDirectory(tenant, input.directoryId),
    };
  }

  /** Inserts a new asset with `tx` (the repositories, or a transaction's when more is written with it). */
  insertNew(tx: Repositories, tenant: Tenant, { fields, isPublic, ...rest }: NewAsset): Promise<AssetRow> {
    const now = this.#now();
    return tx.assets.insert(
      {
        id: randomUUID(),
        org_id: tenant.orgId,
        mode: tenant.mode,
        title: fields.title,
        slug: slugify(fields.title),
        description: fields.description,
        filename: fields.filename,
        directory_id: fields.directoryId,
        is_public: isPublic ? 1 : 0,
        created_at: now,
        updated_at: now,
        ...rest,
      },
      fields.tags,
    );
  }

  /** The folder's id when it exists in the tenant; NOT_FOUND otherwise. */
  async checkDirectory(tenant: Tenant, directoryId: string | null | undefined): Promise<string | null> {
    if (!directoryId) return null;
    const [directory] = await this.deps.repos.directories.findByIds(tenant, [directoryId]);
    if (!directory) throw new NotFoundError('Directory');
    return directory.id;
  }

  /**
   * Streams a file into the store and records it, PROCESSING, with its extraction
   * job queued in the same transaction. Validation happens before the first byte is
   * read; a failure at any step leaves neither blob nor row.
   */
  async upload(tenant: Tenant, input: FileInput): Promise<AssetRow> {
    const checked = await this.checkFields(tenant, input);
    const id = randomUUID();
    const asset = await this.storeBytes(
      {
        orgId: tenant.orgId,
        stream: input.stream,
        blobKey: createBlobKey(id),
        maxBytes: this.deps.maxFileSize,
        filename: checked.filename,
      },
      (tx, file) =>
        this.insertNew(tx, tenant, { fields: checked, isPublic: input.isPublic, id, status: 'PROCESSING', ...file }),
    );
    return asset!;
  }

  /**
   * The one way bytes enter the store: `stream`, streamed under the org's quota and the
   * media-type rules, then recorded by `record` in a transaction that also settles the
   * quota (the org's row), counts the asset as a holder of its org's copy of these bytes
   * (the copy's row: after the org's, as deletes take them), queues extraction and, with
   * `replaces`, lets go of the old bytes. Bytes the org already stores are not kept twice:
   * the asset points at the existing copy and the new blob is deleted. Any failure, or
   * `record` finding nothing to record (the asset went away), leaves no blob and no
   * reservation behind.
   */
  async storeBytes(
    options: Omit<IngestOptions, 'reservation' | 'accept' | 'known'> & {
      orgId: string;
      stream: Readable;
      blobKey: string;
      /** The bytes are already in the store under `blobKey` (a direct upload): check them, store nothing. */
      adopt?: boolean;
      /** Bytes of the org's quota already reserved for these bytes (a resumable upload's parts). */
      held?: number;
      /** With `adopt`: what is known of the bytes already, so they need not be read again. */
      known?: KnownBytes;
      /** The lifecycle event the stored bytes make. @default 'asset.created' */
      event?: AssetEventType;
      /** The asset as it was before these bytes replace its own: they are let go once the new ones are counted. */
      replaces?: AssetRow;
    },
    record: (tx: Repositories, file: StoredFile) => Promise<AssetRow | undefined>,
  ): Promise<AssetRow | undefined> {
    const { orgId, stream, blobKey, adopt, held, known, event = 'asset.created', replaces, ...limits } = options;
    const reservation = this.deps.quota.open(orgId, held);
    const store = adopt ? adopting(this.deps.blobs) : this.deps.blobs;
    const checks = { ...limits, reservation, accept: this.deps.accept, known: adopt ? known : undefined };
    const file = await ingest(stream, { store, key: blobKey }, checks);
    const stored: StoredFile = {
      blob_key: blobKey,
      type: file.type,
      mime_type: file.mimeType,
      size: file.size,
      checksum: file.checksum,
      width: file.width,
      height: file.height,
    };
    let asset: AssetRow | undefined;
    // Bytes to delete once the transaction commits: a crash between leaves orphans for fsck, never a row without bytes.
    const unheld: string[] = [];
    try {
      asset = await this.deps.repos.transaction(async (tx) => {
        const row = await record(tx, stored);
        if (!row) return undefined;
        // The org's row before its copy's: the order every transaction takes them in (see BlobRepository).
        await reservation.settle(tx, file.size);
        const redundant = await tx.copies.hold(row, this.#now());
        if (redundant !== null) unheld.push(redundant);
        await this.deps.queue.enqueue(tx, { kind: 'extract', asset: row });
        if (replaces) unheld.push(...(await this.#letGo(tx, replaces)));
        return row;
      });
    } catch (error) {
      await this.#discard(blobKey, reservation);
      throw error;
    }
    if (!asset) {
      await this.#discard(blobKey, reservation);
      return undefined;
    }
    for (const key of unheld) await this.deps.blobs.delete(key);
    await this.deps.events.publish(asset, event);
    this.deps.queue.wake();
    return asset;
  }

  /**
   * Replaces the bytes of a stored asset in place: same id, same public URL, version
   * bumped. The new bytes are checked like any upload (media rules, size, quota); once
   * they are recorded, every URL handed out for the old ones is dead, metadata,
   * thumbnails and renditions are made again, and the old bytes are deleted and their
   * quota freed. A refused file changes nothing.
   */
  async replaceFile(
    tenant: Tenant,
    id: string,
    input: {
      stream: Readable;
      filename?: string | null;
      expectedSize?: number | null;
      expectedChecksum?: string | null;
      /** Replace only this version (a replace URL is for the version it was made for): CONFLICT otherwise. */
      version?: number;
    },
  ): Promise<AssetRow> {
    const current = await this.replaceable(tenant, id);
    if (input.version !== undefined && current.version !== input.version) {
      throw new ConflictError(
        `This link replaces version ${input.version}; the asset is at version ${current.version}.`,
      );
    }
    const filename = sanitizeFilename(input.filename) || current.filename;
    // A key of its own per replacement: two replacements at once never write the same blob.
    const blobKey = createBlobKey(current.id, `v${current.version + 1}r${randomUUID().slice(0, 8)}`);
    const row = await this.storeBytes(
      {
        orgId: tenant.orgId,
        stream: input.stream,
        blobKey,
        maxBytes: this.deps.maxFileSize,
        filename,
        expectedSize: input.expectedSize,
        expectedChecksum: input.expectedChecksum,
        event: 'asset.updated',
        replaces: current,
      },
      (tx, file) =>
        tx.assets.replaceFile(
          current,
          {
            ...file,
            filename,
            status: 'PROCESSING',
            failure_reason: null,
            page_count: null,
            word_count: null,
            duration: null,
            thumbnail_key: null,
            metadata: null,
          },
          this.#now(),
        ),
    );
    if (!row) throw new ConflictError('The asset was replaced, deleted or trashed while the new bytes arrived.');
    return row;
  }

  /**
   * Lets go of the bytes `previous` held before new ones replaced them, in the replacing
   * transaction, after the new bytes were counted (the same bytes again keep their copy):
   * the keys to delete once it commits.
   */
  async #letGo(tx: Repositories, previous: AssetRow): Promise<string[]> {
    await tx.orgs.free(previous.org_id, previous.size);
    const released = (await tx.copies.release(previous.blob_key!)) ? [previous.blob_key!] : [];
    return [...released, ...derivedKeysOf(previous), ...(await tx.renditions.deleteAll(previous.id))];
  }

  /**
   * A new asset on bytes the tenant already stores under `checksum`, without an upload:
   * judged from the stored bytes' head as an upload would be (media rules, the `size` it
   * declares), charged to the quota like any asset, PROCESSING with extraction queued.
   * Undefined when the tenant stores no such bytes (or their last holder went meanwhile).
   */
  async createOnStored(
    tenant: Tenant,
    input: Pick<NewAsset, 'fields' | 'isPublic'> & { checksum: string; size?: number | null },
  ): Promise<AssetRow | undefined> {
    const { fields, isPublic, ...declared } = input;
    const copy = await this.deps.repos.copies.find(tenant, declared.checksum);
    if (!copy) return undefined;
    const size = Number(copy.size);
    const head = await headOf(this.deps.blobs, copy.blob_key, size);
    if (!head) return undefined; // the last holder went between the look and the read
    const file = await judge(
      { size, checksum: copy.checksum, head },
      {
        maxBytes: this.deps.maxFileSize,
        expectedSize: declared.size,
        filename: fields.filename,
        accept: this.deps.accept,
      },
    );
    const reservation = this.deps.quota.open(tenant.orgId);
    await reservation.ensure(size);
    const gone = new Error('the copy went meanwhile');
    let row: AssetRow;
    try {
      row = await this.deps.repos.transaction(async (tx) => {
        const inserted = await this.insertNew(tx, tenant, {
          fields,
          isPublic,
          status: 'PROCESSING',
          blob_key: copy.blob_key,
          type: file.type,
          mime_type: file.mimeType,
          size,
          checksum: copy.checksum,
          width: file.width,
          height: file.height,
        });
        // The org's row before its copy's, as every transaction takes them (see BlobRepository).
        await reservation.settle(tx, size);
        const held = await tx.copies.claimExisting(tenant, copy.checksum);
        if (held?.blob_key !== copy.blob_key) throw gone;
        await this.deps.queue.enqueue(tx, { kind: 'extract', asset: inserted });
        return inserted;
      });
    } catch (error) {
      await reservation.release();
      if (error === gone) return undefined;
      throw error;
    }
    await this.deps.events.publish(row, 'asset.created');
    this.deps.queue.wake();
    return row;
  }

  /** The tenant's live asset `id` when its bytes can be replaced: NOT_FOUND, or BAD_USER_INPUT for one without bytes. */
  async replaceable(tenant: Tenant, id: string): Promise<AssetRow> {
    const [current] = await this.deps.repos.assets.findByIds(tenant, [id]);
    if (!current) throw new NotFoundError();
    if (!current.blob_key) {
      throw new BadUserInputError(
        'id',
        'Only an asset with stored bytes can have them replaced (not a link or an unfinished upload).',
      );
    }
    return current;
  }

  /** Fails early with INSUFFICIENT_STORAGE when `bytes` more would not fit the org's quota now. */
  checkQuota(orgId: string, bytes: number): Promise<void> {
    return this.deps.quota.check(orgId, bytes);
  }

  async #discard(blobKey: string, reservation: Reservation): Promise<void> {
    await this.deps.blobs.delete(blobKey);
    await reservation.release();
  }

  /** Records a LINK or EXTERNAL_VIDEO asset; YouTube and Vimeo pages get their player URL. */
  async createExternal(tenant: Tenant, input: ExternalInput): Promise<AssetRow> {
    if (input.type !== 'LINK' && input.type !== 'EXTERNAL_VIDEO') {
      throw new BadUserInputError(
        'type',
        'createAsset makes LINK and EXTERNAL_VIDEO assets; upload files with uploadAsset.',
      );
    }
    const url = parseHttpUrl(input.externalUrl, 'externalUrl');
    const checked = await this.checkFields(tenant, input);
    const row = await this.insertNew(this.deps.repos, tenant, {
      fields: checked,
      isPublic: input.isPublic,
      type: input.type,
      status: 'READY',
      external_url: url.href,
      embed_url: embedUrlFor(url),
    });
    await this.deps.events.publish(row, 'asset.created');
    return row;
  }

  /** Changes the given fields; `null` clears description and folder. */
  async update(tenant: Tenant, id: string, fields: AssetUpdate): Promise<AssetRow> {
    const patch = { ...patchOf(fields), updated_at: this.#now() };
    if (fields.directoryId !== undefined) patch.directory_id = await this.checkDirectory(tenant, fields.directoryId);
    const tags = fields.tags == null ? undefined : normalizeTags(fields.tags);
    const row = await this.deps.repos.assets.update(tenant, id, { patch, tags });
    if (!row) throw new NotFoundError();
    await this.deps.events.publish(row, 'asset.updated');
    return row;
  }

  /**
   * Deletes an asset: to the trash (gone from lists, downloads and URLs at once, its
   * bytes and quota kept until it is purged), or, `permanently` or with no trash
   * configured, for good with its bytes. A trashed asset can only be deleted permanently.
   * `onlyWaiting`: for good, and only while it still waits for its bytes (an upload ended).
   */
  async delete(
    tenant: Tenant,
    id: string,
    options: { permanently?: boolean; onlyWaiting?: boolean } = {},
  ): Promise<AssetRow> {
    if (options.onlyWaiting || options.permanently || this.deps.trashRetention === 0)
      return this.#purge(tenant, id, options.onlyWaiting === true);
    const row = await this.deps.repos.assets.trash(tenant, id, this.#now());
    if (!row) throw new NotFoundError();
    await this.deps.events.publish(row, 'asset.deleted');
    return row;
  }

  /** Takes an asset out of the trash, as it was; the URLs handed out before stay dead. */
  async restore(tenant: Tenant, id: string): Promise<AssetRow> {
    const row = await this.deps.repos.assets.restore(tenant, id, this.#now());
    if (!row) throw new NotFoundError();
    // Back in lists: for a webhook that mirrors them, as if it were new.
    await this.deps.events.publish(row, 'asset.created');
    return row;
  }

  /** Deletes the row first, then its blobs: a crash between leaves an orphan blob, never a row without bytes. */
  async #purge(tenant: Tenant, id: string, onlyWaiting = false): Promise<AssetRow> {
    const blobKeys: string[] = [];
    const row = await this.deps.repos.transaction(async (tx) => {
      const deleted = await tx.assets.delete(tenant, id, onlyWaiting ? 'WAITING' : undefined);
      if (deleted) await forgetDeleted(tx, deleted, blobKeys);
      return deleted;
    });
    if (!row) throw new NotFoundError();
    for (const key of blobKeys) await this.deps.blobs.delete(key);
    // A trashed asset was announced deleted when it went to the trash.
    if (row.trashed_at === null) await this.deps.events.publish(row, 'asset.deleted');
    return row;
  }

  /** Runs extraction again (PROCESSING, then READY or FAILED). */
  async reprocess(tenant: Tenant, id: string): Promise<AssetRow> {
    const [asset] = await this.deps.repos.assets.findByIds(tenant, [id]);
    if (!asset) throw new NotFoundError();
    if (!asset.blob_key) throw new BadUserInputError('id', 'This asset has no stored bytes to process.');
    const updated = await this.deps.repos.transaction(async (tx) => {
      const row = await tx.assets.updateIfStatusAnyTenant(asset.id, asset.status, {
        status: 'PROCESSING',
        failure_reason: null,
        updated_at: this.#now(),
      });
      if (row) await this.deps.queue.enqueue(tx, { kind: 'extract', asset: row });
      return row;
    });
    if (!updated) throw new ConflictError('The asset changed meanwhile; try again.');
    await this.deps.events.publish(updated);
    this.deps.queue.wake();
    return updated;
  }
}
