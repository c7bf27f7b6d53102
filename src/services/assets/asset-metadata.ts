import type { AssetRow } from '../../db/types.js';

/**
 * A thumbnail of an image: its size and box. Thumbnails are renditions made on first
 * request; only images processed before that was so name a blob of their own (`key`,
 * `checksum`, `bytes`), which is served as it is.
 */
export interface StoredThumbnail {
  size: number;
  width: number;
  height: number;
  key?: string;
  checksum?: string;
  bytes?: number;
}

/** What extraction learnt beyond the contract's own columns; kept as JSON on the asset. */
export interface AssetMetadata {
  format?: string;
  hasAlpha?: boolean;
  dominantColor?: string;
  /** ThumbHash, base64. */
  placeholder?: string;
  documentTitle?: string;
  author?: string;
  codec?: string;
  container?: string;
  bitRate?: number;
  sampleRate?: number;
  channels?: number;
  lineCount?: number;
  /** Where an imported asset was fetched from. */
  sourceUrl?: string;
  thumbnails?: StoredThumbnail[];
  /** A PDF's, video's or audio file's preview: made (READY), or why it could not be (FAILED). */
  preview?: { status: 'READY' | 'FAILED'; reason?: string };
}

export function metadataOf(asset: Pick<AssetRow, 'metadata'>): AssetMetadata {
  return asset.metadata ? (JSON.parse(asset.metadata) as AssetMetadata) : {};
}

/** Blobs made from an asset's bytes for it alone and named by its row: the thumbnails of images processed before they became renditions. */
export function derivedKeysOf(asset: Pick<AssetRow, 'thumbnail_key' | 'metadata'>): string[] {
  const keys = new Set<string>();
  if (asset.thumbnail_key) keys.add(asset.thumbnail_key);
  for (const thumbnail of metadataOf(asset).thumbnails ?? []) if (thumbnail.key) keys.add(thumbnail.key);
  return [...keys];
}

/** Every blob an asset holds: its bytes (perhaps shared with other assets of its org) and its thumbnails. */
export function blobKeysOf(asset: Pick<AssetRow, 'blob_key' | 'thumbnail_key' | 'metadata'>): string[] {
  return [...new Set([...(asset.blob_key ? [asset.blob_key] : []), ...derivedKeysOf(asset)])];
}
