import { createPubSub } from 'graphql-yoga';
import type { AssetEventType, AssetRow } from '../../db/types.js';

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
  let recorder: ((type: AssetEventType, asset: AssetRow) => Promise<void>) | undefined;
  return {
    /**
     * Tells subscribers of the asset; with a `type`, the change is also one of the
     * lifecycle's events, kept in the feed and sent to webhooks before this resolves.
     */
    async publish(asset: AssetRow, type?: AssetEventType): Promise<void> {
      pubsub.publish(TOPIC, asset.id, asset);
      if (type && recorder) await recorder(type, asset);
    },
    /** Where lifecycle events are kept (the feed and webhooks). */
    recordWith(record: (type: AssetEventType, asset: AssetRow) => Promise<void>): void {
      recorder = record;
    },
    subscribe(assetId: string): AsyncIterable<AssetRow> {
      return pubsub.subscribe(TOPIC, assetId);
    },
  };
}

export type AssetEvents = ReturnType<typeof createAssetEvents>;
