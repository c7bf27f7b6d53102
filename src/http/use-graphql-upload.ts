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

/**
 * The domain error for a failure of the multipart parser (graphql-upload-minimal,
 * busboy), for the whole request or one of its files. Every such failure is the
 * client's: a body that is not what the spec asks for. The parser signals sizes with
 * 413 (its "too many files" too, which the contract calls BAD_USER_INPUT) and sends
 * busboy's own complaints (a malformed part, no boundary) without a status.
 */
function multipartError(error: unknown, options: GraphQLUploadOptions): AppError {
  if (error instanceof AppError) return error;
  const status = (error as { status?: unknown } | null)?.status;
  const message = error instanceof Error ? error.message : String(error);
  if (status === 413) {
    if (/max file uploads exceeded/.test(message)) {
      return new BadUserInputError('files', `At most ${options.maxFiles} files per request.`);
    }
    if (/field/.test(message)) return new PayloadTooLargeError(MAX_FIELD_SIZE, 'A multipart field');
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
function track(upload: Upload, options: GraphQLUploadOptions): () => void {
  let asked = false;
  upload.promise = upload.promise.then(
    (file: FileUpload) => ({
      ...file,
      createReadStream: () => {
        asked = true;
        try {
          return file.createReadStream();
        } catch (error) {
          throw Object.assign(multipartError(error, options), { filename: file.filename });
        }
      },
    }),
    (error: unknown) => {
      throw multipartError(error, options);
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
 * busboy reports a malformed body twice (the error, then "Unexpected end of form"
 * on destroy) while graphql-upload-minimal listens once; the echo must not crash
 * the process. The first report fails the request as it should.
 */
function guardParserErrors(req: IncomingMessage): void {
  const pipe = req.pipe.bind(req);
  req.pipe = <T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }) => {
    destination.on('error', () => undefined);
    return pipe(destination, options);
  };
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
      const fail = (error: unknown) => toGraphQLError(multipartError(error, options), { wholeRequest: true });
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
        guardParserErrors(req);
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
          collectUploads(operations).map((upload) => track(upload, options)),
        );
        return operations as never;
      });
    },
    onResponse({ request }) {
      for (const drain of drains.get(request) ?? []) drain();
    },
  };
}
