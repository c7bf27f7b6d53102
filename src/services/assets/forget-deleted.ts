import type { Repositories } from '../../db/repositories.js';
import type { AssetRow } from '../../db/types.js';
import { derivedKeysOf } from './asset-metadata.js';

/**
 * What deleting an asset's row undoes, in the transaction `tx` that deleted it: the
 * org's stored bytes and the quota its resumable upload holds are given back (the org's
 * row first), its bytes lose a holder (their copy's row second), and its upload parts
 * and renditions are forgotten. Their blob keys (and the bytes', when no other asset
 * holds them) are pushed to `blobKeys`, to be deleted once the transaction is done: a
 * crash between leaves orphans `fsck` removes, never a row without its bytes.
 */
export async function forgetDeleted(tx: Repositories, row: AssetRow, blobKeys: string[]): Promise<void> {
  await tx.orgs.free(row.org_id, row.blob_key ? row.size : 0);
  await tx.orgs.release(row.org_id, row.upload_reserved);
  if (row.blob_key && (await tx.copies.release(row.blob_key))) blobKeys.push(row.blob_key);
  blobKeys.push(
    ...derivedKeysOf(row),
    ...(await tx.uploadParts.deleteAll(row.id)),
    ...(await tx.renditions.deleteAll(row.id)),
  );
}
