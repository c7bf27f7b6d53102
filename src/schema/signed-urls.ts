import { Asset } from './asset.js';
import { builder } from './builder.js';
import { idOfType } from '../global-id.js';

builder.relayMutationField(
  'createUploadUrl',
  {
    inputFields: (t) => ({
      filename: t.string({ required: true }),
      contentType: t.string({ description: 'Informational: the type is judged from the bytes.' }),
      size: t.float({ description: 'Bytes the PUT will carry; another size fails the upload.' }),
      checksum: t.string({ description: '`sha256:<hex>` of the bytes; another digest fails the upload.' }),
      title: t.string(),
      description: t.string(),
      tags: t.stringList(),
      directoryId: t.globalID(),
      isPublic: t.boolean(),
      reuseStored: t.boolean({
        description:
          'With `checksum`: when the org already stores those bytes (in this mode), the asset is made on them at once, ' +
          'PROCESSING, and `uploadUrl` is null: nothing to upload. Needs read:assets as well.',
      }),
    }),
  },
  {
    description:
      'Step one of a two-step upload: creates the asset in WAITING and returns a URL that takes the bytes with PUT, once. ' +
      'With `reuseStored`, bytes the org already stores need no upload.',
    authScopes: { 'write:assets': true },
    resolve: async (_root, { input }, ctx) =>
      ctx.services.uploadUrls.create(ctx.principal!, {
        ...input,
        directoryId: input.directoryId ? idOfType(input.directoryId, 'Directory') : null,
      }),
  },
  {
    outputFields: (t) => ({
      asset: t.field({ type: Asset, resolve: (payload) => payload.asset }),
      uploadUrl: t.string({
        nullable: true,
        description: 'Null when the asset was made on bytes the org already stores (`reuseStored`).',
        resolve: (payload) => payload.uploadUrl,
      }),
      expiresAt: t.field({
        type: 'DateTime',
        nullable: true,
        description: 'When `uploadUrl` stops working; null with it.',
        resolve: (payload) => payload.expiresAt,
      }),
    }),
  },
);

builder.relayMutationField(
  'createReplaceUrl',
  {
    inputFields: (t) => ({
      id: t.globalID({ required: true }),
      filename: t.string({ description: 'The new file name; the old one stays when absent.' }),
      size: t.float({ description: 'Bytes the PUT will carry; another size fails the replacement.' }),
      checksum: t.string({ description: '`sha256:<hex>` of the new bytes; another digest fails the replacement.' }),
    }),
  },
  {
    description:
      '`replaceAssetFile` by URL: a PUT of the raw bytes to `uploadUrl` replaces those of the asset as the mutation ' +
      'would (same id and URL, `version` + 1). Good for one replacement of the version it was made for: CONFLICT after.',
    authScopes: { 'write:assets': true },
    resolve: (_root, { input }, ctx) =>
      ctx.services.uploadUrls.createReplace(ctx.principal!, { ...input, id: idOfType(input.id, 'Asset') }),
  },
  {
    outputFields: (t) => ({
      asset: t.field({ type: Asset, resolve: (payload) => payload.asset }),
      uploadUrl: t.string({ resolve: (payload) => payload.uploadUrl }),
      expiresAt: t.field({ type: 'DateTime', resolve: (payload) => payload.expiresAt }),
    }),
  },
);

builder.relayMutationField(
  'createDownloadUrl',
  {
    inputFields: (t) => ({
      id: t.globalID({ required: true }),
      expiresIn: t.int({ description: 'Seconds; default and maximum are set by the deployment.' }),
      maxFetches: t.int({
        description: 'How many GETs may fetch the bytes; unlimited when absent. HEAD does not count.',
      }),
    }),
  },
  {
    description: 'A signed URL that serves the bytes without a key, until it expires or its fetches are used up.',
    authScopes: { 'read:assets': true },
    resolve: (_root, { input }, ctx) =>
      ctx.services.downloadUrls.create(ctx.principal!, idOfType(input.id, 'Asset'), input),
  },
  {
    outputFields: (t) => ({
      url: t.string({ resolve: (payload) => payload.url }),
      expiresAt: t.field({ type: 'DateTime', resolve: (payload) => payload.expiresAt }),
      remainingFetches: t.int({ nullable: true, resolve: (payload) => payload.remainingFetches }),
    }),
  },
);
