import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { type FileUpload, processRequest, Upload } from 'graphql-upload-minimal';
import type { Plugin } from 'graphql-yoga';
import { AppError, BadUserInputError, PayloadTooLargeError } from '../errors.js';
import { toGraphQLError } from './use-error-codes.js';

/** Options of `useGraphQLUpload`. */
export interface GraphQLUploadOptions {
  /** Largest file in bytes; a larger one fails with PAYLOAD_TOO_LARGE. @default 200 MiB */
  maxFileSize: number;
  /** Most files in one request; more is BAD_USER_INPUT. @default 100 */
  maxFiles: number;
  /** Takes an upload slot for the request's caller (throws RATE_LIMITED when none is free); returns its release. */
  acquireSlot?: (request: Request) => Promise<() => void>;
}

/** Largest `operations` or `map` field, bytes (the parser's default). */
const MAX_FIELD_SIZE = 1_000_000;

/** Headers a browser cannot send without a CORS preflight: proof the request is not a forged form post. */
const PREFLIGHT_HEADERS = ['x-graphql-yoga-csrf', 'apollo-require-preflight'];

export function isMultipart(request: Request): boolean {
  return (
    request.method === 'POST' &&
    (request.headers.get('content-type') ?? '').toLowerCase().includes('multipart/form-data')
  );
}

/** Which of the parser's limits a request passed, as its limit events told (`watchParser`). */
interface LimitHit {
  hit?: 'files' | 'field' | 'fileSize';
}

/**
 * The domain error for a failure of the multipart parser (graphql-upload-minimal,
 * busboy), for the whole request or one of its files. Every such failure is the
 * client's: a body that is not what the spec asks for. The parser answers every limit
 * with 413; which limit it was comes from the parser's limit events (too many files is
 * BAD_USER_INPUT in the contract). busboy's own complaints (a malformed part, no
 * boundary) come without a status.
 */
function multipartError(error: unknown, options: GraphQLUploadOptions, limits: LimitHit): AppError {
  if (error instanceof AppError) return error;
  const status = (error as { status?: unknown } | null)?.status;
  const message = error instanceof Error ? error.message : String(error);
  if (status === 413) {
    if (limits.hit === 'files') return new BadUserInputError('files', `At most ${options.maxFiles} files per request.`);
    if (limits.hit === 'field') return new PayloadTooLargeError(MAX_FIELD_SIZE, 'A multipart field');
    return new PayloadTooLargeError(options.maxFileSize);
  }
  if (status === 499) return new BadUserInputError('file', 'The request was cut off before its files arrived.');
  return new BadUserInputError('body', `Malformed multipart request: ${message}`);
}

/** Every `Upload` placed in the operations by `processRequest`. */
function collectUploads(value: unknown, found: Upload[] = []): Upload[] {
  if (value instanceof Upload) found.push(value);
  else if (Array.isArray(value)) for (const item of value) collectUploads(item, found);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) collectUploads(item, found);
  return found;
}

/**
 * Marks which file streams a resolver took, so the rest can be drained when the
 * response is sent: a stream nobody reads would stall the parser and hang the request.
 */
function track(upload: Upload, options: GraphQLUploadOptions, limits: LimitHit): () => void {
  let asked = false;
  upload.promise = upload.promise.then(
    (file: FileUpload) => ({
      ...file,
      createReadStream: () => {
        asked = true;
        try {
          return file.createReadStream();
        } catch (error) {
          throw Object.assign(multipartError(error, options, limits), { filename: file.filename });
        }
      },
    }),
    (error: unknown) => {
      throw multipartError(error, options, limits);
    },
  );
  upload.promise.catch(() => undefined); // a missing file is reported to the resolver that awaits it
  return () => {
    upload.promise.then(
      (file: FileUpload) => {
        if (asked) return; // the resolver owns the stream it opened
        let stream: Readable;
        try {
          stream = file.createReadStream();
        } catch {
          return; // the parser already gave up on this file (over the limit): nothing left to read
        }
        stream.resume();
      },
      () => undefined,
    );
  };
}

/**
 * Listens to the parser (busboy) the request is piped into. Its limit events tell which
 * limit a request passed: too many files (`filesLimit`, or a `map` naming more than
 * `maxFiles`, which graphql-upload-minimal refuses before any file), a field over its
 * size (`valueTruncated`), a file over its size (the file's `limit`). And busboy reports
 * a malformed body twice (the error, then "Unexpected end of form" on destroy) while
 * graphql-upload-minimal listens once; the echo must not crash the process. The first
 * report fails the request as it should.
 */
function watchParser(req: IncomingMessage, limits: LimitHit, maxFiles: number): void {
  const pipe = req.pipe.bind(req);
  req.pipe = <T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }) => {
    destination.on('error', () => undefined);
    destination.once('filesLimit', () => (limits.hit ??= 'files'));
    destination.on('field', (name: string, value: string, info: { valueTruncated: boolean }) => {
      if (info.valueTruncated) limits.hit ??= 'field';
      else if (name === 'map' && mapEntries(value) > maxFiles) limits.hit ??= 'files';
    });
    destination.on('file', (_name: string, file: Readable) => file.once('limit', () => (limits.hit ??= 'fileSize')));
    return pipe(destination, options);
  };
}

/** How many files a `map` field names; 0 when it is not an object (the parser refuses it then). */
function mapEntries(value: string): number {
  try {
    const map: unknown = JSON.parse(value);
    return map && typeof map === 'object' && !Array.isArray(map) ? Object.keys(map).length : 0;
  } catch {
    return 0; // not JSON: the parser refuses it as malformed
  }
}

/**
 * Streams GraphQL multipart requests through graphql-upload-minimal, straight
 * from Node's request: no body size limit of Yoga's and no buffering. Yoga's own
 * multipart parser must be off (`multipart: false`).
 */
export function useGraphQLUpload(options: GraphQLUploadOptions): Plugin {
  const drains = new WeakMap<Request, (() => void)[]>();
  return {
    onRequestParse({ request, serverContext, setRequestParser }) {
      if (!isMultipart(request)) return;
      const limits: LimitHit = {};
      const fail = (error: unknown) => toGraphQLError(multipartError(error, options, limits), { wholeRequest: true });
      if (!PREFLIGHT_HEADERS.some((name) => request.headers.get(name))) {
        throw fail(
          new BadUserInputError(
            'headers',
            `Multipart requests must carry an ${PREFLIGHT_HEADERS.join(' or ')} header.`,
          ),
        );
      }
      const { req, res } = serverContext as { req?: IncomingMessage; res?: ServerResponse };
      if (!req || !res)
        throw new Error('multipart requests need the Node.js request (serve through createApp().handler)');
      setRequestParser(async () => {
        if (options.acquireSlot) {
          let release: () => void;
          try {
            release = await options.acquireSlot(request);
          } catch (error) {
            throw error instanceof AppError ? toGraphQLError(error, { wholeRequest: true }) : error;
          }
          res.once('close', release);
        }
        let operations: unknown;
        watchParser(req, limits, options.maxFiles);
        try {
          // One byte over the limit lets the ingest tell "too large" from "exactly the limit".
          operations = await processRequest(req, res, {
            maxFieldSize: MAX_FIELD_SIZE,
            maxFileSize: options.maxFileSize + 1,
            maxFiles: options.maxFiles,
          });
        } catch (error) {
          throw fail(error);
        }
        drains.set(
          request,
          collectUploads(operations).map((upload) => track(upload, options, limits)),
        );
        return operations as never;
      });
    },
    onResponse({ request }) {
      for (const drain of drains.get(request) ?? []) drain();
    },
  };
}
