import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fsp from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Server } from '@tus/server';
import { DataStore, ERRORS, Upload } from '@tus/utils';
import type { Principal } from '../auth/principal.js';
import {
  AppError,
  BadUserInputError,
  ConflictError,
  ForbiddenError,
  PayloadTooLargeError,
  UnauthenticatedError,
  httpStatusOf,
} from '../errors.js';
import { encodeGlobalId } from '../global-id.js';
import { errorBody } from './respond.js';
import type { UploadVerb } from '../services/assets/asset-access.js';
import type { ResumableUploadService } from '../services/uploads/resumable-uploads.js';
import type { UploadSlots } from '../adapters/upload-slots.js';
import { answering } from './router.js';
import { closeAfterAnswer } from './unread-body.js';

const TUS_VERSION = '1.0.0';
const EXTENSIONS = ['creation', 'creation-with-upload', 'termination', 'expiration', 'checksum'];
/** `Upload-Checksum` algorithms, by their tus names (node's digest names are the same). */
const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'sha512', 'md5'];

/** What each method of `/tus/<id>` does to the upload, as the access rule names it. */
const VERBS: Record<string, UploadVerb> = { HEAD: 'probe', PATCH: 'append', DELETE: 'terminate' };

/** Who a tus request acts for: the key of the request, or the key that signed an upload URL. */
interface Grant {
  principal?: Principal;
  keyId?: string;
  /** The upload a signed URL names (its URL does not carry the upload's id). */
  uploadId?: string;
  /** Set when the request creates an upload. */
  createdId?: string;
  /** The domain error the answer is, sent as JSON (with its Retry-After) like every other route's. */
  error?: AppError;
  /** The bytes a writing request carries, handed to the store as they are (see `AssetUploadStore`). */
  body?: Readable;
}

/**
 * @tus/server's view of the uploads: each is an asset WAITING for its bytes, whose
 * chunks `ResumableUploadService` stores as parts. Expiry slides with every chunk, so it
 * is told per upload (410 past it), not as the store-wide period tus knows.
 *
 * A chunk's bytes do not travel through @tus/server: it would turn the request into a
 * web stream and back and pass it through two more streams, which cost more CPU than
 * storing the bytes and made it vary with how the socket's reads happened to fall. The
 * request itself is handed over in `bodies`, by upload id, and @tus/server sees no body.
 */
class AssetUploadStore extends DataStore {
  /** The body of the one writing request per upload this gateway lets in (the 423 rule). */
  readonly bodies = new Map<string, Readable>();

  constructor(private readonly uploads: ResumableUploadService) {
    super();
    this.extensions = EXTENSIONS;
  }

  // The asset was made by `onUploadCreate`, which runs first.
  override async create(upload: Upload): Promise<Upload> {
    upload.creation_date = new Date().toISOString();
    return upload;
  }

  override async getUpload(id: string): Promise<Upload> {
    const state = await this.uploads.state(id);
    if (!state) throw ERRORS.FILE_NOT_FOUND;
    if (state.expired) throw ERRORS.FILE_NO_LONGER_EXISTS;
    return new Upload({ id, size: state.length, offset: state.offset, creation_date: state.createdAt });
  }

  override write(stream: Readable, id: string, offset: number): Promise<number> {
    const body = this.bodies.get(id);
    if (!body) return this.uploads.append(id, offset, stream);
    stream.resume(); // @tus/server's own, empty
    return this.uploads.append(id, offset, body);
  }

  override getExpiration(): number {
    return 0;
  }
}

/** A PATCH body with `Upload-Checksum`, kept in a temporary file until it is known to match. */
interface Spooled {
  matches: boolean;
  file: string;
  dir: string;
}

async function spool(req: IncomingMessage, header: string, maxBytes: number): Promise<Spooled> {
  const [algorithm, digest, ...extra] = header.trim().split(/\s+/);
  if (!CHECKSUM_ALGORITHMS.includes(algorithm) || !digest || extra.length) {
    throw new BadUserInputError(
      'Upload-Checksum',
      `Upload-Checksum is "<algorithm> <base64 digest>" with one of ${CHECKSUM_ALGORITHMS.join(', ')}.`,
    );
  }
  const hash = createHash(algorithm);
  let bytes = 0;
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'assetgate-chunk-'));
  const file = path.join(dir, 'chunk');
  try {
    await pipeline(
      req,
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          bytes += chunk.length;
          if (bytes > maxBytes) return callback(new PayloadTooLargeError(maxBytes));
          hash.update(chunk);
          callback(null, chunk);
        },
      }),
      createWriteStream(file),
    );
  } catch (error) {
    await fsp.rm(dir, { recursive: true, force: true });
    throw error;
  }
  return { matches: hash.digest('base64') === digest, file, dir };
}

/** The request's headers for the web Request @tus/server reads (hop-by-hop ones left out). */
function headersOf(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'connection' || name === 'transfer-encoding' || name === 'keep-alive') continue;
    headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return headers;
}

function answer(
  res: ServerResponse,
  status: number,
  { headers = {}, body = '' }: { headers?: Record<string, string>; body?: string } = {},
): void {
  res.statusCode = status;
  res.setHeader('Tus-Resumable', TUS_VERSION);
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (body) res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

export interface TusDeps {
  uploads: ResumableUploadService;
  slots: UploadSlots;
  /** The key a request presents, if any (null: none or not valid). */
  authenticate: (req: IncomingMessage) => Promise<Principal | null>;
  publicUrl: string;
  maxFileSize: number;
  logError: (error: unknown) => void;
}

/**
 * tus 1.0.0 on @tus/server: `/tus/` (creation, creation-with-upload, termination,
 * expiration, checksum) with the product's keys, and the HEAD and PATCH a signed
 * upload URL answers. The protocol is @tus/server's; around it this adds what the
 * product promises: the key and its org (another org's upload is 404), one PATCH at a
 * time per upload (423), the key's upload slots, checksums (460), sliding expiry.
 */
export function createTus(deps: TusDeps) {
  const grants = new WeakMap<Request, Grant>();
  const grantOf = (req: Request): Grant => grants.get(req) ?? {};
  const store = new AssetUploadStore(deps.uploads);
  const server = new Server({
    path: '/tus',
    datastore: store,
    maxSize: deps.maxFileSize,
    namingFunction: () => randomUUID(),
    generateUrl: (_req, { id }) => `${deps.publicUrl}/tus/${id}`,
    getFileIdFromRequest: (req, last) => grantOf(req).uploadId ?? last,
    allowedHeaders: ['Authorization', 'X-API-Key', 'API-KEY'],
    exposedHeaders: ['Asset-Id', 'Tus-Checksum-Algorithm', 'Upload-Expires'],
    async onUploadCreate(req, upload) {
      const grant = grantOf(req);
      await deps.uploads.create(grant.principal!, {
        id: upload.id,
        length: upload.size ?? -1,
        metadata: upload.metadata ?? {},
      });
      grant.createdId = upload.id;
      if (grant.body) store.bodies.set(upload.id, grant.body);
      return {};
    },
    async onUploadFinish(_req, upload) {
      const asset = await deps.uploads.finish(upload.id);
      return { headers: { 'Asset-Id': encodeGlobalId('Asset', asset.id) } };
    },
    onResponseError(req, error) {
      if (error instanceof AppError) {
        grantOf(req).error = error;
        return {
          status_code: httpStatusOf(error.code),
          body: errorBody(error),
        };
      }
      if ('status_code' in error) {
        // Deferred length and concatenation are not offered: the client's request, not our failure.
        return error.status_code === 501 ? { status_code: 400, body: error.body } : undefined;
      }
      deps.logError(error);
      return { status_code: 500, body: 'Unexpected error.\n' };
    },
  });
  /** Uploads with a PATCH (or termination) in flight on this gateway; across gateways the offset check decides. */
  const busy = new Set<string>();

  async function forward(req: IncomingMessage, res: ServerResponse, grant: Grant): Promise<void> {
    const writes = req.method === 'PATCH' || (req.method === 'POST' && req.headers['content-type'] !== undefined);
    const id = grant.uploadId;
    // Before @tus/server's size check, which would call more bytes on a finished upload too large.
    if (id && req.method === 'PATCH' && (await deps.uploads.state(id))?.complete) {
      throw new ConflictError('This upload is finished.');
    }
    if (id && writes) {
      if (busy.has(id)) return answer(res, 423, { body: 'Another request is writing to this upload.\n' });
      busy.add(id);
    }
    let release: (() => void) | undefined;
    let spooled: Spooled | undefined;
    try {
      if (writes) release = await deps.slots.acquire(grant.keyId ?? 'anonymous');
      let body: Readable | undefined = writes ? req : undefined;
      const checksum = req.headers['upload-checksum'];
      if (writes && typeof checksum === 'string') {
        spooled = await spool(req, checksum, deps.maxFileSize);
        if (!spooled.matches) return answer(res, 460, { body: 'Checksum Mismatch\n' });
        body = createReadStream(spooled.file);
      }
      grant.body = body;
      if (id && body) store.bodies.set(id, body);
      const request = new Request(`http://gateway/tus/${id ?? ''}`, { method: req.method, headers: headersOf(req) });
      grants.set(request, grant);
      const response = await server.handleWeb(request);
      response.headers.forEach((value, name) => res.setHeader(name, value));
      if (req.method === 'OPTIONS') {
        res.setHeader('Tus-Extension', EXTENSIONS.join(','));
        res.setHeader('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
      }
      if (grant.error) {
        res.setHeader('Content-Type', 'application/json; charset=utf-8');
        const { retryAfter } = grant.error.extensions;
        if (typeof retryAfter === 'number') res.setHeader('Retry-After', String(retryAfter));
      }
      const uploadId = id ?? grant.createdId;
      if (response.ok && uploadId && req.method !== 'OPTIONS') {
        const state = await deps.uploads.state(uploadId);
        if (state?.expiresAt) res.setHeader('Upload-Expires', new Date(state.expiresAt).toUTCString());
      }
      // An answer given before the body was read (a wrong offset): close rather than read the rest.
      if (!req.readableEnded && writes) closeAfterAnswer(req, res);
      res.statusCode = response.status;
      res.end(Buffer.from(await response.arrayBuffer()));
    } finally {
      release?.();
      const written = id ?? grant.createdId;
      if (written && grant.body) store.bodies.delete(written);
      if (id && writes) busy.delete(id);
      if (spooled) await fsp.rm(spooled.dir, { recursive: true, force: true });
    }
  }

  /** 412 unless the request speaks tus 1.0.0 (OPTIONS needs not). */
  function speaksTus(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method === 'OPTIONS' || req.headers['tus-resumable'] === TUS_VERSION) return true;
    answer(res, 412, { headers: { 'Tus-Version': TUS_VERSION }, body: 'Tus-Resumable 1.0.0 is required.\n' });
    return false;
  }

  return {
    /** `/tus/` and `/tus/<id>` with an API key that may write. */
    route: answering(
      ['POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS'],
      async (req: IncomingMessage, res: ServerResponse, rest: string) => {
        if (!speaksTus(req, res)) return;
        if (req.method === 'OPTIONS') return forward(req, res, {});
        const principal = await deps.authenticate(req);
        if (!principal) throw new UnauthenticatedError();
        if (!principal.scopes.has('write:assets')) throw new ForbiddenError('Uploading needs the write:assets scope.');
        const grant: Grant = { principal, keyId: principal.keyId };
        const id = rest.replace(/\/$/, '');
        if (id === '') {
          if (req.method === 'POST') return forward(req, res, grant);
          return answer(res, 405, { headers: { Allow: 'POST, OPTIONS' } });
        }
        const verb = VERBS[req.method ?? ''];
        if (!verb) return answer(res, 405, { headers: { Allow: 'HEAD, PATCH, DELETE, OPTIONS' } });
        // Every verb asks the access rule: another org's upload, or a finished one to end, is 404.
        const upload = await deps.uploads.find(principal, id, verb);
        grant.uploadId = upload.id;
        if (verb !== 'terminate') return forward(req, res, grant);
        if (busy.has(upload.id)) return answer(res, 423, { body: 'A request is writing to this upload.\n' });
        await deps.uploads.terminate(principal, upload.id);
        return answer(res, 204);
      },
    ),

    /** tus HEAD and PATCH on a signed upload URL: resumable without a key. */
    async resume(
      req: IncomingMessage,
      res: ServerResponse,
      grant: () => Promise<{ uploadId: string; keyId: string }>,
    ): Promise<void> {
      if (!speaksTus(req, res)) return;
      return forward(req, res, await grant());
    },
  };
}

export type Tus = ReturnType<typeof createTus>;
