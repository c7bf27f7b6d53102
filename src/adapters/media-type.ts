import { fileTypeFromBuffer } from 'file-type';

/** The contract's asset types. */
export const ASSET_TYPES = [
  'IMAGE',
  'VIDEO',
  'AUDIO',
  'PDF',
  'DOCUMENT',
  'DATA',
  'LINK',
  'EXTERNAL_VIDEO',
  'OTHER',
] as const;
export type AssetType = (typeof ASSET_TYPES)[number];

const DOCUMENT_TYPES = new Set([
  'text/plain',
  'text/markdown',
  'application/rtf',
  'application/msword',
  'application/x-cfb',
  'application/epub+zip',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text',
  'application/vnd.oasis.opendocument.presentation',
  'application/vnd.ms-powerpoint',
]);

const DATA_TYPES = new Set([
  'application/json',
  'application/xml',
  'text/csv',
  'text/tab-separated-values',
  'application/x-ndjson',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.oasis.opendocument.spreadsheet',
  'application/vnd.ms-excel',
  'application/x-sqlite3',
  'application/vnd.apache.parquet',
]);

/** Types a browser would run or render actively: always served as attachments, sandboxed. */
const ACTIVE_TYPES = new Set([
  'text/html',
  'image/svg+xml',
  'application/xml',
  'text/xml',
  'text/javascript',
  'application/xhtml+xml',
]);

/** Classifies a media type into the contract's `AssetType`. */
export function classify(mimeType: string): AssetType {
  if (mimeType === 'application/pdf') return 'PDF';
  if (mimeType.startsWith('image/')) return 'IMAGE';
  if (mimeType.startsWith('video/')) return 'VIDEO';
  if (mimeType.startsWith('audio/')) return 'AUDIO';
  if (DOCUMENT_TYPES.has(mimeType)) return 'DOCUMENT';
  if (DATA_TYPES.has(mimeType)) return 'DATA';
  return 'OTHER';
}

/** Whether bytes of this type must never be rendered inline by a browser. */
export function isActiveType(mimeType: string): boolean {
  return ACTIVE_TYPES.has(mimeType);
}

/** Text types an extension may choose between once the bytes are known to be plain text. */
const TEXT_BY_EXTENSION: Record<string, string> = {
  txt: 'text/plain',
  text: 'text/plain',
  log: 'text/plain',
  md: 'text/markdown',
  markdown: 'text/markdown',
  csv: 'text/csv',
  tsv: 'text/tab-separated-values',
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  jsonl: 'application/x-ndjson',
  js: 'text/javascript',
  mjs: 'text/javascript',
  htm: 'text/html',
  html: 'text/html',
  xml: 'application/xml',
};

function decodeText(prefix: Buffer): string | null {
  if (prefix.includes(0)) return null;
  try {
    // stream: true tolerates a character cut in half at the end of the prefix.
    return new TextDecoder('utf-8', { fatal: true }).decode(prefix, { stream: true });
  } catch {
    return null; // not UTF-8: binary of a kind file-type does not know
  }
}

/**
 * The media type of a file, judged from its first bytes. A client's filename can
 * only pick between harmless text types once the bytes are known to be text, and
 * markup is recognised from the bytes whatever the name says.
 */
export async function sniffMediaType(prefix: Buffer, filename: string | null): Promise<string> {
  const detected = await fileTypeFromBuffer(prefix);
  // file-type calls every XML document application/xml: SVG is told apart below.
  if (detected && detected.mime !== 'application/xml') return detected.mime;
  const text = decodeText(prefix);
  if (text === null) return 'application/octet-stream';
  const head = text.slice(0, 4096).trimStart().toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return 'image/svg+xml';
  if (/^<(!doctype html|html|head|body|script|iframe)[\s>]/.test(head)) return 'text/html';
  if (head.startsWith('<?xml')) return 'application/xml';
  const extension = filename?.toLowerCase().match(/\.([a-z0-9]+)$/)?.[1];
  const byName = extension ? TEXT_BY_EXTENSION[extension] : undefined;
  // A name claiming markup for bytes that are not markup is not believed.
  if (byName && !isActiveType(byName)) return byName;
  if (byName === 'text/javascript') return byName;
  return 'text/plain';
}
