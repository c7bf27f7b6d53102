import { createHash } from 'node:crypto';
import type { BlobStore } from '../../blob/index.js';
import type { RefCountMismatch } from '../../db/blob-repository.js';
import { nowIso } from '../../db/database.js';
import type { UnitOfWork } from '../../db/repositories.js';
import type { AssetRow } from '../../db/types.js';
import { blobKeysOf } from '../assets/asset-metadata.js';

/** What the consistency check found (and, with `repair`, mended). */
export interface FsckReport {
  assetsChecked: number;
  blobsChecked: number;
  /** Assets whose bytes are gone from the store. Repair: FAILED, no bytes. */
  missingBlobs: { assetId: string; key: string }[];
  /** Assets whose stored bytes differ from what was recorded. Repair: FAILED, no bytes. */
  damagedBlobs: { assetId: string; key: string; problem: string }[];
  /** Renditions whose blob is gone. Repair: forgotten, so the next request makes them again. */
  missingRenditions: { assetId: string; key: string }[];
  /** Blobs no asset owns. Repair: deleted, once older than the grace period. */
  orphanBlobs: string[];
  /**
   * Stored copies whose count of holders differs from the assets holding them (or that
   * assets hold with no count). Repair: recounted; a copy no asset holds is deleted.
   */
  refCountMismatches: RefCountMismatch[];
  /** Orgs whose recorded storage differs from the sum of their assets. Repair: recounted. */
  usageMismatches: { orgId: string; recorded: number; actual: number }[];
  repaired: boolean;
}

/** What the check reads: the asset rows and the rows beside them, and the store. */
export interface FsckDeps {
  repos: UnitOfWork;
  blobs: BlobStore;
}

export interface FsckOptions {
  repair?: boolean;
  /** Re-hash every blob against its recorded checksum (reads everything). @default false */
  checksums?: boolean;
  /** Orphans younger than this may belong to an upload in flight: reported, not deleted. @default 10 min */
  orphanGraceMs?: number;
  now?: number;
}

export function isClean(report: FsckReport): boolean {
  return (
    !report.missingBlobs.length &&
    !report.damagedBlobs.length &&
    !report.missingRenditions.length &&
    !report.orphanBlobs.length &&
    !report.refCountMismatches.length &&
    !report.usageMismatches.length
  );
}

const OK = '';
const MISSING = 'missing';

async function sha256Of(blobs: BlobStore, key: string): Promise<string | null> {
  const stream = await blobs.get(key);
  if (!stream) return null;
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * Checks that the database and the blob store agree: every asset with bytes has its
 * blob at the recorded size (and checksum), no blob lacks an asset, and each org's
 * recorded storage equals the sum of its assets. `repair` mends what it finds.
 */
export async function fsck(deps: FsckDeps, options: FsckOptions = {}): Promise<FsckReport> {
  const { blobs } = deps;
  const { assets, orgs, copies, renditions, uploadParts: parts } = deps.repos;
  const now = options.now ?? Date.now();
  const grace = options.orphanGraceMs ?? 10 * 60_000;
  const report: FsckReport = {
    assetsChecked: 0,
    blobsChecked: 0,
    missingBlobs: [],
    damagedBlobs: [],
    missingRenditions: [],
    orphanBlobs: [],
    refCountMismatches: [],
    usageMismatches: [],
    repaired: !!options.repair,
  };
  const owned = new Set<string>();
  const broken: AssetRow[] = [];
  const verdicts = new Map<string, string>();
  /** OK, MISSING, or what is wrong with the blob under `key` against what `asset` recorded. */
  const verdictOf = async (key: string, asset: AssetRow): Promise<string> => {
    const info = await blobs.head(key);
    if (!info) return MISSING;
    if (info.size !== asset.size) return `size ${info.size}, recorded ${asset.size}`;
    if (options.checksums && (await sha256Of(blobs, key)) !== asset.checksum) return 'checksum differs';
    return OK;
  };

  for (let after = ''; ;) {
    const page = await assets.pageAllTenants(after, 500);
    if (page.length === 0) break;
    after = page.at(-1)!.id;
    for (const asset of page) {
      report.assetsChecked += 1;
      for (const key of blobKeysOf(asset)) owned.add(key);
      if (!asset.blob_key) continue;
      // Assets with the same bytes share one blob: it is looked at (and hashed) once.
      const seen = `${asset.blob_key} ${asset.size} ${asset.checksum}`;
      let verdict = verdicts.get(seen);
      if (verdict === undefined) {
        verdict = await verdictOf(asset.blob_key, asset);
        verdicts.set(seen, verdict);
      }
      if (verdict === MISSING) report.missingBlobs.push({ assetId: asset.id, key: asset.blob_key });
      else if (verdict !== OK) report.damagedBlobs.push({ assetId: asset.id, key: asset.blob_key, problem: verdict });
      if (verdict !== OK) broken.push(asset);
    }
  }

  const lostRenditions: { assetId: string; variant: string }[] = [];
  for (let after: { assetId: string; variant: string } | null = null; ;) {
    const page = await renditions.pageAll(after, 500);
    if (page.length === 0) break;
    const last = page[page.length - 1];
    after = { assetId: last.asset_id, variant: last.variant };
    for (const rendition of page) {
      owned.add(rendition.blob_key);
      if (await blobs.head(rendition.blob_key)) continue;
      report.missingRenditions.push({ assetId: rendition.asset_id, key: rendition.blob_key });
      lostRenditions.push({ assetId: rendition.asset_id, variant: rendition.variant });
    }
  }
  // A counted copy owns its bytes until the count is repaired (a copy no asset holds goes then).
  for (const key of await copies.allKeys()) owned.add(key);
  // The parts of resumable uploads under way are owned too (listed after the assets: a part
  // recorded meanwhile belongs to an upload whose asset was already seen).
  for (const key of await parts.allKeys()) owned.add(key);
  const orphans: string[] = [];
  for await (const key of blobs.keys()) {
    report.blobsChecked += 1;
    if (owned.has(key)) continue;
    const info = await blobs.head(key);
    if (!info) continue; // deleted since it was listed: nothing left to report
    report.orphanBlobs.push(key);
    // Without a known age an orphan may be an upload between its blob and its row: never removed.
    if (info.modifiedAt !== undefined && now - info.modifiedAt >= grace) orphans.push(key);
  }

  if (options.repair) {
    for (const asset of broken) {
      // Unless the asset changed since it was checked. Every asset holding the bytes is in `broken`.
      const released = await deps.repos.transaction(
        // The asset no longer holds the bytes: one holder less, in the same transaction.
        async (tx) =>
          (await tx.assets.markBytesLostAnyTenant(asset.id, asset.blob_key!)) &&
          (await tx.copies.release(asset.blob_key!)),
      );
      if (released) await blobs.delete(asset.blob_key!);
    }
    for (const key of orphans) await blobs.delete(key);
    for (const lost of lostRenditions) await renditions.forget(lost.assetId, lost.variant);
  }
  report.refCountMismatches = await copies.mismatches();
  if (options.repair) {
    for (const mismatch of report.refCountMismatches) {
      if (
        await copies.recount(
          mismatch.key,
          nowIso(() => now),
        )
      )
        await blobs.delete(mismatch.key);
    }
  }
  report.usageMismatches = await orgs.recount();
  if (options.repair) for (const m of report.usageMismatches) await orgs.resetUsed(m.orgId);
  return report;
}
