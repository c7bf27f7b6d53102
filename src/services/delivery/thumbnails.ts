import type { StoredThumbnail } from '../assets/asset-metadata.js';
import type { Variant } from './renditions.js';

/** The quality thumbnails are encoded at (WebP). */
const THUMBNAIL_QUALITY = 80;

/**
 * The thumbnails an image has: one per size of `THUMBNAIL_SIZES`, its box the picture fitted
 * inside `size`×`size` and never enlarged, as the rendition will be made. Told from the
 * displayed dimensions alone: nothing is drawn until a thumbnail is first asked for.
 */
export function thumbnailsOf(width: number, height: number, sizes: readonly number[]): StoredThumbnail[] {
  return sizes.map((size) => {
    const scale = Math.min(1, size / Math.max(width, height));
    if (scale === 1) return { size, width, height };
    // As libvips rounds it: the long side is `size`, the other follows.
    return width >= height
      ? { size, width: size, height: Math.max(1, Math.round(height * scale)) }
      : { size, width: Math.max(1, Math.round(width * scale)), height: size };
  });
}

/**
 * The rendition a thumbnail is: WebP, fitted inside `size`×`size`, never enlarged, the first
 * frame of an animated original, without EXIF (so without location). Made on first request
 * and kept within the rendition cache's bounds like any other rendition.
 */
export function thumbnailVariant(size: number): Variant {
  return {
    width: size,
    height: size,
    fit: 'inside',
    format: 'webp',
    quality: THUMBNAIL_QUALITY,
    focal: null,
    preview: null,
    still: true,
  };
}
