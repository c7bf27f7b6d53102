import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import {
  assertBlobKey,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  isBlobKey,
  type ListedBlob,
} from './blob-store.js';

/** Configuration of `FsBlobStore`. */
export interface FsBlobStoreConfig {
  /** Folder that holds the blobs; created on first write. */
  root: string;
  /** fsync each blob and its folder before `put` resolves. @default true */
  durable?: boolean;
}

const TEMP = /\.tmp-[0-9a-f]+$/;
const WRITE_BATCH = 1024 * 1024;
/** Larger reads than the 64 KiB default: fewer syscalls per downloaded MiB. */
const READ_CHUNK = 256 * 1024;
const FLUSH_EVERY = 32 * 1024 * 1024;
/** Buffers a download turns over: at most this many chunks are in the destination's hands. */
const SEND_BUFFERS = 4;

/**
 * Blobs as files under `root`. A write goes to a temporary file in the target's
 * own folder, is fsynced and renamed into place, so a reader or a crash never
 * sees half a blob.
 */
export class FsBlobStore implements BlobStore {
  readonly #root: string;
  readonly #durable: boolean;
  readonly #folders = new Set<string>();

  constructor(config: FsBlobStoreConfig) {
    this.#root = path.resolve(config.root);
    this.#durable = config.durable ?? true;
  }

  #path(key: string): string {
    return path.join(this.#root, assertBlobKey(key));
  }

  async put(key: string, body: Readable): Promise<{ size: number }> {
    const target = this.#path(key);
    const dir = path.dirname(target);
    const temp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    if (!this.#folders.has(dir)) {
      await fsp.mkdir(dir, { recursive: true });
      this.#folders.add(dir); // 256 shard folders at most: no mkdir per upload
    }
    const handle = await fsp.open(temp, 'wx');
    let closed = false;
    try {
      const size = await this.#write(handle, body);
      if (this.#durable) await handle.sync();
      await handle.close();
      closed = true;
      await fsp.rename(temp, target);
      if (this.#durable) await syncPath(dir);
      return { size };
    } catch (error) {
      if (!closed) await handle.close().catch(() => undefined);
      await fsp.rm(temp, { force: true });
      throw error;
    }
  }

  /**
   * Writes `body` into blob `key` from byte `offset` on, creating it at 0: a resumable
   * upload's bytes, growing in place. What lay at or past `offset` (the end of a chunk
   * that was never acknowledged) is cut off first. The bytes are on disk when it resolves.
   */
  async writeAt(key: string, offset: number, body: Readable): Promise<{ size: number }> {
    const target = this.#path(key);
    const dir = path.dirname(target);
    if (!this.#folders.has(dir)) {
      await fsp.mkdir(dir, { recursive: true });
      this.#folders.add(dir);
    }
    // Past 0 the blob must be there: its bytes before `offset` were acknowledged.
    const handle = await fsp.open(target, offset === 0 ? 'w' : 'r+');
    let size: number;
    try {
      const { size: had } = await handle.stat();
      if (had < offset) throw new Error(`blob ${key} has ${had} bytes, fewer than the ${offset} acknowledged`);
      await handle.truncate(offset);
      // Chunks are small next to whole files: flush every 2 MiB as they arrive, so little is left for the last sync.
      size = offset + (await this.#write(handle, body, { start: offset, flushEvery: 2 * 1024 * 1024 }));
      if (this.#durable) await handle.datasync();
    } finally {
      await handle.close();
    }
    if (offset === 0 && this.#durable) await syncPath(dir);
    return { size };
  }

  /**
   * Writes in batches of about 1 MiB (one writev each), one batch on its way to the file
   * while the next fills: reading the body never waits for the disk unless two batches
   * are pending. Durable stores also start flushing to disk every 32 MiB while the rest
   * still arrives, so the final fsync has little left to do instead of the whole file.
   * The body lands at byte `start` of the file on (0 unless told).
   */
  async #write(
    handle: fsp.FileHandle,
    body: Readable,
    { start = 0, flushEvery = FLUSH_EVERY }: { start?: number; flushEvery?: number } = {},
  ): Promise<number> {
    let batch: Buffer[] = [];
    let batched = 0;
    let size = 0;
    let flushedAt = 0;
    // Awaited later, so marked handled now: a failure must not be an unhandled rejection meanwhile.
    const started = <T>(promise: Promise<T>) => (promise.catch(() => undefined), promise);
    let writing: Promise<unknown> | undefined;
    let flushing: Promise<void> | undefined;
    let position = start;
    const write = () => {
      const buffers = batch;
      const at = position;
      position += batched;
      batch = [];
      batched = 0;
      return started(handle.writev(buffers, at));
    };
    try {
      for await (const chunk of body) {
        const buffer = chunk as Buffer;
        batch.push(buffer);
        batched += buffer.length;
        size += buffer.length;
        if (batched < WRITE_BATCH) continue;
        await writing; // one batch in flight at most: memory stays bounded
        writing = write();
        if (this.#durable && size - flushedAt >= flushEvery) {
          await flushing;
          flushedAt = size;
          flushing = started(handle.datasync());
        }
      }
      await writing;
      if (batched > 0) await write();
      await flushing;
    } finally {
      // Never leave a write or a sync running on a handle about to close.
      await Promise.allSettled([writing, flushing]);
    }
    return size;
  }

  async get(key: string, range?: ByteRange): Promise<Readable | null> {
    const handle = await ifPresent(fsp.open(this.#path(key), 'r'));
    // Opening first means a blob deleted after this point still streams whole.
    return (
      handle?.createReadStream({ highWaterMark: READ_CHUNK, ...(range && { start: range.start, end: range.end }) }) ??
      null
    );
  }

  /**
   * Reads into SEND_BUFFERS buffers in turn, each written again once the destination has
   * taken the previous bytes from it: a long download allocates nothing per chunk. (With a
   * new buffer per chunk, every 64 MiB sent forced a full garbage collection, which on a
   * server with a busy heap cost a download a tenth of its speed.)
   */
  async sendTo(key: string, destination: Writable, range?: ByteRange): Promise<boolean> {
    const handle = await ifPresent(fsp.open(this.#path(key), 'r'));
    if (!handle) return false;
    try {
      const end = range ? range.end + 1 : (await handle.stat()).size;
      await sendFrom(handle, { start: range?.start ?? 0, end }, destination);
      return true;
    } finally {
      await handle.close();
    }
  }

  localPath(key: string): string {
    return this.#path(key);
  }

  async head(key: string): Promise<BlobInfo | null> {
    const stat = await ifPresent(fsp.stat(this.#path(key)));
    return stat ? { size: stat.size, modifiedAt: stat.mtimeMs } : null;
  }

  async delete(key: string): Promise<boolean> {
    return (await ifPresent(fsp.unlink(this.#path(key)).then(() => true))) ?? false;
  }

  /**
   * Streams the folders instead of reading each whole: a shard of a million blobs costs one
   * entry at a time. Temporary files and names that are not blob keys are not blobs; an entry
   * deleted between its listing and its stat is skipped. Any other failure is thrown.
   */
  async *list(): AsyncIterable<ListedBlob> {
    const shards = await ifPresent(fsp.opendir(this.#root));
    for await (const shard of shards ?? []) {
      if (!shard.isDirectory()) continue;
      const dir = path.join(this.#root, shard.name);
      for await (const entry of (await ifPresent(fsp.opendir(dir))) ?? []) {
        const key = `${shard.name}/${entry.name}`;
        if (!entry.isFile() || TEMP.test(entry.name) || !isBlobKey(key)) continue;
        const stat = await ifPresent(fsp.stat(path.join(dir, entry.name)));
        if (stat) yield { key, size: stat.size, modifiedAt: stat.mtimeMs };
      }
    }
  }

  /**
   * Temporary files left by a crash mid-write, older than `olderThanMs`; removed, and counted.
   * A write in progress renames or removes its temporary file at any moment, so one
   * that vanishes between listing and stat is skipped; every other error is thrown.
   */
  async sweepTemporaries(olderThanMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const shard of (await ifPresent(fsp.readdir(this.#root))) ?? []) {
      const dir = path.join(this.#root, shard);
      for (const name of (await ifPresent(fsp.readdir(dir))) ?? []) {
        if (!TEMP.test(name)) continue;
        const file = path.join(dir, name);
        const stat = await ifPresent(fsp.stat(file));
        if (stat && now - stat.mtimeMs > olderThanMs) {
          await fsp.rm(file, { force: true });
          removed += 1;
        }
      }
    }
    return removed;
  }

  async close(): Promise<void> {}
}

/** The result, or `undefined` when the path does not exist (any more). */
async function ifPresent<T>(operation: Promise<T>): Promise<T | undefined> {
  try {
    return await operation;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** fsync of a file (its data, by any descriptor) or of a folder (its entries, after a rename). */
async function syncPath(file: string): Promise<void> {
  const handle = await fsp.open(file, fs.constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function prematureClose(): Error {
  return Object.assign(new Error('the destination closed before the last byte'), {
    code: 'ERR_STREAM_PREMATURE_CLOSE',
  });
}

/** Bytes [start, end) of `handle` into `destination` through SEND_BUFFERS reused buffers. */
async function sendFrom(
  handle: fsp.FileHandle,
  { start, end }: { start: number; end: number },
  destination: Writable,
): Promise<void> {
  const free = Array.from({ length: SEND_BUFFERS }, () => Buffer.allocUnsafeSlow(READ_CHUNK));
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const settle = () => {
    wake?.();
    wake = undefined;
  };
  const onClose = () => {
    failure ??= prematureClose();
    settle();
  };
  destination.on('close', onClose);
  // Until a buffer comes back (or the destination fails).
  const returned = () => new Promise<void>((resolve) => (wake = resolve));
  try {
    for (let position = start; position < end;) {
      while (!failure && free.length === 0) await returned();
      if (failure) throw failure;
      const buffer = free.pop()!;
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - position), position);
      if (bytesRead === 0) throw new Error(`the blob ended at byte ${position} of ${end}`);
      position += bytesRead;
      if (failure) throw failure;
      destination.write(buffer.subarray(0, bytesRead), (error?: Error | null) => {
        if (error) failure ??= destination.destroyed ? prematureClose() : error;
        else free.push(buffer);
        settle();
      });
    }
    while (!failure && free.length < SEND_BUFFERS) await returned();
    if (failure) throw failure;
  } finally {
    destination.off('close', onClose);
  }
}
