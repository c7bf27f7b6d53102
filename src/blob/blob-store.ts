import type { Readable, Writable } from 'node:stream';

/** What `head` tells of a blob. `modifiedAt` (ms) when the store knows it. */
export interface BlobInfo {
  size: number;
  modifiedAt?: number;
}

/** One blob as the store's listing names it. */
export interface ListedBlob {
  key: string;
  size: number;
  /** Last-modified time (ms), when the store tells it. */
  modifiedAt?: number;
}

/** An inclusive byte range, as HTTP `Range` names it. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Where file bytes live. Keys come from `createBlobKey` and are checked by
 * `assertBlobKey`; a store never sees a client's filename.
 *
 * Contract (tested for every store by `test/blob-store.test.ts`):
 * - `put` consumes the stream to its end and resolves once the blob is durable
 *   and visible under `key`. When the stream errors or the store fails, it rejects
 *   and leaves nothing behind: no blob, no temporary file.
 * - `get` resolves `null` when there is no blob; otherwise a stream of the whole
 *   blob or of `range`. It throws only when the store itself fails.
 * - `head` resolves `null` when there is no blob.
 * - `delete` is idempotent: it resolves `false` when there was nothing to delete.
 */
export interface BlobStore {
  put(key: string, body: Readable): Promise<{ size: number }>;
  get(key: string, range?: ByteRange): Promise<Readable | null>;
  head(key: string): Promise<BlobInfo | null>;
  delete(key: string): Promise<boolean>;
  /**
   * Every blob in the store with its size and age, for the consistency check: page by
   * page (or streamed), however many there are. A blob written or deleted while it runs
   * may or may not be listed. Throws, naming the store and the cause, when the store fails.
   */
  list(): AsyncIterable<ListedBlob>;
  /**
   * Writes the blob (or `range` of it) to `destination` without ending it, reusing a few
   * buffers instead of allocating one per chunk. Resolves `false` when there is no blob
   * (nothing written); rejects with code `ERR_STREAM_PREMATURE_CLOSE` when the destination
   * closes first. Optional: callers fall back to `get`.
   */
  sendTo?(key: string, destination: Writable, range?: ByteRange): Promise<boolean>;
  /** The blob as a file on local disk, when the store keeps it so; lets parsers seek. Optional. */
  localPath?(key: string): string | null;
  /**
   * A URL that serves the blob straight from the store for `expiresIn` seconds, with the
   * given Content-Type and Content-Disposition. Optional: only stores clients can reach.
   */
  presignGet?(
    key: string,
    options: { expiresIn: number; contentType: string; contentDisposition: string },
  ): Promise<string>;
  /** A URL that takes the blob's bytes with PUT for `expiresIn` seconds, straight into the store. Optional. */
  presignPut?(key: string, options: { expiresIn: number }): Promise<string>;
  /**
   * Writes `body` into blob `key` from byte `offset` on (creating it at 0), replacing
   * whatever lay at or past `offset`, durably; resolves the blob's new size. For a
   * resumable upload growing in place. Optional: without it each chunk is a blob of its own.
   */
  writeAt?(key: string, offset: number, body: Readable): Promise<{ size: number }>;
  /** Removes what interrupted writes left behind, older than `olderThanMs`; returns how many. Optional. */
  sweepTemporaries?(olderThanMs: number): Promise<number>;
  close(): Promise<void>;
}

const KEY = /^[a-z0-9]{2}\/[a-z0-9][a-z0-9-]{7,63}(\.[a-z0-9]{1,16})?$/;

/** Whether `key` is one this product generated (a listing skips anything else). */
export function isBlobKey(key: string): boolean {
  return KEY.test(key);
}

/** Throws unless `key` is one this product generated: the one place keys are normalised. */
export function assertBlobKey(key: string): string {
  if (!isBlobKey(key)) throw new Error(`invalid blob key: ${JSON.stringify(key)}`);
  return key;
}

/** A fresh key, sharded by its first two characters; `suffix` names derived blobs (thumbnails). */
export function createBlobKey(id: string = crypto.randomUUID(), suffix?: string): string {
  return assertBlobKey(`${id.slice(0, 2)}/${id}${suffix ? `.${suffix}` : ''}`);
}
