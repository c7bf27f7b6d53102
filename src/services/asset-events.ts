import { createPubSub } from 'graphql-yoga';
import type { AssetRow } from '../db/types.js';

/**
 * Every change of an asset's status or metadata, for `assetUpdated`. In-process:
 * a subscriber sees the changes made by the gateway it is connected to.
 */
export function createAssetEvents() {
  const pubsub = createPubSub<{ 'asset:updated': [assetId: string, asset: AssetRow] }>();
  return {
    publish(asset: AssetRow): void {
      pubsub.publish('asset:updated', asset.id, asset);
    },
    subscribe(assetId: string): AsyncIterable<AssetRow> {
      return pubsub.subscribe('asset:updated', assetId);
    },
  };
}

export type AssetEvents = ReturnType<typeof createAssetEvents>;
