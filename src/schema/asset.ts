import { createContextCache } from '@pothos/core';
import DataLoader from 'dataloader';
import type { AssetRow, AssetVersionRow } from '../db/types.js';
import { defaultFieldResolver, type GraphQLObjectType, type GraphQLSchema } from 'graphql';
import { ForbiddenError, NotFoundError, UnauthenticatedError } from '../errors.js';
import { type AssetMetadata, metadataOf, type StoredThumbnail } from '../services/assets/asset-metadata.js';
import { ACCESS_COLUMNS, mayRead } from '../services/assets/asset-access.js';
import { ASSET_TYPES } from '../adapters/media-type.js';
import { builder } from './builder.js';
import type { ColumnExtensions } from './projection.js';
import { encodeGlobalId } from '../global-id.js';
import type { Context } from './context.js';
import { Directory } from './directory.js';

export const AssetTypeEnum = builder.enumType('AssetType', { values: ASSET_TYPES });
export const AssetStatusEnum = builder.enumType('AssetStatus', {
  values: ['WAITING', 'PROCESSING', 'READY', 'FAILED'] as const,
});

function thumbnailUrl(publicUrl: string, assetId: string, size: number): string {
  return `${publicUrl}${downloadPath(assetId)}?thumbnail=${size}`;
}

const ThumbnailRef = builder.objectRef<StoredThumbnail & { assetId: string }>('Thumbnail').implement({
  description: 'A WebP rendition of an image, without EXIF data.',
  fields: (t) => ({
    size: t.exposeInt('size', { description: 'Longest side asked for, pixels.' }),
    width: t.exposeInt('width'),
    height: t.exposeInt('height'),
    url: t.string({ resolve: (th, _args, ctx) => thumbnailUrl(ctx.services.config.publicUrl, th.assetId, th.size) }),
  }),
});

const AssetMetadataRef = builder.objectRef<AssetMetadata & { assetId?: string }>('AssetMetadata').implement({
  description: 'Extracted details; a field is null when the file does not have it or it could not be read.',
  fields: (t) => ({
    format: t.exposeString('format', { nullable: true, description: 'Image format as read (jpeg, png, webp…).' }),
    hasAlpha: t.exposeBoolean('hasAlpha', { nullable: true }),
    dominantColor: t.exposeString('dominantColor', { nullable: true, description: '#rrggbb' }),
    placeholder: t.exposeString('placeholder', {
      nullable: true,
      description: 'A ThumbHash, base64: a blurred preview in ~25 bytes.',
    }),
    documentTitle: t.exposeString('documentTitle', { nullable: true }),
    author: t.exposeString('author', { nullable: true }),
    codec: t.exposeString('codec', { nullable: true }),
    container: t.exposeString('container', { nullable: true }),
    bitRate: t.exposeInt('bitRate', { nullable: true, description: 'Bits per second.' }),
    sampleRate: t.exposeInt('sampleRate', { nullable: true, description: 'Hz.' }),
    channels: t.exposeInt('channels', { nullable: true }),
    lineCount: t.exposeInt('lineCount', { nullable: true }),
    sourceUrl: t.exposeString('sourceUrl', { nullable: true, description: 'Where an imported asset came from.' }),
    previewFailure: t.string({
      nullable: true,
      description:
        'Why the preview of a PDF, video or audio file could not be made (the asset stays READY and downloadable); null when it was made, is not made yet, or the file has none.',
      resolve: (m) => (m.preview?.status === 'FAILED' ? (m.preview.reason ?? 'failed') : null),
    }),
    thumbnails: t.field({
      type: [ThumbnailRef],
      resolve: (m) => (m.thumbnails ?? []).map((th) => ({ ...th, assetId: m.assetId! })),
    }),
  }),
});

/** Per request, the one rule's verdict on each asset row met: asked once per row, not once per field. */
const verdicts = new WeakMap<Context, WeakMap<object, boolean>>();

/** Whether the caller of `ctx` may read `asset` (`mayRead`), asked once per row and request. */
function mayReadRow(ctx: Context, asset: AssetRow): boolean {
  let seen = verdicts.get(ctx);
  if (!seen) verdicts.set(ctx, (seen = new WeakMap()));
  let verdict = seen.get(asset);
  if (verdict === undefined) seen.set(asset, (verdict = mayRead(ctx.principal, asset)));
  return verdict;
}

/**
 * Makes every field of `Asset` but its id ask the one access rule, wherever an asset
 * appears (query, list, mutation payload, subscription event): a key without
 * read:assets learns an id from a payload, no more. The rule runs once per row of a
 * request; each field looks its verdict up (Pothos' type-level scopes cost a list of 50
 * assets 40% of its time, the rule asked per field about 2%).
 */
export function guardAssetFields(schema: GraphQLSchema): void {
  const type = schema.getType('Asset') as GraphQLObjectType;
  for (const field of Object.values(type.getFields())) {
    if (field.name === 'id') continue;
    const resolve = field.resolve ?? defaultFieldResolver;
    field.resolve = (asset: AssetRow, args, ctx: Context, info) => {
      if (!mayReadRow(ctx, asset)) {
        throw ctx.principal
          ? new ForbiddenError("Reading an asset's fields needs the read:assets scope of its org.")
          : new UnauthenticatedError();
      }
      return resolve(asset, args, ctx, info);
    };
  }
}

/** The download path of an asset's bytes, relative to `PUBLIC_URL`. */
export function downloadPath(assetId: string): string {
  return `/download/${encodeGlobalId('Asset', assetId)}`;
}

/**
 * The columns a field of `Asset` reads, for lists that fetch only what a query selects
 * (`columnsFor`): every field says, exposed ones their own column. A field that says
 * nothing makes such a list read every column.
 */
export function reads(...columns: (keyof AssetRow)[]): ColumnExtensions<keyof AssetRow> {
  return { columns };
}

/**
 * An asset as the `Asset` type holds it: a whole row (loaded by id, a mutation's payload),
 * or a row of a page carrying the columns its selected fields declare (`reads`), with its
 * tags when they are selected.
 */
export type AssetShape = AssetRow & { tags?: string[] };

/** Columns every asset row carries, whatever is selected: its identity, what `isTypeOf` checks and what access reads. */
export const ASSET_KEY_COLUMNS = ['id', 'blob_key', ...ACCESS_COLUMNS] as const satisfies (keyof AssetRow)[];

/** Earlier versions of assets, batched per request. */
const versionsLoader = createContextCache(
  (ctx: Context) => new DataLoader((ids: readonly string[]) => ctx.services.assetReads.versionsOf(ids)),
);

const AssetVersionRef = builder.objectRef<AssetVersionRow>('AssetVersion').implement({
  description: 'Bytes an asset held before `replaceAssetFile` swapped them: what they were and when.',
  fields: (t) => ({
    version: t.exposeInt('version'),
    checksum: t.exposeString('checksum', { nullable: true }),
    size: t.float({ resolve: (v) => Number(v.size) }),
    mimeType: t.exposeString('mime_type', { nullable: true }),
    filename: t.exposeString('filename', { nullable: true }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When these bytes were stored.',
      resolve: (v) => v.created_at,
    }),
    replacedAt: t.field({ type: 'DateTime', resolve: (v) => v.replaced_at }),
  }),
});

/** Tags of assets read one by one (by id, or returned by a mutation), batched per request. */
const tagsLoader = createContextCache(
  (ctx: Context) => new DataLoader((ids: readonly string[]) => ctx.services.assetReads.tagsOf(ids)),
);

export const Asset = builder.loadableNode('Asset', {
  description: 'A stored file, or a link to one elsewhere.',
  // Every field but the id asks the one access rule (`guardAssetFields`).
  id: { resolve: (asset: AssetShape) => asset.id, extensions: reads('id') },
  // No `cacheResolved`: rows of a list may carry only the columns its query selected
  // (`assets`), and must never stand in for a whole row in the loader's cache.
  // What this caller may read: anything else does not exist for it.
  load: async (ids: string[], ctx) =>
    (await ctx.services.access.findReadable(ctx.principal, ids)).map((row) => row ?? new NotFoundError()),
  // Of the rows that are nodes, only an asset's has a blob_key (null for links).
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'blob_key' in value,
  fields: (t) => ({
    title: t.exposeString('title', { extensions: reads('title') }),
    slug: t.exposeString('slug', { extensions: reads('slug') }),
    description: t.exposeString('description', { extensions: reads('description'), nullable: true }),
    type: t.field({
      type: AssetTypeEnum,
      extensions: reads('type'),
      resolve: (a) => a.type as (typeof ASSET_TYPES)[number],
    }),
    status: t.field({ type: AssetStatusEnum, extensions: reads('status'), resolve: (a) => a.status as 'READY' }),
    failureReason: t.exposeString('failure_reason', { extensions: reads('failure_reason'), nullable: true }),
    filename: t.exposeString('filename', { extensions: reads('filename'), nullable: true }),
    mimeType: t.exposeString('mime_type', { extensions: reads('mime_type'), nullable: true }),
    size: t.float({
      nullable: true,
      description: 'Bytes stored.',
      extensions: reads('size', 'blob_key'),
      resolve: (a) => (a.blob_key ? a.size : null),
    }),
    receivedBytes: t.float({
      nullable: true,
      description:
        'Bytes of the file that have arrived: during a resumable (tus) upload, how far it got; once stored, the size. Null while nothing is known.',
      extensions: reads('size', 'blob_key', 'received_bytes'),
      resolve: (a) => (a.blob_key ? a.size : a.received_bytes),
    }),
    checksum: t.exposeString('checksum', {
      extensions: reads('checksum'),
      nullable: true,
      description: '`sha256:<hex>` of the bytes.',
    }),
    width: t.exposeInt('width', { extensions: reads('width'), nullable: true }),
    height: t.exposeInt('height', { extensions: reads('height'), nullable: true }),
    pageCount: t.exposeInt('page_count', { extensions: reads('page_count'), nullable: true }),
    wordCount: t.exposeInt('word_count', { extensions: reads('word_count'), nullable: true }),
    duration: t.exposeFloat('duration', { extensions: reads('duration'), nullable: true, description: 'Seconds.' }),
    externalUrl: t.exposeString('external_url', { extensions: reads('external_url'), nullable: true }),
    embedUrl: t.exposeString('embed_url', { extensions: reads('embed_url'), nullable: true }),
    thumbnailUrl: t.string({
      nullable: true,
      description: 'The smallest thumbnail (WebP), served by the same rules as the bytes.',
      extensions: reads('id', 'metadata'),
      resolve: (a, _args, ctx) => {
        const first = metadataOf(a).thumbnails?.[0];
        return first ? thumbnailUrl(ctx.services.config.publicUrl, a.id, first.size) : null;
      },
    }),
    metadata: t.field({
      type: AssetMetadataRef,
      description: 'What processing learnt beyond the fields above.',
      extensions: reads('id', 'metadata'),
      resolve: (a) => ({ ...metadataOf(a), assetId: a.id }),
    }),
    url: t.string({
      nullable: true,
      description: 'Where the bytes are served: with an API key of the org, or by anyone when the asset is public.',
      extensions: reads('id', 'blob_key'),
      resolve: (a, _args, ctx) => (a.blob_key ? `${ctx.services.config.publicUrl}${downloadPath(a.id)}` : null),
    }),
    // A list reads its rows' tags with the page (`withTags`); an asset read on its own, in batches.
    tags: t.stringList({
      description: 'Sorted.',
      extensions: reads('id'),
      resolve: (a, _args, ctx) => a.tags ?? tagsLoader(ctx).load(a.id),
    }),
    version: t.int({
      description: '1 for the first bytes; each replaceAssetFile adds one.',
      extensions: reads('version'),
      resolve: (a) => a.version,
    }),
    versions: t.field({
      type: [AssetVersionRef],
      description: "The versions before this one, newest first; for callers of the asset's org (empty for others).",
      extensions: reads('id', 'org_id', 'mode'),
      resolve: (a, _args, ctx) =>
        ctx.tenant?.orgId === a.org_id && ctx.tenant.mode === a.mode ? versionsLoader(ctx).load(a.id) : [],
    }),
    directory: t.field({
      type: Directory,
      nullable: true,
      description: 'The folder, for callers of the same org; null for others reading a public asset.',
      extensions: reads('org_id', 'mode', 'directory_id'),
      resolve: (a, _args, ctx) =>
        ctx.tenant?.orgId === a.org_id && ctx.tenant.mode === a.mode ? a.directory_id : null,
    }),
    isPublic: t.boolean({ extensions: reads('is_public'), resolve: (a) => a.is_public === 1 }),
    downloadCount: t.exposeInt('download_count', { extensions: reads('download_count') }),
    createdAt: t.field({ type: 'DateTime', extensions: reads('created_at'), resolve: (a) => a.created_at }),
    updatedAt: t.field({ type: 'DateTime', extensions: reads('updated_at'), resolve: (a) => a.updated_at }),
    trashedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it was deleted to the trash; null while it is live.',
      extensions: reads('trashed_at'),
      resolve: (a) => a.trashed_at,
    }),
  }),
});
