import path from 'node:path';
import type { BlobStore } from './blob-store.js';
import { FsBlobStore } from './fs-blob-store.js';
import { MemoryBlobStore } from './memory-blob-store.js';
import { S3BlobStore } from './s3-blob-store.js';
import type { S3Config } from '../config.js';

export type { BlobInfo, BlobStore, ByteRange, ListedBlob } from './blob-store.js';
export { assertBlobKey, createBlobKey } from './blob-store.js';

/** Builds the store named by `BLOB_STORE`: `fs`, `fs:<dir>`, `memory` or `s3://BUCKET[/PREFIX]`. */
export function createBlobStore(spec: string, dataDir: string, s3?: S3Config): BlobStore {
  if (spec === 'memory') return new MemoryBlobStore();
  if (spec.startsWith('s3://')) {
    const [bucket, ...prefix] = spec.slice('s3://'.length).split('/');
    return new S3BlobStore({
      bucket,
      prefix: prefix.join('/') || undefined,
      endpoint: s3?.endpoint ?? undefined,
      region: s3?.region,
      forcePathStyle: s3?.forcePathStyle,
      credentials: s3?.credentials ?? undefined,
    });
  }
  const dir = spec.startsWith('fs:') ? spec.slice(3) : path.join(dataDir, 'blobs');
  return new FsBlobStore({ root: path.resolve(dataDir, dir) });
}
