import type { BlobStore } from '../../blob/index.js';
import { nowIso } from '../../db/database.js';
import type { Repositories, UnitOfWork } from '../../db/repositories.js';
import type { AssetRow } from '../../db/types.js';
import { forgetDeleted } from '../assets/forget-deleted.js';
import { fsck, type FsckReport } from './fsck.js';

/** What one sweep removed. */
export interface SweepReport {
  abandonedUploads: number;
  /** Assets purged from the trash after TRASH_RETENTION. */
  purgedFromTrash: number;
  /** Asset events older than the feed keeps (30 days), and finished webhook deliveries older than 7 days. */
  expiredEvents: number;
  finishedDeliveries: number;
  expiredTokens: number;
  temporaryFiles: number;
  finishedJobs: number;
  /** With `deep`: what the consistency check found and mended (orphan blobs, lost bytes, usage). */
  fsck?: FsckReport;
}

export interface SweeperOptions {
  repos: UnitOfWork;
  blobs: BlobStore;
  /** Seconds an expired upload (and a temporary file) is kept before removal. */
  grace: number;
  /** Seconds a trashed asset is kept before it is purged. */
  trashRetention: number;
  clock: () => number;
}

/** Trashed assets purged by one transaction; a sweep runs batches until none is due. */
const PURGE_BATCH = 200;

/**
 * Housekeeping that keeps the store tidy: two-step and resumable uploads that expired
 * unfinished (with their parts), assets in the trash past their retention (with their
 * bytes and renditions), download tokens past expiry, and temporary files of
 * interrupted writes.
 */
export function createSweeper(options: SweeperOptions) {
  const { repos, blobs, grace, trashRetention, clock } = options;
  /** Deletes rows with `remove` and forgets what they held, in one transaction; their blob keys go to `blobKeys`. */
  const deleteForgetting = (remove: (tx: Repositories) => Promise<AssetRow[]>, blobKeys: string[]) =>
    repos.transaction(async (tx) => {
      const rows = await remove(tx);
      for (const row of rows) await forgetDeleted(tx, row, blobKeys);
      return rows;
    });
  /** Uploads that expired unfinished go with their parts and the quota they held. */
  const removeAbandonedUploads = async (before: string): Promise<number> => {
    const blobKeys: string[] = [];
    const removed = await deleteForgetting((tx) => tx.assets.deleteAbandonedUploadsAllTenants(before), blobKeys);
    // Parts whose upload finished or went while a crash kept them from being removed.
    blobKeys.push(...(await repos.uploadParts.deleteSettled()));
    for (const key of blobKeys) await blobs.delete(key);
    return removed.length;
  };
  /** Assets trashed before `before` go for good, with their bytes and the quota they held. */
  const purgeTrash = async (before: string): Promise<number> => {
    let purged = 0;
    for (;;) {
      const blobKeys: string[] = [];
      const removed = await deleteForgetting((tx) => tx.assets.purgeTrashedAllTenants(before, PURGE_BATCH), blobKeys);
      // The rows are gone first: a crash here leaves orphan blobs, which fsck removes, never a row without bytes.
      for (const key of blobKeys) await blobs.delete(key);
      purged += removed.length;
      if (removed.length < PURGE_BATCH) return purged;
    }
  };
  return {
    /** The quick sweep; `deep` also runs the consistency check with repair (lists every blob). */
    async sweep({ deep = false } = {}): Promise<SweepReport> {
      const now = clock();
      return {
        ...(deep && {
          fsck: await fsck(options, { repair: true, orphanGraceMs: Math.max(grace * 1000, 60_000), now }),
        }),
        abandonedUploads: await removeAbandonedUploads(nowIso(() => now - grace * 1000)),
        purgedFromTrash: await purgeTrash(nowIso(() => now - trashRetention * 1000)),
        ...(await repos.webhooks
          .deleteOld(
            nowIso(() => now - 30 * 86_400_000),
            nowIso(() => now - 7 * 86_400_000),
          )
          .then(({ events, deliveries }) => ({ expiredEvents: events, finishedDeliveries: deliveries }))),
        expiredTokens: await repos.downloadTokens.deleteExpired(nowIso(() => now)),
        temporaryFiles: (await blobs.sweepTemporaries?.(Math.max(grace * 1000, 60_000))) ?? 0,
        finishedJobs: await repos.jobs.deleteFinished(nowIso(() => now - 7 * 86_400_000)),
      };
    },
  };
}

export type Sweeper = ReturnType<typeof createSweeper>;
