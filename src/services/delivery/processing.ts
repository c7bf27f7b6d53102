import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import type { BlobStore } from '../../blob/index.js';
import type { AssetRepository } from '../../db/asset-repository.js';
import { nowIso } from '../../db/database.js';
import type { AssetRow, JobRow } from '../../db/types.js';
import { type ExtractPool, ExtractionFailure } from '../../jobs/extract-pool.js';
import type { ExtractResult } from '../../jobs/extract-types.js';
import type { AssetEvents } from '../assets/asset-events.js';
import { type AssetMetadata, metadataOf } from '../assets/asset-metadata.js';
import { thumbnailsOf } from './thumbnails.js';

export interface ProcessingOptions {
  assets: AssetRepository;
  blobs: BlobStore;
  pool: ExtractPool;
  events: AssetEvents;
  /** Longest side of each thumbnail an image lists (made on first request), pixels. */
  thumbnailSizes: number[];
  maxImagePixels: number;
  /** Pages of a PDF whose words are counted, the first ones (PDF_WORD_PAGES_MAX). */
  pdfWordPagesMax: number;
  clock: () => number;
}

const WORK_PREFIX = path.join(os.tmpdir(), 'assetgate-extract-');

const TEXT_TYPES = new Set(['application/json', 'application/x-ndjson', 'application/xml']);

/** Whether extraction can learn anything from this asset's bytes. */
function hasExtractor(asset: AssetRow): boolean {
  const mime = asset.mime_type ?? '';
  if (['IMAGE', 'PDF', 'AUDIO', 'VIDEO'].includes(asset.type)) return true;
  return mime.startsWith('text/') || TEXT_TYPES.has(mime);
}

/**
 * The `extract` job: reads an asset's bytes in a worker thread and records what was
 * learnt (READY), or why nothing could be (FAILED). It writes no blob: an image's
 * thumbnails are renditions, made on first request. Idempotent: running it twice gives
 * the same asset.
 */
export class ProcessingService {
  constructor(private readonly options: ProcessingOptions) {}

  #now(): string {
    return nowIso(this.options.clock);
  }

  async #update(
    asset: AssetRow,
    patch: Parameters<AssetRepository['updateIfBlobAnyTenant']>[2],
  ): Promise<AssetRow | undefined> {
    const updated = await this.options.assets.updateIfBlobAnyTenant(asset.id, asset.blob_key!, {
      ...patch,
      updated_at: this.#now(),
    });
    const event = patch.status === 'READY' ? 'asset.ready' : patch.status === 'FAILED' ? 'asset.failed' : undefined;
    if (updated) await this.options.events.publish(updated, event);
    return updated;
  }

  async extract(job: JobRow): Promise<void> {
    const { assets, blobs, pool } = this.options;
    let asset = await assets.findByIdAnyTenant(job.asset_id);
    if (!asset?.blob_key) return; // deleted, or its bytes never came: nothing to read
    if (!hasExtractor(asset)) {
      // Nothing to read in these bytes: no worker needed.
      await this.#update(asset, { status: 'READY', failure_reason: null });
      return;
    }
    if (asset.status !== 'PROCESSING') {
      asset = await this.#update(asset, { status: 'PROCESSING', failure_reason: null });
      if (!asset) return;
    }
    const { width, height } = asset;
    if (asset.type === 'IMAGE' && width && height && width * height > this.options.maxImagePixels) {
      // The header read at upload tells already: refused without copying the bytes or taking a worker.
      const reason = `the image declares ${width}×${height} pixels, over the limit of ${this.options.maxImagePixels}`;
      for (const listener of this.#failures) listener(reason);
      await this.#update(asset, { status: 'FAILED', failure_reason: reason });
      return;
    }
    // A folder for a copy of the bytes, made only when the store has no local file to read.
    let work: string | undefined;
    try {
      const local = this.options.blobs.localPath?.(asset.blob_key!);
      const file = local ?? (await this.#copy(asset.blob_key!, (work = await mkdtemp(WORK_PREFIX))));
      let result: ExtractResult;
      try {
        result = await pool.run({
          path: file,
          mimeType: asset.mime_type ?? 'application/octet-stream',
          type: asset.type as never,
          maxImagePixels: this.options.maxImagePixels,
          maxPdfPagesForWords: this.options.pdfWordPagesMax,
        });
      } catch (error) {
        if (!(error instanceof ExtractionFailure)) throw error;
        for (const listener of this.#failures) listener(error.reason);
        await this.#update(asset, { status: 'FAILED', failure_reason: error.reason });
        return;
      }
      const { width, height, pageCount, wordCount, duration, text, ...rest } = result;
      // Thumbnails are renditions, drawn on first request: only their boxes are known now, and
      // only of an image the worker decoded (a header-only format has no thumbnail).
      const thumbnails =
        asset.type === 'IMAGE' && rest.placeholder && width && height
          ? thumbnailsOf(width, height, this.options.thumbnailSizes)
          : [];
      const metadata: AssetMetadata = { ...pick(metadataOf(asset), ['sourceUrl']), ...rest, thumbnails };
      // What search finds in the bytes (unless they were replaced meanwhile), in before asset.ready is announced.
      await assets.setSearchText(asset.id, asset.blob_key!, text ?? null);
      const updated = await this.#update(asset, {
        status: 'READY',
        failure_reason: null,
        width: width ?? asset.width,
        height: height ?? asset.height,
        page_count: pageCount ?? null,
        word_count: wordCount ?? null,
        duration: duration ?? null,
        thumbnail_key: null,
        metadata: JSON.stringify(metadata),
      });
      if (updated) for (const listener of this.#ready) await listener(updated);
    } finally {
      if (work) await rm(work, { recursive: true, force: true });
    }
  }

  readonly #failures: ((reason: string) => void)[] = [];
  readonly #ready: ((asset: AssetRow) => Promise<void>)[] = [];

  /** Hears each asset extraction has read (READY), before its job ends: what comes next is queued here. */
  onReady(listener: (asset: AssetRow) => Promise<void>): void {
    this.#ready.push(listener);
  }

  /** Hears each file extraction could not read (the asset ends FAILED). */
  onFailure(listener: (reason: string) => void): void {
    this.#failures.push(listener);
  }

  /** Stops the worker threads. */
  close(): Promise<void> {
    return this.options.pool.close();
  }

  /** Marks the asset FAILED once the job's retries are spent. */
  async giveUp(job: JobRow, error: unknown): Promise<void> {
    const asset = await this.options.assets.findByIdAnyTenant(job.asset_id);
    if (!asset) return;
    const reason = `processing failed after ${job.attempts} attempts: ${error instanceof Error ? error.message : String(error)}`;
    const updated = await this.options.assets.updateIfStatusAnyTenant(asset.id, asset.status, {
      status: 'FAILED',
      failure_reason: reason.slice(0, 500),
      updated_at: this.#now(),
    });
    if (updated) await this.options.events.publish(updated, 'asset.failed');
  }

  /** A copy in `work` of the bytes of a store without local files. */
  async #copy(key: string, work: string): Promise<string> {
    const stream = await this.options.blobs.get(key);
    if (!stream) throw new Error(`blob ${key} is missing`);
    const copy = path.join(work, 'original');
    await pipeline(stream, createWriteStream(copy));
    return copy;
  }
}

function pick<T extends object, K extends keyof T>(object: T, keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.filter((k) => object[k] !== undefined).map((k) => [k, object[k]])) as Pick<T, K>;
}
