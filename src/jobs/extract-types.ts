import type { AssetType } from '../adapters/media-type.js';

/** One extraction, as sent to a worker thread. */
export interface ExtractRequest {
  /** A local file with the asset's bytes. */
  path: string;
  mimeType: string;
  type: AssetType;
  maxImagePixels: number;
  /** Word counts read at most this many pages. */
  maxPdfPagesForWords: number;
}

/** What a worker learnt; absent fields could not be read or do not apply. */
/** Characters of a document's text kept for search. */
export const SEARCH_TEXT_LIMIT = 64 * 1024;

export interface ExtractResult {
  width?: number;
  height?: number;
  format?: string;
  hasAlpha?: boolean;
  dominantColor?: string;
  /** ThumbHash, base64. */
  placeholder?: string;
  pageCount?: number;
  wordCount?: number;
  lineCount?: number;
  /** The document's text (PDF pages, a text file), at most `SEARCH_TEXT_LIMIT` characters: for search only. */
  text?: string;
  documentTitle?: string;
  author?: string;
  duration?: number;
  codec?: string;
  container?: string;
  bitRate?: number;
  sampleRate?: number;
  channels?: number;
}

/** One rendition to make, as sent to a worker thread. Dimensions are final: snapped, and never past the original. */
export interface RenderRequest {
  /** A local file with the original's bytes. */
  path: string;
  /** Where to write the rendition. */
  out: string;
  maxImagePixels: number;
  /** The box to fit in; null: that side follows from the other (at least one is set). */
  width: number | null;
  height: number | null;
  fit: 'cover' | 'contain' | 'inside' | 'fill';
  format: 'webp' | 'avif' | 'jpeg' | 'png' | 'gif';
  /** 1–100. */
  quality: number;
  /** `fit=cover` keeps it in frame (0–1 from the left and the top); null: the centre of attention. */
  focal: { x: number; y: number } | null;
  /** Only the first frame of an animated original, whatever the format (thumbnails). */
  still?: boolean;
}

/** One page of a PDF to render: drawn to `picture` (PNG), then rendered as `RenderRequest` says. */
export interface PageRenderRequest extends RenderRequest {
  /** 1-based. */
  page: number;
  /** Where the drawn page is written before it is rendered. */
  picture: string;
}

export interface RenderResult {
  width: number;
  height: number;
  /** The frames of an animated original were kept. */
  animated: boolean;
  /** Frames of the original. */
  frames: number;
}
