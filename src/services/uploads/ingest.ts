import { createHash, type Hash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { imageSize } from 'image-size';
import type { BlobStore } from '../../blob/index.js';
import { BadUserInputError, PayloadTooLargeError } from '../../errors.js';
import type { MediaPolicy } from '../assets/media-policy.js';
import { type AssetType, classify, sniffMediaType } from '../../adapters/media-type.js';
import type { Reservation } from './quota.js';

/** How many leading bytes are kept for sniffing and image headers. */
export const PREFIX_BYTES = 256 * 1024;

/** What is learnt about a file while it streams into the store. */
export interface IngestResult {
  size: number;
  /** `sha256:<hex>` */
  checksum: string;
  mimeType: string;
  type: AssetType;
  width: number | null;
  height: number | null;
}

/** Bounds and promises a stream is checked against. */
export interface IngestOptions {
  maxBytes: number;
  /** Size the client declared; a different size fails the upload. */
  expectedSize?: number | null;
  /** `sha256:<hex>` the client declared; a different digest fails the upload. */
  expectedChecksum?: string | null;
  /** Client's (sanitised) filename: only a hint between text types. */
  filename: string | null;
  /** Storage promised as bytes arrive; released here when the upload fails. */
  reservation?: Reservation;
  /** Refuses media types the deployment does not take. */
  accept?: MediaPolicy;
  /**
   * What is already known of bytes already in the store (a resumable upload hashed as its
   * chunks arrived): the stream is then not read at all.
   */
  known?: KnownBytes;
}

/** Size, digest and first bytes of a blob, learnt while it was written. */
export interface KnownBytes {
  size: number;
  checksum: string;
  head: Buffer;
}

/** What a meter judges the media type of the bytes by, as soon as it has enough of them. */
export interface HeadScreen {
  /** Refuses media types the deployment does not take (throws UNSUPPORTED_MEDIA_TYPE). */
  accept: MediaPolicy;
  /** Client's (sanitised) filename: only a hint between text types. */
  filename: string | null;
  /**
   * The size of the whole file, when the stream may carry only its start (a resumable
   * upload's chunk): a stream ending before PREFIX_BYTES and before this is not judged.
   */
  whole?: number;
}

/** What a `ByteMeter` counts against and does on the way. */
export interface ByteMeterOptions {
  maxBytes: number;
  /** Storage promised as bytes arrive. */
  reservation?: Reservation;
  /** Sees each chunk that passes. */
  observe?: (chunk: Buffer) => void;
  /**
   * Judges the media type from the first PREFIX_BYTES (all of them when the stream is
   * shorter) the moment they have passed: a refused file fails the stream there, before
   * the rest is read, written or flushed.
   */
  screen?: HeadScreen;
}

/**
 * Counts the bytes passing through, fails past `maxBytes`, grows `reservation` (the
 * org's quota) with them, and keeps the first PREFIX_BYTES for sniffing. What else a
 * stream needs on the way goes in `pass`.
 */
export class ByteMeter extends Transform {
  bytes = 0;
  readonly #head: Buffer[] = [];
  #headBytes = 0;
  #screened = false;

  constructor(private readonly options: ByteMeterOptions) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.options.maxBytes) {
      callback(new PayloadTooLargeError(this.options.maxBytes));
      return;
    }
    const go = () => {
      this.options.observe?.(chunk);
      this.#keep(chunk);
      if (this.#headBytes < PREFIX_BYTES) this.pass(chunk, callback);
      else this.screen(false).then(() => this.pass(chunk, callback), callback);
    };
    if (this.options.reservation) this.options.reservation.ensure(this.bytes).then(go, callback);
    else go();
  }

  override _flush(callback: TransformCallback): void {
    this.screen(true).then(() => callback(), callback);
  }

  protected pass(chunk: Buffer, callback: TransformCallback): void {
    callback(null, chunk);
  }

  /** Judges the head once, when it is full or (`end`) the stream ends; rejects with the policy's refusal. */
  protected async screen(end: boolean): Promise<void> {
    if (this.#screened || !this.options.screen) return;
    const { accept, filename, whole } = this.options.screen;
    if (end && whole !== undefined && this.#headBytes < PREFIX_BYTES && this.bytes < whole) return;
    this.#screened = true;
    accept(await sniffMediaType(this.head(), filename));
  }

  #keep(chunk: Buffer): void {
    if (this.#headBytes >= PREFIX_BYTES) return;
    // Copy: the source may reuse its buffers.
    const part = Buffer.from(chunk.subarray(0, PREFIX_BYTES - this.#headBytes));
    this.#head.push(part);
    this.#headBytes += part.length;
  }

  /** The first PREFIX_BYTES that passed (fewer when fewer did). */
  head(): Buffer {
    return Buffer.concat(this.#head, this.#headBytes);
  }
}

/**
 * Hashes the bytes passing through as well; when they end, checks them against what
 * was declared before the media type is judged, in the order `judge` checks them.
 */
class Inspector extends ByteMeter {
  readonly hash: Hash = createHash('sha256');
  checksum = '';

  constructor(private readonly ingestOptions: IngestOptions) {
    super({
      maxBytes: ingestOptions.maxBytes,
      reservation: ingestOptions.reservation,
      screen: ingestOptions.accept && { accept: ingestOptions.accept, filename: ingestOptions.filename },
    });
  }

  protected override pass(chunk: Buffer, callback: TransformCallback): void {
    this.hash.update(chunk);
    callback(null, chunk);
  }

  protected override async screen(end: boolean): Promise<void> {
    if (end) {
      this.checksum = `sha256:${this.hash.digest('hex')}`;
      checkDeclared({ size: this.bytes, checksum: this.checksum }, this.ingestOptions);
    }
    await super.screen(end);
  }
}

function dimensionsOf(head: Buffer): { width: number | null; height: number | null } {
  let info: ReturnType<typeof imageSize>;
  try {
    info = imageSize(head);
  } catch {
    // The header lies beyond the bytes kept, or the format has none we read here.
    return { width: null, height: null };
  }
  // EXIF orientations 5-8 rotate by 90°: the displayed width is the stored height.
  const rotated = info.orientation !== undefined && info.orientation >= 5;
  return rotated ? { width: info.height, height: info.width } : { width: info.width, height: info.height };
}

/** Checks bytes against the size and digest the client declared. */
function checkDeclared(bytes: Omit<KnownBytes, 'head'>, options: IngestOptions): void {
  if (options.expectedSize != null && options.expectedSize !== bytes.size) {
    throw new BadUserInputError(
      'size',
      `Declared size ${options.expectedSize} does not match the ${bytes.size} bytes received.`,
    );
  }
  if (options.expectedChecksum && options.expectedChecksum.toLowerCase() !== bytes.checksum) {
    throw new BadUserInputError('checksum', 'Declared checksum does not match the bytes received.');
  }
}

/** Checks bytes against what was declared and the media policy, and tells their type (and an image's size). */
export async function judge(bytes: KnownBytes, options: IngestOptions): Promise<IngestResult> {
  checkDeclared(bytes, options);
  const mimeType = await sniffMediaType(bytes.head, options.filename);
  options.accept?.(mimeType);
  const type = classify(mimeType);
  const dims = type === 'IMAGE' ? dimensionsOf(bytes.head) : { width: null, height: null };
  return { size: bytes.size, checksum: bytes.checksum, mimeType, type, ...dims };
}

/**
 * Streams `source` into `store` under `key`, hashing, counting and sniffing on the
 * way, with constant memory. On any failure (limit, declared size or checksum,
 * source or store error) nothing is left in the store, the rest of `source` is
 * drained so the request can finish, and the error is rethrown.
 */
export async function ingest(
  source: Readable,
  { store, key }: { store: BlobStore; key: string },
  options: IngestOptions,
): Promise<IngestResult> {
  if (options.known) {
    try {
      await options.reservation?.ensure(options.known.size);
      return await judge(options.known, options);
    } catch (error) {
      await store.delete(key);
      await options.reservation?.release();
      throw error;
    }
  }
  // Refuses a file of a refused type as soon as its head has passed, before the store has the rest.
  const inspector = new Inspector(options);
  // The limit can trip before the store starts reading (it may still be opening a
  // file): the error must not be an unhandled 'error' event. The store's read of
  // the errored stream still rejects with it, and that is what fails the upload.
  inspector.on('error', () => undefined);
  // Stays attached: a source that fails after we are done must not crash the process.
  let sourceError: Error | undefined;
  source.on('error', (error) => {
    sourceError = error;
    inspector.destroy(error);
  });
  let stored = false;
  try {
    await store.put(key, source.pipe(inspector));
    stored = true;
    return await judge({ size: inspector.bytes, checksum: inspector.checksum, head: inspector.head() }, options);
  } catch (error) {
    source.unpipe(inspector);
    if (!source.destroyed) source.resume();
    if (stored) await store.delete(key);
    await options.reservation?.release();
    // The client's bytes broke off or were malformed: the client's fault, not ours.
    if (sourceError && error === sourceError)
      throw new BadUserInputError('file', `The upload was interrupted: ${sourceError.message}`);
    throw error;
  }
}

/**
 * The store as `ingest` sees it for bytes that are already in it: writing only reads
 * the stream through (ingest hashes, counts and sniffs it on the way), and a refused
 * file is deleted from the real store, as a written one would be.
 */
export function adopting(blobs: BlobStore): BlobStore {
  return {
    async put(_key, body) {
      let size = 0;
      for await (const chunk of body) size += (chunk as Buffer).length;
      return { size };
    },
    delete: (key) => blobs.delete(key),
    get: (key, range) => blobs.get(key, range),
    head: (key) => blobs.head(key),
    list: () => blobs.list(),
    close: () => blobs.close(),
  };
}

/** The first bytes of a stored blob, as ingest keeps them for sniffing; null when it is gone. */
export async function headOf(blobs: BlobStore, key: string, size: number): Promise<Buffer | null> {
  if (size === 0) return (await blobs.head(key)) ? Buffer.alloc(0) : null;
  const stream = await blobs.get(key, { start: 0, end: Math.min(size, PREFIX_BYTES) - 1 });
  if (!stream) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
