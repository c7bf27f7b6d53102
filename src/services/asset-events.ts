import { createPubSub } from 'graphql-yoga';
import type { AssetRow } from '../db/types.js';

const TOPIC = 'assetgate:asset:updated';

/**
 * Every change of an asset's status or metadata, for `assetUpdated`. Without an
 * `eventTarget` the events stay in this process; with Yoga's Redis event target
 * (`REDIS_URL`) a subscriber on one gateway sees the changes made through any.
 */
export function createAssetEvents(eventTarget?: NonNullable<Parameters<typeof createPubSub>[0]>['eventTarget']) {
  const pubsub = createPubSub<{ [TOPIC]: [assetId: string, asset: AssetRow] }>(
    eventTarget ? { eventTarget } : undefined,
  );
  return {
    publish(asset: AssetRow): void {
      pubsub.publish(TOPIC, asset.id, asset);
    },
    subscribe(assetId: string): AsyncIterable<AssetRow> {
      return pubsub.subscribe(TOPIC, assetId);
    },
  };
}

export type AssetEvents = ReturnType<typeof createAssetEvents>;
