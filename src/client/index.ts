import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import type {
  AssetFieldsFragment,
  AssetFilter,
  AssetOrder,
  CreateAssetInput,
  UpdateAssetInput,
} from './gql/graphql.js';
import {
  CreateAssetDocument,
  CreateDownloadUrlDocument,
  CreateReplaceUrlDocument,
  CreateUploadUrlDocument,
  DeleteAssetDocument,
  RestoreAssetDocument,
  GetAssetDocument,
  ListAssetsDocument,
  UpdateAssetDocument,
  UploadAssetDocument,
  UploadAssetsDocument,
} from './operations.js';

export type Asset = AssetFieldsFragment;
export type { AssetFilter, AssetOrder, CreateAssetInput, UpdateAssetInput };

/** A GraphQL error as the server sent it. */
export interface GraphQLErrorShape {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; field?: string; [key: string]: unknown };
}

/** Thrown when a response carries errors; `code` is the first error's `extensions.code`. */
export class AssetgateError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly errors: GraphQLErrorShape[],
    readonly status: number,
  ) {
    super(errors.map((e) => e.message).join('; '));
    this.code = errors[0]?.extensions?.code;
  }
}

export interface ClientOptions {
  /** Base URL of the server, e.g. http://localhost:4000. */
  url: string;
  apiKey?: string;
  fetch?: typeof fetch;
}

/** Metadata sent with an upload. */
export interface UploadFields {
  title?: string;
  description?: string;
  tags?: string[];
  directoryId?: string;
  isPublic?: boolean;
}

/** A file to upload: a Blob (use `fs.openAsBlob(path)` to stream from disk) and its name. */
export interface FileToUpload {
  blob: Blob;
  filename: string;
}

/** A typed assetgate client built on the generated documents. */
export function createClient({ url, apiKey, fetch: fetchImpl = globalThis.fetch }: ClientOptions) {
  const base = url.replace(/\/+$/, '');
  const auth: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};

  async function send<R>(body: BodyInit, headers: Record<string, string>): Promise<R> {
    const response = await fetchImpl(`${base}/graphql`, { method: 'POST', body, headers: { ...auth, ...headers } });
    const json = (await response.json()) as { data?: R | null; errors?: GraphQLErrorShape[] };
    if (json.errors?.length || !json.data) throw new AssetgateError(json.errors ?? [], response.status);
    return json.data;
  }

  /** Runs any typed document. */
  function request<R, V>(document: TypedDocumentNode<R, V>, variables: V): Promise<R> {
    return send<R>(JSON.stringify({ query: print(document), variables }), { 'content-type': 'application/json' });
  }

  /** PUTs `blob` to a signed upload (or replace) URL; resolves what the gateway stored. */
  async function put(
    uploadUrl: string,
    blob: Blob,
  ): Promise<{ id: string; status: string; size: number; checksum: string }> {
    const response = await fetchImpl(uploadUrl, { method: 'PUT', body: blob });
    const json = (await response.json()) as { error?: GraphQLErrorShape['extensions'] & { message: string } };
    if (!response.ok) {
      throw new AssetgateError(
        [{ message: json.error?.message ?? response.statusText, extensions: json.error }],
        response.status,
      );
    }
    return json as never;
  }

  /** A GraphQL multipart request: `files` are placed at `paths` inside `variables`. */
  function multipart<R, V>(
    document: TypedDocumentNode<R, V>,
    variables: V,
    files: [string, FileToUpload][],
  ): Promise<R> {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: print(document), variables }));
    form.append('map', JSON.stringify(Object.fromEntries(files.map(([path], i) => [String(i), [path]]))));
    files.forEach(([, file], i) => form.append(String(i), file.blob, file.filename));
    return send<R>(form, { 'x-graphql-yoga-csrf': '1' });
  }

  return {
    request,

    async upload(file: FileToUpload, fields: UploadFields = {}): Promise<Asset> {
      const data = await multipart(UploadAssetDocument, { input: { ...fields, file: null as never } }, [
        ['variables.input.file', file],
      ]);
      return data.uploadAsset.asset;
    },

    async uploadMany(files: FileToUpload[], fields: Omit<UploadFields, 'title' | 'description'> = {}) {
      const data = await multipart(
        UploadAssetsDocument,
        { input: { ...fields, files: files.map(() => null as never) } },
        files.map((file, i) => [`variables.input.files.${i}`, file] as [string, FileToUpload]),
      );
      return data.uploadAssets;
    },

    async create(input: CreateAssetInput): Promise<Asset> {
      return (await request(CreateAssetDocument, { input })).createAsset.asset;
    },

    async get(id: string): Promise<Asset | null> {
      return (await request(GetAssetDocument, { id })).asset ?? null;
    },

    /** Every asset matching `filter`, page by page (`pageSize` at most 100). */
    async *list(
      options: { filter?: AssetFilter; orderBy?: AssetOrder; pageSize?: number } = {},
    ): AsyncGenerator<Asset> {
      let after: string | null = null;
      for (;;) {
        const {
          assets,
        }: { assets: { pageInfo: { hasNextPage: boolean; endCursor?: string | null }; edges: { node: Asset }[] } } =
          await request(ListAssetsDocument, {
            first: options.pageSize ?? 50,
            after,
            filter: options.filter,
            orderBy: options.orderBy,
          });
        for (const edge of assets.edges) yield edge.node;
        if (!assets.pageInfo.hasNextPage || !assets.pageInfo.endCursor) return;
        after = assets.pageInfo.endCursor;
      }
    },

    /** Polls until processing has finished (READY or FAILED); `assetUpdated` over SSE pushes the same. */
    async waitUntilProcessed(id: string, { timeoutMs = 60_000, intervalMs = 200 } = {}): Promise<Asset> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const asset = (await request(GetAssetDocument, { id })).asset;
        if (!asset) throw new Error(`asset ${id} is gone`);
        if (asset.status === 'READY' || asset.status === 'FAILED') return asset;
        if (Date.now() > deadline) throw new Error(`asset ${id} is still ${asset.status}`);
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    },

    async update(input: UpdateAssetInput): Promise<Asset> {
      return (await request(UpdateAssetDocument, { input })).updateAsset.asset;
    },

    /** To the trash, or for good with `permanently`; resolves the deleted id. */
    async delete(id: string, options: { permanently?: boolean } = {}): Promise<string> {
      return (await request(DeleteAssetDocument, { input: { id, permanently: options.permanently ?? false } }))
        .deleteAsset.deletedId;
    },

    /** Brings an asset back from the trash. */
    async restore(id: string): Promise<{ id: string }> {
      return (await request(RestoreAssetDocument, { input: { id } })).restoreAsset.asset;
    },

    /**
     * Two-step upload: asks for a signed URL (declaring size and checksum when given),
     * then PUTs the bytes there. Resolves the asset id once the bytes are stored. With
     * `reuseStored` and a checksum the org already stores (the key needs read:assets), the
     * asset is made on those bytes and nothing is sent.
     */
    async uploadViaUrl(
      file: FileToUpload & { size?: number; checksum?: string; reuseStored?: boolean },
      fields: UploadFields = {},
    ): Promise<{ id: string; status: string; size: number; checksum: string }> {
      const { createUploadUrl } = await request(CreateUploadUrlDocument, {
        input: {
          ...fields,
          filename: file.filename,
          size: file.size,
          checksum: file.checksum,
          reuseStored: file.reuseStored,
        },
      });
      if (createUploadUrl.uploadUrl === null || createUploadUrl.uploadUrl === undefined) {
        const { id, status, size, checksum } = createUploadUrl.asset;
        return { id, status, size: size!, checksum: checksum! };
      }
      return put(createUploadUrl.uploadUrl, file.blob);
    },

    /**
     * Replaces the bytes of an asset by URL (`createReplaceUrl`, then a PUT): same id and
     * URL, `version` + 1. Resolves once the new bytes are stored.
     */
    async replaceViaUrl(
      id: string,
      file: FileToUpload & { size?: number; checksum?: string },
    ): Promise<{ id: string; status: string; size: number; checksum: string }> {
      const { createReplaceUrl } = await request(CreateReplaceUrlDocument, {
        input: { id, filename: file.filename, size: file.size, checksum: file.checksum },
      });
      return put(createReplaceUrl.uploadUrl, file.blob);
    },

    /**
     * Resumable upload over tus 1.0.0, in chunks of `chunkSize` bytes (default 8 MiB). A
     * chunk that fails (the connection dropped, the server restarted) is retried from the
     * offset the server tells, up to `retries` times in a row; `onProgress` hears the bytes
     * the server acknowledged. Give `uploadUrl` (from `onUploadUrl`, or a signed upload URL
     * with a declared size) to resume an upload begun earlier. Resolves the asset's id, and
     * the asset itself when the client has a key (PROCESSING: `waitUntilProcessed` waits for
     * the rest).
     */
    async uploadResumable(
      file: FileToUpload,
      fields: UploadFields = {},
      options: {
        chunkSize?: number;
        retries?: number;
        retryDelayMs?: number;
        uploadUrl?: string;
        onUploadUrl?: (url: string) => void;
        onProgress?: (acknowledged: number, total: number) => void;
      } = {},
    ): Promise<{ id: string; asset: Asset | null }> {
      const { chunkSize = 8 * 1024 * 1024, retries = 5, retryDelayMs = 500 } = options;
      const total = file.blob.size;
      const tus = { ...auth, 'tus-resumable': '1.0.0' };
      const fail = async (response: Response): Promise<never> => {
        const text = await response.text();
        let error: { code?: string; message?: string } | undefined;
        try {
          error = (JSON.parse(text) as { error?: typeof error }).error;
        } catch {
          // A tus answer in plain text: its status says what went wrong.
        }
        const code = error?.code ?? `HTTP_${response.status}`;
        throw new AssetgateError([{ message: error?.message ?? text.trim(), extensions: { code } }], response.status);
      };
      let uploadUrl = options.uploadUrl;
      if (!uploadUrl) {
        const metadata = Object.entries({
          filename: file.filename,
          title: fields.title,
          description: fields.description,
          tags: fields.tags?.join(','),
          directoryId: fields.directoryId,
          isPublic: fields.isPublic === undefined ? undefined : String(fields.isPublic),
        })
          .filter(([, value]) => value !== undefined)
          .map(([name, value]) => `${name} ${btoa(String.fromCharCode(...new TextEncoder().encode(value!)))}`)
          .join(',');
        const created = await fetchImpl(`${base}/tus/`, {
          method: 'POST',
          headers: { ...tus, 'upload-length': String(total), 'upload-metadata': metadata },
        });
        if (created.status !== 201) await fail(created);
        uploadUrl = new URL(created.headers.get('location')!, base).href;
        options.onUploadUrl?.(uploadUrl);
      }
      const url = uploadUrl;
      /** Where the server stands: the offset it acknowledged. */
      const offsetNow = async (): Promise<number> => {
        const response = await fetchImpl(url, { method: 'HEAD', headers: tus });
        if (response.status !== 200) await fail(response);
        return Number(response.headers.get('upload-offset'));
      };
      let offset = await offsetNow();
      let assetId: string | null = null;
      let failures = 0;
      options.onProgress?.(offset, total);
      while (offset < total || (total === 0 && assetId === null)) {
        try {
          const response = await fetchImpl(url, {
            method: 'PATCH',
            headers: { ...tus, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) },
            body: file.blob.slice(offset, Math.min(total, offset + chunkSize)),
          });
          // Client errors are final; 409 (offset moved), 423 (busy) and 5xx are worth asking again.
          if (response.status !== 204) {
            if (response.status < 500 && response.status !== 409 && response.status !== 423) await fail(response);
            throw new AssetgateError([{ message: `PATCH answered ${response.status}` }], response.status);
          }
          offset = Number(response.headers.get('upload-offset'));
          assetId = response.headers.get('asset-id') ?? assetId;
          failures = 0;
          options.onProgress?.(offset, total);
        } catch (error) {
          if (error instanceof AssetgateError && error.status < 500 && error.status !== 409 && error.status !== 423)
            throw error;
          if (++failures > retries) throw error;
          await new Promise((resolve) => setTimeout(resolve, retryDelayMs * failures));
          offset = await offsetNow();
          options.onProgress?.(offset, total);
        }
      }
      if (!assetId) {
        // The answer to the last chunk was lost; under /tus/ the upload's id is its asset's.
        const [route, id] = new URL(url, base).pathname.split('/').slice(-2);
        if (route !== 'tus') throw new AssetgateError([{ message: 'the upload finished but its answer was lost' }], 0);
        assetId = btoa(`Asset:${id}`).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
      }
      // Without a key that may read it (a signed upload URL), only the id is known.
      const asset = apiKey ? ((await request(GetAssetDocument, { id: assetId })).asset ?? null) : null;
      return { id: assetId, asset };
    },

    /** A signed URL for an asset's bytes that needs no key, expiring and optionally fetch-limited. */
    async downloadUrl(id: string, options: { expiresIn?: number; maxFetches?: number } = {}) {
      return (await request(CreateDownloadUrlDocument, { input: { id, ...options } })).createDownloadUrl;
    },

    /** The bytes of an asset as a fetch Response (stream it with `response.body`). */
    async download(asset: Pick<Asset, 'url'>, init: { range?: string } = {}): Promise<Response> {
      if (!asset.url) throw new Error('this asset has no bytes to download');
      return fetchImpl(asset.url, { headers: { ...auth, ...(init.range ? { range: init.range } : {}) } });
    },
  };
}

export type AssetgateClient = ReturnType<typeof createClient>;
