import type { AssetRepository } from '../../db/asset-repository.js';
import { nowIso } from '../../db/database.js';
import type { JobRepository } from '../../db/job-repository.js';
import type { AssetRow, JobRow } from '../../db/types.js';
import { AppError } from '../../errors.js';
import { type AssetMetadata, metadataOf } from '../assets/asset-metadata.js';
import type { AssetEvents } from '../assets/asset-events.js';
import type { RenditionService } from './renditions.js';
import { PREVIEWABLE } from './previews.js';

/** Width of the preview made in the background: the asset page's picture, and a warm cache entry. */
export const POSTER_WIDTH = 768;

/** Whether an asset's preview was made (`imageUrl` and `srcSet` are then non-null), or why it could not be. */
export type PreviewState = NonNullable<AssetMetadata['preview']>;

/** The preview state of an asset (none yet: undefined). */
export function previewStateOf(asset: Pick<AssetRow, 'metadata'>): PreviewState | undefined {
  return metadataOf(asset).preview;
}

export interface PreviewJobDeps {
  assets: AssetRepository;
  jobs: Pick<JobRepository, 'enqueue'>;
  renditions: RenditionService;
  /** Subscribers of the asset hear that its preview exists (or failed). */
  events: Pick<AssetEvents, 'publish'>;
  clock: () => number;
  /** Tells the job runner that work is waiting. */
  wake: () => void;
}

/**
 * The `preview` job, queued when a PDF, a video or an audio file has been read (READY): makes
 * its first page, poster frame or waveform (POSTER_WIDTH wide, WebP) into the rendition cache
 * and records on the asset that it exists, or why it could not be made (FAILED preview;
 * the asset stays READY and downloadable). A rendition evicted later is made again on demand.
 */
export function createPreviewJob(deps: PreviewJobDeps) {
  const record = async (asset: AssetRow, preview: PreviewState) => {
    const metadata = { ...metadataOf(asset), preview };
    const updated = await deps.assets.updateIfBlobAnyTenant(asset.id, asset.blob_key!, {
      metadata: JSON.stringify(metadata),
      updated_at: nowIso(deps.clock),
    });
    if (updated) await deps.events.publish(updated);
  };
  return {
    /** Queues the preview of `asset` when it has one to make. */
    async queue(asset: AssetRow): Promise<void> {
      if (!PREVIEWABLE.has(asset.type) || asset.status !== 'READY') return;
      await deps.jobs.enqueue('preview', asset, { now: nowIso(deps.clock) });
      deps.wake();
    },
    async run(job: JobRow): Promise<void> {
      const asset = await deps.assets.findByIdAnyTenant(job.asset_id);
      if (!asset?.blob_key || asset.status !== 'READY' || !PREVIEWABLE.has(asset.type)) return;
      try {
        const variant = deps.renditions.variantOf(asset, { w: POSTER_WIDTH, format: 'webp', dpr: 1 });
        await deps.renditions.get(asset, variant);
      } catch (error) {
        // A file that cannot be previewed (broken, too slow, no ffmpeg) is a fact about it, not a job to retry.
        if (!(error instanceof AppError) || error.code === 'SERVICE_UNAVAILABLE') throw error;
        await record(asset, { status: 'FAILED', reason: error.message.slice(0, 500) });
        return;
      }
      await record(asset, { status: 'READY' });
    },
  };
}

export type PreviewJob = ReturnType<typeof createPreviewJob>;
