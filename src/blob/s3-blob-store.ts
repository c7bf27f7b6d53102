import { type Readable, Transform } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  assertBlobKey,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  isBlobKey,
  type ListedBlob,
} from './blob-store.js';

/** Where an S3 store keeps its blobs and how it reaches them. */
export interface S3BlobStoreConfig {
  bucket: string;
  /** Prepended to every key (no leading or trailing slash). @default '' */
  prefix?: string;
  /** Any S3-compatible server; unset means AWS. */
  endpoint?: string;
  /** @default 'us-east-1' */
  region?: string;
  /** Path-style addressing (`http://host/bucket/key`), which local servers need. @default false */
  forcePathStyle?: boolean;
  /** Unset: the SDK's default chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Bytes per multipart part; memory per upload is at most `partSize × queueSize`. @default 8 MiB */
  partSize?: number;
  /** Parts in flight per upload. @default 2 */
  queueSize?: number;
  /** Where the store says, once, that the server cannot list incomplete multipart uploads. @default console.warn */
  warn?: (message: string) => void;
}

/** Whether an SDK error says the object (or bucket entry) is not there. */
function isMissing(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  return error.name === 'NoSuchKey' || error.name === 'NotFound' || error.$metadata.httpStatusCode === 404;
}

/** What the server answered, in one line: its error code, HTTP status and message. */
function s3Reason(error: unknown): string {
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode;
    const message = error.message && error.message !== error.name ? `: ${error.message}` : '';
    return `${error.name}${status ? ` (HTTP ${status})` : ''}${message}`;
  }
  const { message, code } = error as { message?: string; code?: string };
  return message || code || String(error);
}

/**
 * Blobs in an S3-compatible bucket (AWS, MinIO, Ceph, R2…), through the AWS SDK v3.
 * Uploads stream in parts (`@aws-sdk/lib-storage`): a 1 GiB file never sits in
 * memory, and a failed one is aborted so no part is left billed. Keys are fresh UUIDs,
 * never overwritten. The client connects lazily, on the first call.
 */
export class S3BlobStore implements BlobStore {
  readonly #config: S3BlobStoreConfig;
  #client: S3Client | undefined;

  constructor(config: S3BlobStoreConfig) {
    this.#config = config;
  }

  get #s3(): S3Client {
    this.#client ??= new S3Client({
      region: this.#config.region ?? 'us-east-1',
      endpoint: this.#config.endpoint,
      forcePathStyle: this.#config.forcePathStyle ?? false,
      credentials: this.#config.credentials,
      // Only what an operation needs: S3-compatible servers differ in the checksums they take.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return this.#client;
  }

  #key(key: string): string {
    assertBlobKey(key);
    return this.#config.prefix ? `${this.#config.prefix}/${key}` : key;
  }

  async put(key: string, body: Readable): Promise<{ size: number }> {
    let size = 0;
    let bodyError: Error | undefined;
    // Counted as the uploader reads (a 'data' listener here would set the stream flowing
    // before the uploader reads it, and bytes could pass unread).
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        callback(null, chunk);
      },
    });
    body.on('error', (error) => {
      bodyError = error;
      counted.destroy(error);
    });
    body.pipe(counted);
    const upload = new Upload({
      client: this.#s3,
      params: { Bucket: this.#config.bucket, Key: this.#key(key), Body: counted },
      partSize: this.#config.partSize ?? 8 * 1024 * 1024,
      queueSize: this.#config.queueSize ?? 2,
      leavePartsOnError: false, // a failed multipart upload is aborted
    });
    try {
      await upload.done();
    } catch (error) {
      body.unpipe(counted);
      body.resume(); // the rest of the request is not wanted, but must not stall it
      if (bodyError) throw bodyError; // the client's stream failed, not the store
      throw new Error(`S3 upload of ${key} failed`, { cause: error });
    }
    return { size };
  }

  async get(key: string, range?: ByteRange): Promise<Readable | null> {
    try {
      const { Body } = await this.#s3.send(
        new GetObjectCommand({
          Bucket: this.#config.bucket,
          Key: this.#key(key),
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      );
      return (Body as Readable | undefined) ?? null;
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  presignGet(
    key: string,
    options: { expiresIn: number; contentType: string; contentDisposition: string },
  ): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: this.#config.bucket,
      Key: this.#key(key),
      ResponseContentType: options.contentType,
      ResponseContentDisposition: options.contentDisposition,
    });
    return getSignedUrl(this.#s3, command, { expiresIn: options.expiresIn });
  }

  presignPut(key: string, options: { expiresIn: number }): Promise<string> {
    const command = new PutObjectCommand({ Bucket: this.#config.bucket, Key: this.#key(key) });
    return getSignedUrl(this.#s3, command, { expiresIn: options.expiresIn });
  }

  async head(key: string): Promise<BlobInfo | null> {
    try {
      const head = await this.#s3.send(new HeadObjectCommand({ Bucket: this.#config.bucket, Key: this.#key(key) }));
      return { size: head.ContentLength ?? 0, modifiedAt: head.LastModified?.getTime() };
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  async delete(key: string): Promise<boolean> {
    // S3 deletes are idempotent and say nothing of what was there: ask first.
    const existed = (await this.head(key)) !== null;
    if (existed) await this.#s3.send(new DeleteObjectCommand({ Bucket: this.#config.bucket, Key: this.#key(key) }));
    return existed;
  }

  /**
   * Pages through the bucket (1,000 objects a page, by continuation token), so memory stays
   * flat however many there are. A failed page throws an error naming the bucket, how far
   * the listing got and what the server answered.
   */
  async *list(): AsyncIterable<ListedBlob> {
    const prefix = this.#config.prefix ? `${this.#config.prefix}/` : '';
    let token: string | undefined;
    let listed = 0;
    do {
      let page;
      try {
        page = await this.#s3.send(
          new ListObjectsV2Command({
            Bucket: this.#config.bucket,
            Prefix: prefix || undefined,
            ContinuationToken: token,
          }),
        );
      } catch (error) {
        const where = `s3://${this.#config.bucket}/${prefix}`;
        throw new Error(`listing ${where} failed after ${listed} objects: ${s3Reason(error)}`, { cause: error });
      }
      for (const object of page.Contents ?? []) {
        const key = object.Key?.slice(prefix.length);
        listed += 1;
        if (key && isBlobKey(key)) yield { key, size: object.Size ?? 0, modifiedAt: object.LastModified?.getTime() };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * Aborts multipart uploads under this store's prefix started more than
   * `olderThanMs` ago: what a gateway killed mid-upload leaves. Returns how many.
   */
  async sweepTemporaries(olderThanMs: number, now = Date.now()): Promise<number> {
    if (this.#cannotListUploads) return 0;
    try {
      return await this.#abortOldUploads(olderThanMs, now);
    } catch (error) {
      // Some S3-compatible servers do not implement ListMultipartUploads: say so once, and leave
      // incomplete uploads to the bucket's lifecycle rule (AbortIncompleteMultipartUpload).
      if (!(error instanceof S3ServiceException && error.name === 'NotImplemented')) throw error;
      this.#cannotListUploads = true;
      (this.#config.warn ?? console.warn)(
        'assetgate: the S3 server cannot list multipart uploads; set a lifecycle rule that aborts incomplete ones',
      );
      return 0;
    }
  }

  #cannotListUploads = false;

  async #abortOldUploads(olderThanMs: number, now: number): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.#s3.send(
        new ListMultipartUploadsCommand({
          Bucket: this.#config.bucket,
          Prefix: this.#config.prefix ? `${this.#config.prefix}/` : undefined,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
      );
      for (const upload of page.Uploads ?? []) {
        if (!upload.Initiated || now - upload.Initiated.getTime() < olderThanMs) continue;
        await this.#s3.send(
          new AbortMultipartUploadCommand({ Bucket: this.#config.bucket, Key: upload.Key, UploadId: upload.UploadId }),
        );
        aborted += 1;
      }
      [keyMarker, uploadIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [];
    } while (keyMarker);
    return aborted;
  }

  async close(): Promise<void> {
    this.#client?.destroy();
  }
}
