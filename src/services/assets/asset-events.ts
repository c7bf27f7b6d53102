import { createPubSub } from 'graphql-yoga';
import type { AssetEventType, AssetRow } from '../../db/types.js';

const TOPIC = 'assetgate:asset:updated';
/** The id of every asset that changed, for what holds assets' answers (`onChange`). */
const CHANGED = 'assetgate:asset:changed';

/**
 * Every change of an asset's status or metadata, for `assetUpdated`. Without an
 * `eventTarget` the events stay in this process; with Yoga's Redis event target
 * (`REDIS_URL`) a subscriber on one gateway sees the changes made through any.
 */
export function createAssetEvents(eventTarget?: NonNullable<Parameters<typeof createPubSub>[0]>['eventTarget']) {
  const pubsub = createPubSub<{ [TOPIC]: [assetId: string, asset: AssetRow]; [CHANGED]: [assetId: string] }>(
    eventTarget ? { eventTarget } : undefined,
  );
  let recorder: ((type: AssetEventType, asset: AssetRow) => Promise<void>) | undefined;
  const listeners = new Set<(assetId: string) => void>();
  return {
    /**
     * Tells subscribers of the asset; with a `type`, the change is also one of the
     * lifecycle's events, kept in the feed and sent to webhooks before this resolves.
     */
    async publish(asset: AssetRow, type?: AssetEventType): Promise<void> {
      pubsub.publish(TOPIC, asset.id, asset);
      // This process's own listeners at once; the other gateways' through the event target.
      for (const listener of listeners) listener(asset.id);
      if (eventTarget) pubsub.publish(CHANGED, asset.id);
      if (type && recorder) await recorder(type, asset);
    },
    /** Where lifecycle events are kept (the feed and webhooks). */
    recordWith(record: (type: AssetEventType, asset: AssetRow) => Promise<void>): void {
      recorder = record;
    },
    subscribe(assetId: string): AsyncIterable<AssetRow> {
      return pubsub.subscribe(TOPIC, assetId);
    },
    /**
     * Calls `listener` with the id of every asset that changes, until the returned stop is
     * called: at once for a change made by this process, in a moment for one made by another
     * gateway on the same event target (whose own changes come back to it too: twice is harmless).
     * `onError`: where a failure of the shared subscription is reported.
     */
    onChange(listener: (assetId: string) => void, onError: (error: unknown) => void): () => Promise<void> {
      listeners.add(listener);
      if (!eventTarget) {
        return async () => {
          listeners.delete(listener);
        };
      }
      const changes = pubsub.subscribe(CHANGED)[Symbol.asyncIterator]();
      // A failing subscription is logged, never an unhandled rejection; changes then reach this
      // process within RENDITION_HOT_TTL instead of at once.
      const listening = (async () => {
        for (let next = await changes.next(); !next.done; next = await changes.next()) listener(next.value);
      })().catch(onError);
      return async () => {
        listeners.delete(listener);
        await changes.return?.();
        await listening;
      };
    },
  };
}

export type AssetEvents = ReturnType<typeof createAssetEvents>;
