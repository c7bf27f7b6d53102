import type { Principal } from '../auth/principal.js';
import { tenantOf } from '../auth/principal.js';
import type { AssetRepository } from '../db/asset-repository.js';
import type { AssetRow } from '../db/types.js';

/** The columns the rule reads: every row handed to GraphQL or a route carries them. */
export const ACCESS_COLUMNS = ['org_id', 'mode', 'is_public', 'trashed_at'] as const satisfies (keyof AssetRow)[];

type Guarded = Pick<AssetRow, (typeof ACCESS_COLUMNS)[number]>;

/**
 * Who may see an asset (its fields, its bytes, its thumbnails, its events): anyone
 * when it is public and not in the trash, else a key of its org and mode that holds
 * `read:assets`. Keys that may only write or delete see nothing of an asset beyond its id.
 */
export function mayRead(viewer: Principal | null, asset: Guarded): boolean {
  if (asset.is_public === 1 && asset.trashed_at === null) return true;
  return (
    viewer !== null && viewer.scopes.has('read:assets') && viewer.orgId === asset.org_id && viewer.mode === asset.mode
  );
}

/** What the upload rule reads besides ACCESS_COLUMNS. */
type UploadGuarded = Guarded & Pick<AssetRow, 'status' | 'received_bytes'>;

/** What a request does through a resumable upload's URL: ask where it stands, add bytes, end it. */
export type UploadVerb = 'probe' | 'append' | 'terminate';

/**
 * Who may act on a resumable upload through its URL (tus `HEAD`, `PATCH`, `DELETE`): a
 * key of its org and mode that holds `write:assets`, and only on an upload (an asset
 * made to take its bytes in parts) that is not in the trash. A finished upload still
 * answers where it stands (its offset is its length: a client that lost the answer to
 * its last chunk learns it is done), but it is no longer an upload one can end: it is an
 * asset, removed only by `deleteAsset` with `delete:assets`, to the trash.
 */
export function mayUseUpload(actor: Principal | null, upload: UploadGuarded, verb: UploadVerb): boolean {
  if (actor === null || !actor.scopes.has('write:assets')) return false;
  if (actor.orgId !== upload.org_id || actor.mode !== upload.mode) return false;
  if (upload.received_bytes === null || upload.trashed_at !== null) return false;
  return verb !== 'terminate' || upload.status === 'WAITING';
}

export interface AssetAccessDeps {
  assets: AssetRepository;
  /** The principal of a key that is still valid now (not revoked, not expired); null otherwise. */
  principalOfKey: (keyId: string) => Promise<Principal | null>;
}

/**
 * The one place that decides who may see an asset. Queries, mutation payloads,
 * subscription events, downloads, thumbnails and signed URLs all ask it.
 */
export class AssetAccess {
  constructor(private readonly deps: AssetAccessDeps) {}

  /** The assets `viewer` may read, aligned with `ids`; undefined where none exists for this viewer. */
  async findReadable(viewer: Principal | null, ids: readonly string[]): Promise<(AssetRow | undefined)[]> {
    const { assets } = this.deps;
    const own =
      viewer?.scopes.has('read:assets') === true
        ? await assets.findByIds(tenantOf(viewer), [...ids])
        : ids.map(() => undefined);
    const others = ids.filter((_, i) => !own[i]);
    const shared = others.length ? await assets.findPublicByIds(others) : [];
    const byId = new Map(shared.flatMap((row) => (row ? [[row.id, row] as const] : [])));
    return ids.map((id, i) => own[i] ?? byId.get(id));
  }

  /**
   * The principal a grant made by key `keyId` acts for, as of now: a signed URL or an
   * open subscription is only as good as the key behind it. Null once it is revoked
   * or expired.
   */
  principalOfKey(keyId: string): Promise<Principal | null> {
    return this.deps.principalOfKey(keyId);
  }

  /**
   * Passes on the asset versions of `events` while `viewer` may still read them, checked
   * at each event as a query would be at that moment (the key still valid, the asset
   * still visible); ends the stream the first time it may not.
   */
  async *whileReadable(viewer: Principal | null, events: AsyncIterable<AssetRow>): AsyncGenerator<AssetRow> {
    for await (const asset of events) {
      const now = viewer ? await this.principalOfKey(viewer.keyId) : null;
      if (viewer && !now) return; // the key was revoked or expired: what it opened closes
      if (!mayRead(now, asset)) return;
      yield asset;
    }
  }
}
