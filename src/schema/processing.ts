import { NotFoundError } from '../errors.js';
import { Asset } from './asset.js';
import { builder, tenantOf } from './builder.js';
import { decodeGlobalId, idOfType } from '../global-id.js';

builder.relayMutationField(
  'reprocessAsset',
  { inputFields: (t) => ({ id: t.globalID({ required: true }) }) },
  {
    description: 'Runs extraction again: the asset goes PROCESSING, then READY or FAILED.',
    authScopes: { 'write:assets': true },
    resolve: async (_root, { input }, ctx) => ({
      asset: await ctx.services.assets.reprocess(tenantOf(ctx), idOfType(input.id, 'Asset')),
    }),
  },
  { outputFields: (t) => ({ asset: t.field({ type: Asset, resolve: (payload) => payload.asset }) }) },
);

builder.relayMutationField(
  'importAssetFromUrl',
  {
    inputFields: (t) => ({
      url: t.string({ required: true, description: 'An http(s) URL on the public internet.' }),
      title: t.string(),
      filename: t.string({ description: 'Default: the last part of the URL path.' }),
      description: t.string(),
      tags: t.stringList(),
      directoryId: t.globalID(),
      isPublic: t.boolean(),
    }),
  },
  {
    description: 'Fetches a file from a URL in the background: answers at once with a WAITING asset.',
    authScopes: { 'write:assets': true },
    resolve: async (_root, { input }, ctx) => ({
      asset: await ctx.services.urlImports.create(ctx.principal!, {
        ...input,
        directoryId: input.directoryId ? idOfType(input.directoryId, 'Directory') : null,
      }),
    }),
  },
  { outputFields: (t) => ({ asset: t.field({ type: Asset, resolve: (payload) => payload.asset }) }) },
);

builder.subscriptionType({});

builder.subscriptionField('assetUpdated', (t) =>
  t.field({
    type: Asset,
    description: 'Every change of the asset: status, metadata, fields. Over SSE (`Accept: text/event-stream`).',
    authScopes: { $any: { 'read:assets': true, anonymous: true } },
    args: { id: t.arg.id({ required: true }) },
    // Checked when the stream opens, and again at every event: a stream that loses
    // access (the asset made private, the key revoked) ends.
    subscribe: async (_root, args, ctx) => {
      const { typename, id } = decodeGlobalId(args.id);
      if (typename !== 'Asset') throw new NotFoundError();
      const { access, events } = ctx.services;
      const [asset] = await access.findReadable(ctx.principal, [id]);
      if (!asset) throw new NotFoundError();
      return access.whileReadable(ctx.principal, events.subscribe(id));
    },
    resolve: (asset) => asset,
  }),
);
