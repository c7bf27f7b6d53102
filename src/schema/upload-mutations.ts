import type { Readable } from 'node:stream';
import type { FileUpload } from 'graphql-upload-minimal';
import { BadUserInputError } from '../errors.js';
import { normalizeTags } from '../services/assets/naming.js';
import { type UploadFailure, uploadBatch } from '../services/uploads/batch-upload.js';
import { Asset } from './asset.js';
import { builder, tenantOf } from './builder.js';
import { idOfType } from '../global-id.js';

/** A file of the multipart request, opened; the multipart adapter fails it with domain errors only. */
async function receive(upload: Promise<FileUpload>): Promise<{ filename: string; stream: Readable }> {
  const file = await upload;
  return { filename: file.filename, stream: file.createReadStream() };
}

function directoryOf(directoryId: { typename: string; id: string } | null | undefined): string | null {
  return directoryId ? idOfType(directoryId, 'Directory') : null;
}

builder.relayMutationField(
  'uploadAsset',
  {
    inputFields: (t) => ({
      file: t.field({ type: 'Upload', required: true }),
      title: t.string(),
      description: t.string(),
      tags: t.stringList(),
      directoryId: t.globalID(),
      isPublic: t.boolean(),
    }),
  },
  {
    description: 'Stores one file sent as a GraphQL multipart request.',
    authScopes: { 'write:assets': true },
    resolve: async (_root, { input }, ctx) => {
      const file = await receive(input.file);
      const asset = await ctx.services.assets.upload(tenantOf(ctx), {
        stream: file.stream,
        filename: file.filename,
        title: input.title,
        description: input.description,
        tags: input.tags,
        directoryId: directoryOf(input.directoryId),
        isPublic: input.isPublic,
      });
      return { asset };
    },
  },
  { outputFields: (t) => ({ asset: t.field({ type: Asset, resolve: (payload) => payload.asset }) }) },
);

builder.relayMutationField(
  'replaceAssetFile',
  {
    inputFields: (t) => ({
      id: t.globalID({ required: true }),
      file: t.field({ type: 'Upload', required: true }),
    }),
  },
  {
    description:
      'Swaps the bytes of a stored asset, sent as a GraphQL multipart request: same id and URL, `version` + 1, ' +
      'metadata and renditions made again, every signed URL of the old bytes dead at once, the old bytes released.',
    authScopes: { 'write:assets': true },
    resolve: async (_root, { input }, ctx) => {
      const file = await receive(input.file);
      const asset = await ctx.services.assets.replaceFile(tenantOf(ctx), idOfType(input.id, 'Asset'), {
        stream: file.stream,
        filename: file.filename,
      });
      return { asset };
    },
  },
  { outputFields: (t) => ({ asset: t.field({ type: Asset, resolve: (payload) => payload.asset }) }) },
);

const UploadFailureRef = builder.objectRef<UploadFailure>('UploadFailure').implement({
  description: 'A file of a batch that was not stored; the others were.',
  fields: (t) => ({
    index: t.exposeInt('index', { description: 'Position in `files`.' }),
    filename: t.exposeString('filename', { nullable: true }),
    code: t.exposeString('code', { description: 'An error code of the contract, e.g. PAYLOAD_TOO_LARGE.' }),
    message: t.exposeString('message'),
  }),
});

builder.relayMutationField(
  'uploadAssets',
  {
    inputFields: (t) => ({
      files: t.field({ type: ['Upload'], required: true }),
      tags: t.stringList(),
      directoryId: t.globalID(),
      isPublic: t.boolean(),
    }),
  },
  {
    description: 'Stores up to 100 files in one request. Each file succeeds or fails on its own.',
    authScopes: { 'write:assets': true },
    resolve: async (_root, { input }, ctx) => {
      const max = ctx.services.config.maxFilesPerRequest;
      if (input.files.length > max) throw new BadUserInputError('files', `At most ${max} files per request.`);
      if (input.files.length === 0) throw new BadUserInputError('files', 'No files given.');
      const tenant = tenantOf(ctx);
      // Shared by every file: checked once, and a bad folder fails the whole batch.
      const directoryId = await ctx.services.assets.checkDirectory(tenant, directoryOf(input.directoryId));
      const tags = normalizeTags(input.tags);
      return uploadBatch(
        input.files.map((upload) => () => receive(upload)),
        (file) => ctx.services.assets.upload(tenant, { ...file, tags, directoryId, isPublic: input.isPublic }),
      );
    },
  },
  {
    outputFields: (t) => ({
      assets: t.field({ type: [Asset], resolve: (payload) => payload.assets }),
      failures: t.field({ type: [UploadFailureRef], resolve: (payload) => payload.failures }),
    }),
  },
);
