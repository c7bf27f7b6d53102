import type { IncomingMessage } from 'node:http';
import { presentedKey } from '../auth/api-key-service.js';
import type { Principal } from '../auth/principal.js';
import type { BlobStore } from '../blob/index.js';
import type { Config } from '../config.js';
import { createDownloadRoute, createSignedDownloadRoute } from '../http/download-route.js';
import { annotate } from '../http/observe.js';
import { createTus } from '../http/tus-route.js';
import { createUploadRoute } from '../http/upload-route.js';
import type { Services } from '../schema/context.js';
import type { HotRenditions } from '../services/delivery/hot-renditions.js';
import type { Feature } from './feature.js';

/** What the plain HTTP routes are built from. */
export interface HttpRoutesOptions {
  config: Config;
  services: Services;
  blobs: BlobStore;
  /** Warm renditions held in memory; none when RENDITION_HOT_MAX or RENDITION_HOT_TTL is 0. */
  hot?: HotRenditions;
  logError: (error: unknown) => void;
}

/** Downloads (by key and signed), signed uploads and tus: the routes besides GraphQL. */
export function createHttpRoutes({ config, services, blobs, hot, logError }: HttpRoutesOptions): Feature {
  const authenticate = async (req: IncomingMessage): Promise<Principal | null> => {
    const key = presentedKey((name) => req.headers[name] as string | undefined);
    const principal = key === null ? null : await services.apiKeys.authenticate(key);
    if (principal) annotate(req, { org: principal.orgId, keyId: principal.keyId });
    return principal;
  };
  const tus = createTus({
    uploads: services.resumableUploads,
    slots: services.uploadSlots,
    authenticate,
    publicUrl: config.publicUrl,
    maxFileSize: config.maxFileSize,
    logError,
  });
  // What is held of an asset goes the moment it changes, through any gateway that publishes to this one.
  const stopForgetting = hot
    ? services.events.onChange((assetId) => hot.forget(assetId), logError)
    : async () => undefined;
  return {
    routes: {
      '/download/': createDownloadRoute({
        access: services.access,
        countDownload: (id) => services.downloadUrls.countDownload(id),
        blobs,
        renditions: services.renditions,
        authenticate,
        hot,
      }),
      '/dl/': createSignedDownloadRoute({
        countDownload: (id) => services.downloadUrls.countDownload(id),
        blobs,
        renditions: services.renditions,
        urls: services.downloadUrls,
      }),
      '/up/': createUploadRoute({
        uploads: services.uploadUrls,
        resumable: services.resumableUploads,
        tus,
        maxFileSize: config.maxFileSize,
      }),
      '/tus/': tus.route,
    },
    close: stopForgetting,
  };
}
