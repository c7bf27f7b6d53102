import type { BlobStore } from '../../blob/index.js';
import { nowIso } from '../../db/database.js';
import type { RenditionKey, RenditionRepository } from '../../db/rendition-repository.js';
import type { RenditionRow } from '../../db/types.js';
import { RateLimitedError } from '../../errors.js';
import type { RateLimiter } from '../../adapters/rate-limiter.js';

/** How stale a rendition's last-used time may get before a serve writes it again. */
const TOUCH_EVERY_MS = 60_000;
/** Renditions evicted per step while the budget is passed. */
const EVICT_BATCH = 32;

export interface RenditionCacheDeps {
  renditions: RenditionRepository;
  blobs: BlobStore;
  /** Bytes all kept renditions may occupy (`RENDITION_CACHE_MAX`). */
  maxBytes: number;
  /** Renditions kept of one asset (`RENDITION_MAX_PER_ASSET`). */
  maxPerAsset: number;
  /** New renditions a client without a key may start per minute (`RENDITION_ANON_RATE`); null: no limit. */
  anonymous: RateLimiter | null;
  clock: () => number;
}

/**
 * The bounds that make kept renditions a cache rather than a second store: a byte budget
 * shared by every org and a cap per asset, both kept by evicting the least recently used
 * (row and blob together: the row first, so no row ever names a missing blob for long and
 * a crash between the two leaves only an orphan blob, which fsck frees), and a rate of new
 * transforms for callers without a key. Evicted renditions are made again on demand.
 */
export class RenditionCache {
  constructor(private readonly deps: RenditionCacheDeps) {}

  /** Notes that `row` was served, writing at most once a minute per rendition. */
  async used(row: RenditionRow): Promise<void> {
    const now = this.deps.clock();
    if (now - Date.parse(row.used_at) < TOUCH_EVERY_MS) return;
    await this.deps.renditions.touch(
      row,
      nowIso(() => now),
    );
  }

  /**
   * Lets `client` (the address of a caller without a key) start one new transform, or
   * throws RATE_LIMITED with the seconds until it may. Callers with a key pass nothing.
   */
  async admit(client: string | undefined): Promise<void> {
    if (client === undefined || !this.deps.anonymous) return;
    const verdict = await this.deps.anonymous.take(client, 1);
    if (!verdict.ok) {
      throw new RateLimitedError(
        verdict.retryAfter,
        'Too many new renditions from this address: renditions already made are still served; use a key for more.',
      );
    }
  }

  /** Brings the cache back within its bounds after `made` was added; `made` itself stays. */
  async evict(made: RenditionKey): Promise<void> {
    const { renditions, maxBytes, maxPerAsset } = this.deps;
    const excess = (await renditions.countOf(made.asset_id)) - maxPerAsset;
    if (excess > 0) {
      await this.#remove(await renditions.leastRecentlyUsed({ assetId: made.asset_id, limit: excess, spare: made }));
    }
    for (let over = (await renditions.totalBytes()) - maxBytes; over > 0;) {
      const oldest = await renditions.leastRecentlyUsed({ limit: EVICT_BATCH, spare: made });
      // Only the one just made is left: a budget smaller than one rendition holds that one.
      if (oldest.length === 0) break;
      const chosen: RenditionKey[] = [];
      for (let freed = 0, i = 0; freed < over && i < oldest.length; i += 1) {
        chosen.push(oldest[i]);
        freed += Number(oldest[i].size);
      }
      await this.#remove(chosen);
      over = (await renditions.totalBytes()) - maxBytes;
    }
  }

  async #remove(rows: readonly RenditionKey[]): Promise<void> {
    // Another gateway evicting the same rows at once: only what this one removed is its to delete.
    for (const gone of await this.deps.renditions.remove(rows)) await this.deps.blobs.delete(gone.blob_key);
  }
}
