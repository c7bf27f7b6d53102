import path from 'node:path';
import type { BlobStore } from './blob-store.js';
import { FsBlobStore } from './fs-blob-store.js';
import { MemoryBlobStore } from './memory-blob-store.js';

export type { BlobInfo, BlobStore, ByteRange } from './blob-store.js';
export { assertBlobKey, createBlobKey } from './blob-store.js';

/** Builds the store named by `BLOB_STORE`: `fs`, `fs:<dir>` or `memory`. */
export function createBlobStore(spec: string, dataDir: string): BlobStore {
  if (spec === 'memory') return new MemoryBlobStore();
  const dir = spec.startsWith('fs:') ? spec.slice(3) : path.join(dataDir, 'blobs');
  return new FsBlobStore({ root: path.resolve(dataDir, dir) });
}
