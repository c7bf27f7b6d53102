import type { Principal } from '../../auth/principal.js';
import { tenantOf } from '../../auth/principal.js';
import type { AssetRepository } from '../../db/asset-repository.js';
import { isVisible, type Seen, type Shelf, VISIBILITY_COLUMNS } from '../../db/asset-visibility.js';
import type { AssetRow } from '../../db/types.js';

/** The columns the rule reads: every row handed to GraphQL or a route carries them. */
export const ACCESS_COLUMNS = VISIBILITY_COLUMNS;

/** Where an asset is looked for, and whether one that handed out its last download URL counts. */
interface Looking {
  shelves: readonly Shelf[];
  usedUp?: boolean;
}

/**
 * Whether `viewer` may see `asset` on one of `shelves` by the one rule (`asset-visibility.ts`,
 * which the queries apply in SQL): anyone a public live asset, a key of its org and mode
 * that holds `read:assets` its own. Keys that may only write or delete see nothing of an
 * asset beyond its id.
 */
function maySee(viewer: Principal | null, asset: Seen, { shelves, usedUp = false }: Looking): boolean {
  const own = viewer?.scopes.has('read:assets') ? tenantOf(viewer) : null;
  return shelves.some(
    (shelf) =>
      isVisible(asset, { shelf, audience: 'anyone', usedUp }) ||
      (own !== null && isVisible(asset, { shelf, audience: own, usedUp })),
  );
}

/**
 * Who may see an asset GraphQL hands out (its fields, its thumbnails, its events): one it
 * could have found live, or in its own trash (the trash list hands those out). Never one
 * that handed out its last download URL.
 */
export function mayRead(viewer: Principal | null, asset: Seen): boolean {
  return maySee(viewer, asset, { shelves: ['live', 'trash'] });
}

/**
 * Whether a signed URL granted by `grantor` still opens `asset`: a live asset the grantor
 * may read, used up or not (a URL handed out before is a capability of its own).
 */
export function mayFetch(grantor: Principal, asset: Seen): boolean {
  return maySee(grantor, asset, { shelves: ['live'], usedUp: true });
}

/** What the upload rule reads besides ACCESS_COLUMNS. */
type UploadGuarded = Seen & Pick<AssetRow, 'status' | 'received_bytes'>;

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
