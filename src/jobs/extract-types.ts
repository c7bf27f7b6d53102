import type { AssetType } from '../services/media-type.js';

/** One extraction, as sent to a worker thread. */
export interface ExtractRequest {
  /** A local file with the asset's bytes. */
  path: string;
  mimeType: string;
  type: AssetType;
  maxImagePixels: number;
  /** Word counts read at most this many pages. */
  maxPdfPagesForWords: number;
  /** Thumbnails to write (WebP), longest side `size`. */
  thumbnails: { size: number; path: string }[];
}

/** What a worker learnt; absent fields could not be read or do not apply. */
export interface ExtractResult {
  width?: number;
  height?: number;
  format?: string;
  hasAlpha?: boolean;
  dominantColor?: string;
  /** ThumbHash, base64. */
  placeholder?: string;
  thumbnails?: { size: number; path: string; width: number; height: number }[];
  pageCount?: number;
  wordCount?: number;
  lineCount?: number;
  documentTitle?: string;
  author?: string;
  duration?: number;
  codec?: string;
  container?: string;
  bitRate?: number;
  sampleRate?: number;
  channels?: number;
}
