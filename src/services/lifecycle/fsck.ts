import { createHash } from 'node:crypto';
import { type BlobStore, createBlobKey } from '../../blob/index.js';
import type { RefCountMismatch } from '../../db/blob-repository.js';
import { nowIso } from '../../db/database.js';
import type { UnitOfWork } from '../../db/repositories.js';
import type { AssetRow, RenditionRow } from '../../db/types.js';
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
  /** Blobs older than the grace period that nothing in the database holds. Repair: deleted. */
  orphanBlobs: string[];
  /** Blobs nothing held when listed but younger than the grace period (or of unknown age): left alone. */
  youngBlobs: number;
  /**
   * Stored copies whose count of holders differs from the assets holding them (or that
   * assets hold with no count). Repair: recounted; a copy no asset holds is deleted.
   */
  refCountMismatches: RefCountMismatch[];
  /** Orgs whose recorded storage differs from the sum of their assets. Repair: recounted. */
  usageMismatches: { orgId: string; recorded: number; actual: number }[];
  repaired: boolean;
}

/**
 * The check could not finish: the database or the store failed. Its message is one line
 * naming the step and the cause; nothing after the failed step was repaired.
 */
export class FsckError extends Error {
  constructor(step: string, cause: unknown) {
    super(`${step} failed: ${reasonOf(cause)}`, { cause });
    this.name = 'FsckError';
  }
}

/** An error's own words on one line (an AggregateError's, such as a refused connection, from its parts). */
function reasonOf(error: unknown): string {
  const { message, code, errors } = (error ?? {}) as { message?: string; code?: string; errors?: unknown[] };
  const text = message || (errors?.length ? errors.map(reasonOf).join('; ') : code) || String(error);
  return text.replace(/\s+/g, ' ').trim();
}

/** Runs one step of the check; a failure becomes an `FsckError` naming it. */
async function step<T>(name: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw error instanceof FsckError ? error : new FsckError(name, error);
  }
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
  /**
   * Blobs younger than this (by the store's last-modified time) may be an upload or a
   * thumbnail between its bytes and its row: neither reported nor deleted. @default 1 hour
   */
  orphanGraceMs?: number;
  /** The clock ages are measured by (ms). @default Date.now() */
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
const HOUR = 3600_000;

async function sha256Of(blobs: BlobStore, key: string): Promise<string | null> {
  const stream = await blobs.get(key);
  if (!stream) return null;
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** The bytes an asset records: a blob and what should be in it. */
const bytesOf = (asset: AssetRow) => `${asset.blob_key} ${asset.size} ${asset.checksum}`;

/** OK, MISSING, or what is wrong with the blob under the asset's key against what the asset recorded. */
async function verdictOf(blobs: BlobStore, asset: AssetRow, checksums: boolean): Promise<string> {
  const info = await blobs.head(asset.blob_key!);
  if (!info) return MISSING;
  if (info.size !== asset.size) return `size ${info.size}, recorded ${asset.size}`;
  if (checksums && (await sha256Of(blobs, asset.blob_key!)) !== asset.checksum) return 'checksum differs';
  return OK;
}

/**
 * Keys whose bytes may be in the store before a row names them: a signed PUT, or a
 * resumable upload growing in place, of an asset still waiting for (or storing) its bytes.
 */
function inFlightKeysOf(asset: AssetRow): string[] {
  if (asset.blob_key || (asset.status !== 'WAITING' && asset.status !== 'PROCESSING')) return [];
  return [createBlobKey(asset.id), createBlobKey(asset.id, 'upload')];
}

/**
 * Every key the database holds now, visiting each asset and rendition on the way: assets'
 * bytes, thumbnails and uploads in flight, renditions, counted copies and upload parts.
 * Copies and parts are read last: one recorded meanwhile belongs to an asset already seen.
 */
async function heldKeys(
  deps: FsckDeps,
  visit: { asset?(asset: AssetRow): Promise<void>; rendition?(rendition: RenditionRow): Promise<void> } = {},
): Promise<Set<string>> {
  const held = new Set<string>();
  for (let after = ''; ;) {
    const page = await deps.repos.assets.pageAllTenants(after, 500);
    if (page.length === 0) break;
    after = page.at(-1)!.id;
    for (const asset of page) {
      for (const key of [...blobKeysOf(asset), ...inFlightKeysOf(asset)]) held.add(key);
      await visit.asset?.(asset);
    }
  }
  for (let after: { assetId: string; variant: string } | null = null; ;) {
    const page = await deps.repos.renditions.pageAll(after, 500);
    if (page.length === 0) break;
    after = { assetId: page.at(-1)!.asset_id, variant: page.at(-1)!.variant };
    for (const rendition of page) {
      held.add(rendition.blob_key);
      await visit.rendition?.(rendition);
    }
  }
  for (const key of await deps.repos.copies.allKeys()) held.add(key);
  for (const key of await deps.repos.uploadParts.allKeys()) held.add(key);
  return held;
}

/**
 * Checks that the database and the blob store agree: every asset with bytes has its
 * blob at the recorded size (and checksum), no blob lacks an owner, and each org's
 * recorded storage equals the sum of its assets. `repair` mends what it finds.
 *
 * Safe while the service runs: a finding is confirmed after the pass that made it
 * (lost bytes against the asset's row read again, an orphan against the whole database
 * read again after the listing, counts in one statement), and blobs younger than the
 * grace period are left alone. A failure of the store or the database throws `FsckError`.
 */
export async function fsck(deps: FsckDeps, options: FsckOptions = {}): Promise<FsckReport> {
  const { blobs } = deps;
  const { assets, orgs, copies, renditions } = deps.repos;
  const now = options.now ?? Date.now();
  const grace = options.orphanGraceMs ?? HOUR;
  const checksums = !!options.checksums;
  const report: FsckReport = {
    assetsChecked: 0,
    blobsChecked: 0,
    missingBlobs: [],
    damagedBlobs: [],
    missingRenditions: [],
    orphanBlobs: [],
    youngBlobs: 0,
    refCountMismatches: [],
    usageMismatches: [],
    repaired: !!options.repair,
  };
  const verdicts = new Map<string, string>();
  const suspects: AssetRow[] = [];
  const lostRenditions: RenditionRow[] = [];
  const held = await step('checking the assets', () =>
    heldKeys(deps, {
      async asset(asset) {
        report.assetsChecked += 1;
        if (!asset.blob_key) return;
        // Assets with the same bytes share one blob: it is looked at (and hashed) once.
        let verdict = verdicts.get(bytesOf(asset));
        if (verdict === undefined) verdicts.set(bytesOf(asset), (verdict = await verdictOf(blobs, asset, checksums)));
        if (verdict !== OK) suspects.push(asset);
      },
      async rendition(rendition) {
        if (!(await blobs.head(rendition.blob_key))) lostRenditions.push(rendition);
      },
    }),
  );

  const candidates: string[] = [];
  await step('listing the blob store', async () => {
    for await (const blob of blobs.list()) {
      report.blobsChecked += 1;
      if (held.has(blob.key)) continue;
      if (blob.modifiedAt === undefined || now - blob.modifiedAt < grace) report.youngBlobs += 1;
      else candidates.push(blob.key);
    }
  });

  const broken: AssetRow[] = [];
  const confirmedRenditions: RenditionRow[] = [];
  await step('confirming the findings', async () => {
    // A row read again: bytes replaced or deleted since the asset was read are not lost.
    // Shared bytes are looked at again once, as in the pass.
    const confirmed = new Map<string, string>();
    for (const seen of suspects) {
      const asset = await assets.findByIdAnyTenant(seen.id);
      if (!asset?.blob_key || bytesOf(asset) !== bytesOf(seen)) continue;
      let verdict = confirmed.get(bytesOf(asset));
      if (verdict === undefined) confirmed.set(bytesOf(asset), (verdict = await verdictOf(blobs, asset, checksums)));
      if (verdict === OK) continue;
      if (verdict === MISSING) report.missingBlobs.push({ assetId: asset.id, key: asset.blob_key });
      else report.damagedBlobs.push({ assetId: asset.id, key: asset.blob_key, problem: verdict });
      broken.push(asset);
    }
    for (const seen of lostRenditions) {
      const rendition = await renditions.find(seen.asset_id, seen.variant);
      if (rendition?.blob_key !== seen.blob_key || (await blobs.head(seen.blob_key))) continue;
      report.missingRenditions.push({ assetId: seen.asset_id, key: seen.blob_key });
      confirmedRenditions.push(seen);
    }
    // Held now? An asset may have become READY (its thumbnails written) since it was read.
    const heldNow = candidates.length > 0 ? await heldKeys(deps) : held;
    for (const key of candidates) {
      if (!heldNow.has(key) && (await blobs.head(key))) report.orphanBlobs.push(key);
    }
  });

  await step('repairing', async () => {
    if (!options.repair) return;
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
    for (const key of report.orphanBlobs) await blobs.delete(key);
    // Only while the row still names the lost blob: a rendition made again meanwhile stays.
    await renditions.remove(confirmedRenditions);
  });
  // Counts are compared in one statement each, so one snapshot: nothing changing meanwhile shows.
  report.refCountMismatches = await step('counting stored copies', () => copies.mismatches());
  await step('recounting stored copies', async () => {
    if (!options.repair) return;
    for (const mismatch of report.refCountMismatches) {
      // Recounted under the copy's lock: the bytes go only if no asset holds them then.
      if (
        await copies.recount(
          mismatch.key,
          nowIso(() => now),
        )
      )
        await blobs.delete(mismatch.key);
    }
  });
  report.usageMismatches = await step('counting stored bytes', () => orgs.recount());
  if (options.repair) {
    await step('recounting stored bytes', async () => {
      for (const m of report.usageMismatches) await orgs.resetUsed(m.orgId);
    });
  }
  return report;
}
