import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { FileUpload } from 'graphql-upload-minimal';
import { AppError, BadUserInputError } from '../errors.js';
import { normalizeTags } from '../services/naming.js';
import { uploadError } from '../http/use-graphql-upload.js';
import type { AssetRow } from '../db/types.js';
import { Asset } from './asset.js';
import { builder, idOfType, tenantOf } from './builder.js';
import type { Context } from './context.js';

/** A file of the multipart request, opened; parser failures (missing, truncated) become domain errors. */
async function receive(upload: Promise<FileUpload>, ctx: Context): Promise<{ filename: string; stream: Readable }> {
  let filename: string | undefined;
  try {
    const file = await upload;
    filename = file.filename;
    return { filename: file.filename, stream: file.createReadStream() };
  } catch (error) {
    const limits = { maxFileSize: ctx.services.config.maxFileSize, maxFiles: ctx.services.config.maxFilesPerRequest };
    throw Object.assign(uploadError(error, limits) as object, { filename });
  }
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
      const file = await receive(input.file, ctx);
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

interface UploadFailure {
  index: number;
  filename: string | null;
  code: string;
  message: string;
}

const UploadFailureRef = builder.objectRef<UploadFailure>('UploadFailure').implement({
  description: 'A file of a batch that was not stored; the others were.',
  fields: (t) => ({
    index: t.exposeInt('index', { description: 'Position in `files`.' }),
    filename: t.exposeString('filename', { nullable: true }),
    code: t.exposeString('code', { description: 'An error code of the contract, e.g. PAYLOAD_TOO_LARGE.' }),
    message: t.exposeString('message'),
  }),
});

/** Files of a batch being synced and recorded while the next one is read. */
const BATCH_IN_FLIGHT = 8;

type BatchOutcome = { asset: AssetRow } | { failure: UploadFailure };

/** A file's expected failure (an error code of the contract) as a batch entry; anything else is rethrown. */
function failureOf(error: unknown, index: number, filename: string | null): BatchOutcome {
  if (!(error instanceof AppError)) throw error;
  filename ??= (error as { filename?: string }).filename ?? null;
  return { failure: { index, filename, code: error.code, message: error.message } };
}

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
      const outcomes: Promise<BatchOutcome>[] = [];
      const inFlight = new Set<Promise<void>>();
      let broken = false; // an unexpected error: no more files are taken, the request fails
      try {
        for (const [index, upload] of input.files.entries()) {
          if (inFlight.size >= BATCH_IN_FLIGHT) await Promise.race(inFlight);
          if (broken) break;
          let file: Awaited<ReturnType<typeof receive>>;
          try {
            file = await receive(upload, ctx);
          } catch (error) {
            outcomes.push(Promise.resolve(failureOf(error, index, null)));
            continue;
          }
          const filename = file.filename ?? null;
          const outcome = ctx.services.assets
            .upload(tenant, { stream: file.stream, filename, tags, directoryId, isPublic: input.isPublic })
            .then(
              (asset): BatchOutcome => ({ asset }),
              (error: unknown) => failureOf(error, index, filename),
            );
          outcomes.push(outcome);
          const settled = outcome.then(
            () => undefined,
            () => {
              broken = true;
            },
          );
          inFlight.add(settled);
          void settled.then(() => inFlight.delete(settled));
          // The parser hands over file i+1 once file i's bytes are read: go on as soon as they
          // are, while file i is synced and recorded.
          await Promise.race([finished(file.stream).catch(() => undefined), settled]);
          if (!file.stream.readableEnded && !file.stream.destroyed) {
            file.stream.resume(); // its upload ended without reading it
            await finished(file.stream).catch(() => undefined);
          }
        }
      } finally {
        // Nothing keeps running after the answer, whatever failed.
        await Promise.allSettled(outcomes);
      }
      const results = await Promise.all(outcomes); // an unexpected error fails the request
      return {
        assets: results.flatMap((result) => ('asset' in result ? [result.asset] : [])),
        failures: results.flatMap((result) => ('failure' in result ? [result.failure] : [])),
      };
    },
  },
  {
    outputFields: (t) => ({
      assets: t.field({ type: [Asset], resolve: (payload) => payload.assets }),
      failures: t.field({ type: [UploadFailureRef], resolve: (payload) => payload.failures }),
    }),
  },
);
