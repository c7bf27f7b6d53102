import type { Principal } from '../auth/principal.js';
import { ApiKey, KeyModeEnum } from './api-keys.js';
import { builder, tenantOf } from './builder.js';

interface Usage {
  assetCount: number;
  bytesStored: number;
  bytesOccupied: number;
  trashedCount: number;
  trashedBytes: number;
  orgBytesStored: number;
  orgBytesReserved: number;
  quotaBytes: number | null;
  renditionCount: number;
  renditionBytes: number;
}

const UsageRef = builder.objectRef<Usage>('Usage').implement({
  description: "The org's storage: assets and bytes in the key's mode, and the org's total against its quota.",
  fields: (t) => ({
    assetCount: t.exposeInt('assetCount', { description: "Assets in the key's mode, the trash included." }),
    bytesStored: t.exposeFloat('bytesStored', {
      description: "Bytes of the assets in the key's mode, the trash included (it counts until purged).",
    }),
    bytesOccupied: t.exposeFloat('bytesOccupied', {
      description:
        "Bytes those assets occupy in the store: identical files of the key's mode are kept once, so this is at most bytesStored.",
    }),
    trashedCount: t.exposeInt('trashedCount', { description: 'Of those, assets in the trash.' }),
    trashedBytes: t.exposeFloat('trashedBytes', { description: 'Bytes of the assets in the trash.' }),
    orgBytesStored: t.exposeFloat('orgBytesStored', {
      description:
        'Bytes stored by the org, both modes: what the quota counts (each asset its size, whether or not its bytes are shared).',
    }),
    orgBytesReserved: t.exposeFloat('orgBytesReserved', { description: 'Bytes promised to uploads in flight.' }),
    quotaBytes: t.exposeFloat('quotaBytes', { nullable: true, description: 'The storage quota; null: none.' }),
    renditionCount: t.exposeInt('renditionCount', { description: "Image renditions kept for the org's assets." }),
    renditionBytes: t.exposeFloat('renditionBytes', {
      description: 'Bytes those renditions occupy, apart from the originals (the quota counts originals only).',
    }),
  }),
});

const RateLimitRef = builder.objectRef<{ limit: number; remaining: number }>('RateLimit').implement({
  description: 'GraphQL operations per minute for this key (root fields and aliases count); limit 0: none.',
  fields: (t) => ({ limit: t.exposeInt('limit'), remaining: t.exposeInt('remaining') }),
});

const UploadLimitsRef = builder
  .objectRef<{ concurrent: number; maxFileSize: number; maxFilesPerRequest: number }>('UploadLimits')
  .implement({
    fields: (t) => ({
      concurrent: t.exposeInt('concurrent', { description: 'Uploads this key may run at once.' }),
      maxFileSize: t.exposeFloat('maxFileSize'),
      maxFilesPerRequest: t.exposeInt('maxFilesPerRequest'),
    }),
  });

const Viewer = builder.objectRef<Principal>('Viewer').implement({
  description: 'The calling API key and its org.',
  fields: (t) => ({
    org: t.string({ resolve: (p) => p.orgId }),
    name: t.string({ resolve: (p) => p.name }),
    scopes: t.stringList({ resolve: (p) => [...p.scopes] }),
    mode: t.field({ type: KeyModeEnum, resolve: (p) => p.mode }),
    apiKey: t.field({ type: ApiKey, resolve: (p) => p.keyId }),
    usage: t.field({
      type: UsageRef,
      resolve: async (p, _args, ctx) => {
        const usage = await ctx.services.assetReads.usage(tenantOf(ctx));
        return { ...usage, quotaBytes: ctx.services.config.orgStorageQuota };
      },
    }),
    rateLimit: t.field({
      type: RateLimitRef,
      resolve: async (p, _args, ctx) => {
        if (ctx.services.config.rateLimit <= 0) return { limit: 0, remaining: 0 };
        return ctx.services.rateLimiter.peek(`key:${p.keyId}`);
      },
    }),
    uploadLimits: t.field({
      type: UploadLimitsRef,
      resolve: (_p, _args, ctx) => ({
        concurrent: ctx.services.config.uploadConcurrency,
        maxFileSize: ctx.services.config.maxFileSize,
        maxFilesPerRequest: ctx.services.config.maxFilesPerRequest,
      }),
    }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({
    type: Viewer,
    description: "The calling key: its org, scopes, mode, and the org's usage.",
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.principal!,
  }),
);
