import { Readable } from 'node:stream';
import { assertBlobKey, type BlobInfo, type BlobStore, type ByteRange, type ListedBlob } from './blob-store.js';

/** Blobs in a Map: for tests and throwaway servers. Holds whole blobs in memory by design. */
export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<string, Buffer>();
  readonly #written = new Map<string, number>();

  async put(key: string, body: Readable): Promise<{ size: number }> {
    assertBlobKey(key);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
    const blob = Buffer.concat(chunks);
    this.#blobs.set(key, blob);
    this.#written.set(key, Date.now());
    return { size: blob.length };
  }

  async get(key: string, range?: ByteRange): Promise<Readable | null> {
    const blob = this.#blobs.get(assertBlobKey(key));
    if (!blob) return null;
    return Readable.from([range ? blob.subarray(range.start, range.end + 1) : blob]);
  }

  async head(key: string): Promise<BlobInfo | null> {
    const blob = this.#blobs.get(assertBlobKey(key));
    return blob ? { size: blob.length, modifiedAt: this.#written.get(key) } : null;
  }

  async delete(key: string): Promise<boolean> {
    this.#written.delete(key);
    return this.#blobs.delete(assertBlobKey(key));
  }

  async *list(): AsyncIterable<ListedBlob> {
    for (const [key, blob] of this.#blobs) yield { key, size: blob.length, modifiedAt: this.#written.get(key) };
  }

  async close(): Promise<void> {
    this.#blobs.clear();
  }
}
