import type { AssetRow } from '../db/types.js';
import { BadUserInputError } from '../errors.js';
import { previewStateOf } from '../services/delivery/preview-job.js';
import { FITS, FORMATS, parseRendition } from '../services/delivery/renditions.js';
import { Asset, downloadPath, reads } from './asset.js';
import { builder } from './builder.js';
import type { Context } from './context.js';

export const ImageFitEnum = builder.enumType('ImageFit', {
  description:
    'How a rendition fills its box: `COVER` crops (around the focal point), `CONTAIN` letterboxes, `INSIDE` fits within, `FILL` stretches.',
  values: FITS.map((fit) => fit.toUpperCase()) as ['COVER', 'CONTAIN', 'INSIDE', 'FILL'],
});

export const ImageFormatEnum = builder.enumType('ImageFormat', {
  description: "`AUTO` picks AVIF, then WebP, from the browser's Accept header, else the original's format.",
  values: [...FORMATS.map((format) => format.toUpperCase()), 'AUTO'] as ['WEBP', 'AVIF', 'JPEG', 'PNG', 'AUTO'],
});

export const FocalPointRef = builder.objectRef<{ x: number; y: number }>('FocalPoint').implement({
  description: 'Where the centre of attention is, 0–1 from the left and from the top.',
  fields: (t) => ({ x: t.exposeFloat('x'), y: t.exposeFloat('y') }),
});

export const FocalPointInput = builder.inputType('FocalPointInput', {
  fields: (t) => ({ x: t.float({ required: true }), y: t.float({ required: true }) }),
});

const RENDITION_COLUMNS = [
  ...['id', 'type', 'width', 'height', 'checksum', 'is_public', 'mime_type', 'blob_key'],
  ...['status', 'metadata', 'page_count', 'duration'],
] as const;

/**
 * Where renditions of `asset` are served: the stable public URL of a public asset; for a
 * private one a signed URL (default lifetime) made for the caller's key, one per call.
 */
async function renditionBase(asset: AssetRow, ctx: Context): Promise<string> {
  if (asset.is_public) return `${ctx.services.config.publicUrl}${downloadPath(asset.id)}`;
  const { url } = await ctx.services.downloadUrls.create(ctx.principal!, asset.id, { throughGateway: true });
  return url;
}

/** The query of a rendition URL, checked as the download route will check it. */
function renditionQuery(asset: AssetRow, params: Record<string, string | number | null | undefined>): URLSearchParams {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value != null) query.set(name, String(value).toLowerCase());
  parseRendition(query);
  query.set('v', (asset.checksum ?? '').replace(/^sha256:/, '').slice(0, 12));
  return query;
}

/** An image, or a PDF, video or audio file whose preview was made: what renditions can be made of. */
const isImage = (asset: AssetRow) =>
  !!asset.blob_key &&
  (asset.type === 'IMAGE' ? !!asset.width && !!asset.height : previewStateOf(asset)?.status === 'READY');

builder.objectFields(Asset, (t) => ({
  focalPoint: t.field({
    type: FocalPointRef,
    nullable: true,
    description: 'Where `fit: COVER` renditions keep the picture; null: the centre of attention is found.',
    extensions: reads('focal_x', 'focal_y'),
    resolve: (a) => (a.focal_x !== null && a.focal_y !== null ? { x: a.focal_x, y: a.focal_y } : null),
  }),
  imageUrl: t.string({
    nullable: true,
    description:
      'A rendition of an image, or of the preview of a PDF (`page`, default 1), a video (the frame at `time` seconds, default the poster frame) or an audio file (its waveform) once that preview was made (null for other assets): never larger than the original, the width snapped up to IMAGE_WIDTHS and, with both given, the height following the asked width:height ratio (a height alone snaps up like a width). Cacheable for a year: the URL names the version of the bytes.',
    args: {
      width: t.arg.int(),
      height: t.arg.int(),
      fit: t.arg({ type: ImageFitEnum }),
      format: t.arg({ type: ImageFormatEnum }),
      page: t.arg.int({ description: 'The page of a PDF, 1-based.' }),
      time: t.arg.float({ description: "The time of a video's frame, seconds." }),
    },
    extensions: reads(...RENDITION_COLUMNS),
    resolve: async (a, args, ctx) => {
      if (!isImage(a)) return null;
      const query = renditionQuery(a, {
        w: args.width,
        h: args.height,
        fit: args.fit,
        format: args.format ?? 'AUTO',
        page: args.page,
        t: args.time == null ? null : Number(args.time.toFixed(3)),
      });
      // A page or time the asset does not have is the caller's mistake now, not a broken URL later.
      ctx.services.renditions.variantOf(a, parseRendition(query)!);
      return `${await renditionBase(a, ctx)}?${query}`;
    },
  }),
  srcSet: t.string({
    nullable: true,
    description:
      'An `<img srcset>` of renditions at `widths` (of an image, or of the first page, poster frame or waveform of a PDF, video or audio file once made; null for other assets), each with the width it really has: widths past the original collapse into one.',
    args: { widths: t.arg.intList({ required: true }), format: t.arg({ type: ImageFormatEnum }) },
    extensions: reads(...RENDITION_COLUMNS),
    resolve: async (a, args, ctx) => {
      if (!isImage(a)) return null;
      if (args.widths.length === 0 || args.widths.length > 20) {
        throw new BadUserInputError('widths', 'widths lists 1 to 20 widths.');
      }
      const base = await renditionBase(a, ctx);
      const entries = new Map<number, string>();
      for (const width of args.widths) {
        const query = renditionQuery(a, { w: width, format: args.format ?? 'AUTO' });
        const real = ctx.services.renditions.variantOf(a, parseRendition(query)!).width!;
        if (!entries.has(real)) entries.set(real, `${base}?${query} ${real}w`);
      }
      return [...entries.entries()]
        .sort(([x], [y]) => x - y)
        .map(([, entry]) => entry)
        .join(', ');
    },
  }),
}));
