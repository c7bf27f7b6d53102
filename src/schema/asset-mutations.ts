import { Asset, AssetTypeEnum } from './asset.js';
import { builder, tenantOf } from './builder.js';
import { FocalPointInput } from './renditions.js';
import { encodeGlobalId, idOfType } from '../global-id.js';

builder.relayMutationField(
  'createAsset',
  {
    inputFields: (t) => ({
      title: t.string({ required: true }),
      type: t.field({ type: AssetTypeEnum, required: true, description: 'LINK or EXTERNAL_VIDEO.' }),
      description: t.string(),
      externalUrl: t.string({ description: 'Required: the http(s) URL the asset points to.' }),
      isPublic: t.boolean(),
      tags: t.stringList(),
      directoryId: t.globalID(),
    }),
  },
  {
    description: 'Creates a LINK or EXTERNAL_VIDEO asset; YouTube and Vimeo URLs get an `embedUrl`.',
    authScopes: { 'write:assets': true },
    resolve: async (_root, { input }, ctx) => ({
      asset: await ctx.services.assets.createExternal(tenantOf(ctx), {
        title: input.title,
        type: input.type as 'LINK',
        externalUrl: input.externalUrl ?? '',
        description: input.description,
        isPublic: input.isPublic,
        tags: input.tags,
        directoryId: input.directoryId ? idOfType(input.directoryId, 'Directory') : null,
      }),
    }),
  },
  { outputFields: (t) => ({ asset: t.field({ type: Asset, resolve: (payload) => payload.asset }) }) },
);

builder.relayMutationField(
  'updateAsset',
  {
    inputFields: (t) => ({
      id: t.globalID({ required: true }),
      title: t.string(),
      description: t.string({ description: 'null clears it.' }),
      tags: t.stringList({ description: 'Replaces every tag.' }),
      isPublic: t.boolean(),
      directoryId: t.globalID({ description: 'null takes the asset out of its folder.' }),
      focalPoint: t.field({
        type: FocalPointInput,
        description: 'Where `fit: COVER` renditions keep the picture (0–1 each); null forgets it.',
      }),
    }),
  },
  {
    // Making an asset public hands its bytes to anyone: only a key that may read them can.
    authScopes: (_root, { input }) =>
      input.isPublic ? { $all: { 'write:assets': true, 'read:assets': true } } : { 'write:assets': true },
    resolve: async (_root, { input }, ctx) => ({
      asset: await ctx.services.assets.update(tenantOf(ctx), idOfType(input.id, 'Asset'), {
        title: input.title,
        description: input.description,
        tags: input.tags,
        isPublic: input.isPublic,
        directoryId:
          input.directoryId === undefined ? undefined : input.directoryId && idOfType(input.directoryId, 'Directory'),
        focalPoint: input.focalPoint,
      }),
    }),
  },
  { outputFields: (t) => ({ asset: t.field({ type: Asset, resolve: (payload) => payload.asset }) }) },
);

builder.relayMutationField(
  'deleteAsset',
  {
    inputFields: (t) => ({
      id: t.globalID({ required: true }),
      permanently: t.boolean({
        description: 'Delete for good, bytes and all, instead of to the trash (also empties it of this asset).',
      }),
    }),
  },
  {
    description:
      'Moves the asset to the trash (gone from lists, downloads and URLs at once; `restoreAsset` brings it back ' +
      'until TRASH_RETENTION has passed), or deletes it and its bytes for good with `permanently`.',
    authScopes: { 'delete:assets': true },
    resolve: async (_root, { input }, ctx) => {
      const row = await ctx.services.assets.delete(tenantOf(ctx), idOfType(input.id, 'Asset'), {
        permanently: input.permanently ?? false,
      });
      return { deletedId: encodeGlobalId('Asset', row.id) };
    },
  },
  { outputFields: (t) => ({ deletedId: t.id({ resolve: (payload) => payload.deletedId }) }) },
);

builder.relayMutationField(
  'restoreAsset',
  { inputFields: (t) => ({ id: t.globalID({ required: true }) }) },
  {
    description: 'Brings an asset back from the trash, as it was; URLs handed out before the delete stay dead.',
    authScopes: { 'delete:assets': true },
    resolve: async (_root, { input }, ctx) => ({
      asset: await ctx.services.assets.restore(tenantOf(ctx), idOfType(input.id, 'Asset')),
    }),
  },
  { outputFields: (t) => ({ asset: t.field({ type: Asset, resolve: (payload) => payload.asset }) }) },
);
