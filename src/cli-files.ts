import { createWriteStream, openAsBlob } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { type Asset, AssetgateError, type AssetgateClient, createClient } from './client/index.js';
import type { AssetType } from './client/gql/graphql.js';
import { parseDuration } from './config.js';
import { ConfigError } from './errors.js';

/** Where a command writes: results on `out`, errors on `err`, progress (a terminal only) on `progress`. */
export interface FilesIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Redraws one status line; absent when stderr is not a terminal. */
  progress?: (line: string) => void;
  /** Raw bytes for `get -o -`. */
  stdout?: NodeJS.WritableStream;
}

export const FILES_USAGE = `  assetgate upload FILE… [--tag T…] [--dir ID] [--public] [--title T] [--json]
  assetgate ls [--type T] [--tag T…] [--search S] [--json]
  assetgate get ID [-o FILE|-]
  assetgate preview ID [--page N] [--time S] [--width W] [--format F] [-o FILE|-]
  assetgate rm ID… [--permanently]
  assetgate url ID [--expires DURATION] [--max-fetches N]

These talk to a running server: ASSETGATE_URL (default http://localhost:4000) and
ASSETGATE_KEY, or --url and --key. Exit codes: 0 done, 1 failed (the server's error
code on stderr), 2 usage.`;

const HELP: Record<string, string> = {
  upload: `usage: assetgate upload FILE… [--tag T…] [--dir ID] [--public] [--title T] [--json]

Uploads each file and waits until the server has stored it. Files of ${'8 MiB'} or more go
over the resumable (tus) path in chunks, so a dropped connection costs one chunk. With
--json, prints one JSON object per file (the asset) on its own line; otherwise
"ID  FILENAME  STATUS". A file that fails does not stop the others; the exit code is 1
when any failed.`,
  ls: `usage: assetgate ls [--type T] [--tag T…] [--search S] [--json]

Lists every asset that matches, newest first, paging through all of them. --type is one
of IMAGE, PDF, VIDEO, AUDIO, DOCUMENT, DATA, LINK, EXTERNAL_VIDEO, OTHER (repeatable).
With --json, one JSON object per asset per line.`,
  get: `usage: assetgate get ID [-o FILE|-]

Downloads an asset's bytes to FILE (default: its filename in the current folder, never
overwriting a file that exists); -o - writes them to stdout.`,
  preview: `usage: assetgate preview ID [--page N] [--time S] [--width W] [--format F] [-o FILE|-]

Saves a picture of the asset: of an image, of a PDF's page (--page, default 1), of a
video's frame (--time in seconds, default the poster frame) or of an audio file's
waveform, --width pixels wide (default 1024) as --format (webp, png, jpeg or avif;
default webp). FILE defaults to the asset's name with what was asked (report-p2.webp,
clip-poster.webp), never overwriting a file that exists; -o - writes to stdout. Fails
with UNSUPPORTED_MEDIA_TYPE and the reason when no picture can be made of the file.`,
  rm: `usage: assetgate rm ID… [--permanently]

Moves each asset to the trash (restorable until the server's TRASH_RETENTION has passed);
with --permanently, deletes it and its bytes for good. Prints "deleted ID". Goes on past a
failure; exit code 1 when any failed.`,
  url: `usage: assetgate url ID [--expires DURATION] [--max-fetches N]

Prints a signed download URL that needs no key: it expires after DURATION (e.g. 90s, 15m,
1h, 7d; default the server's DOWNLOAD_URL_TTL) and, with --max-fetches, answers N times.`,
};

const COMMON = {
  url: { type: 'string' },
  key: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const OPTIONS = {
  upload: {
    ...COMMON,
    tag: { type: 'string', multiple: true },
    dir: { type: 'string' },
    public: { type: 'boolean' },
    title: { type: 'string' },
    json: { type: 'boolean' },
  },
  ls: {
    ...COMMON,
    type: { type: 'string', multiple: true },
    tag: { type: 'string', multiple: true },
    search: { type: 'string' },
    json: { type: 'boolean' },
  },
  get: { ...COMMON, output: { type: 'string', short: 'o' } },
  preview: {
    ...COMMON,
    output: { type: 'string', short: 'o' },
    page: { type: 'string' },
    time: { type: 'string' },
    width: { type: 'string' },
    format: { type: 'string' },
  },
  rm: { ...COMMON, permanently: { type: 'boolean' } },
  url: { ...COMMON, expires: { type: 'string' }, 'max-fetches': { type: 'string' } },
} as const satisfies Record<string, ParseArgsConfig['options']>;

export type FilesCommand = keyof typeof OPTIONS;
export const FILES_COMMANDS = Object.keys(OPTIONS) as FilesCommand[];

const ASSET_TYPES = ['AUDIO', 'DATA', 'DOCUMENT', 'EXTERNAL_VIDEO', 'IMAGE', 'LINK', 'OTHER', 'PDF', 'VIDEO'];
/** Files from this size on go up resumably, chunk by chunk. */
const RESUMABLE_FROM = 8 * 1024 * 1024;

class UsageError extends Error {}

/** "CODE: message" for anything a command can fail with. */
function describeFailure(error: unknown, server: string): string {
  if (error instanceof AssetgateError) return `${error.code ?? `HTTP_${error.status}`}: ${error.message}`;
  const cause = (error as { cause?: { code?: string } }).cause;
  if (error instanceof TypeError && cause?.code) return `UNREACHABLE: cannot reach ${server} (${cause.code})`;
  if (error instanceof TypeError && /fetch failed/.test(error.message)) return `UNREACHABLE: cannot reach ${server}`;
  const code = (error as NodeJS.ErrnoException).code;
  return code ? `${code}: ${(error as Error).message}` : (error as Error).message;
}

function humanSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** A 24-cell bar with the share done, the bytes and the file's name. */
export function progressLine(name: string, done: number, total: number): string {
  const share = total > 0 ? Math.min(1, done / total) : 1;
  const cells = Math.round(share * 24);
  return `${'#'.repeat(cells)}${'.'.repeat(24 - cells)} ${String(Math.floor(share * 100)).padStart(3)}% ${humanSize(done)}/${humanSize(total)} ${name}`;
}

/** Counts bytes as they pass, for `get`'s progress. */
function meter(onBytes: (n: number) => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      onBytes(seen);
      done(null, chunk);
    },
  });
}

/** What every command talks through: the client, the terminal and the server's address for messages. */
interface Session {
  client: AssetgateClient;
  io: FilesIo;
  server: string;
}

async function upload(
  { client, io, server }: Session,
  files: string[],
  values: { tag?: string[]; dir?: string; public?: boolean; title?: string; json?: boolean },
): Promise<number> {
  if (files.length === 0) throw new UsageError('upload needs at least one FILE');
  const fields = {
    tags: values.tag,
    directoryId: values.dir,
    isPublic: values.public,
    title: values.title,
  };
  let failed = 0;
  for (const path of files) {
    const filename = basename(path);
    try {
      const size = (await stat(path)).size;
      const file = { blob: await openAsBlob(path), filename };
      io.progress?.(progressLine(filename, 0, size));
      let asset: Asset | null;
      if (size >= RESUMABLE_FROM) {
        ({ asset } = await client.uploadResumable(file, fields, {
          onProgress: (done, total) => io.progress?.(progressLine(filename, done, total)),
        }));
      } else {
        asset = await client.upload(file, fields);
      }
      io.progress?.(progressLine(filename, size, size));
      if (!asset) throw new Error('the server stored the file but the key may not read it back');
      io.out(values.json ? JSON.stringify(asset) : `${asset.id}  ${asset.filename}  ${asset.status}`);
    } catch (error) {
      failed++;
      io.err(`assetgate: ${path}: ${describeFailure(error, server)}`);
    }
  }
  return failed ? 1 : 0;
}

async function list(
  client: AssetgateClient,
  values: { type?: string[]; tag?: string[]; search?: string; json?: boolean },
  io: FilesIo,
): Promise<number> {
  const types = values.type?.map((t) => t.toUpperCase());
  const unknown = types?.find((t) => !ASSET_TYPES.includes(t));
  if (unknown) throw new UsageError(`--type ${unknown} is not one of ${ASSET_TYPES.join(', ')}`);
  const filter = { types: types as AssetType[] | undefined, tags: values.tag, search: values.search };
  for await (const asset of client.list({ filter, pageSize: 100 })) {
    if (values.json) io.out(JSON.stringify(asset));
    else
      io.out(
        [
          asset.id,
          asset.status,
          asset.type,
          asset.size === null ? '-' : humanSize(asset.size),
          asset.filename ?? asset.title,
        ].join('  '),
      );
  }
  return 0;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Throws the server's error for a download that was not answered with bytes. */
async function failed(response: Response): Promise<never> {
  const body = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  throw new AssetgateError(
    [{ message: body.error?.message ?? response.statusText, extensions: { code: body.error?.code } }],
    response.status,
  );
}

/**
 * Writes the body of `response` to `output` (`-`: stdout), or to `name`'s last part in the
 * current folder, never over a file that exists; progress under `name`.
 */
async function save(response: Response, target: { name: string; output?: string; size?: number | null }, io: FilesIo) {
  if (!response.ok || !response.body) return failed(response);
  const { name, output } = target;
  const total = Number(response.headers.get('content-length') ?? target.size ?? 0);
  // Never the server's path: only the last part of the name, in the current folder.
  const file = output ?? basename(name.replace(/\\/g, '/'));
  if (output === undefined && (await exists(file))) {
    await response.body.cancel();
    throw Object.assign(new Error(`${file} exists; name another with -o`), { code: 'EEXIST' });
  }
  const source = Readable.fromWeb(response.body as never);
  const shown = meter((n) => io.progress?.(progressLine(name, n, total)));
  if (output === '-') {
    await pipeline(source, shown, io.stdout ?? process.stdout, { end: false });
    return 0;
  }
  const partial = `${file}.part-${process.pid}`;
  try {
    await pipeline(source, shown, createWriteStream(partial, { flags: 'wx' }));
    await rename(partial, file);
  } finally {
    await rm(partial, { force: true });
  }
  io.err(`saved ${file} (${humanSize(total)})`);
  return 0;
}

async function found(client: AssetgateClient, ids: string[], command: string): Promise<Asset> {
  if (ids.length !== 1) throw new UsageError(`${command} takes one asset ID`);
  const asset = await client.get(ids[0]);
  if (!asset) throw new AssetgateError([{ message: `no asset ${ids[0]}`, extensions: { code: 'NOT_FOUND' } }], 404);
  return asset;
}

async function get({ client, io }: Session, ids: string[], output: string | undefined): Promise<number> {
  const asset = await found(client, ids, 'get');
  const response = await client.download(asset);
  return save(response, { name: asset.filename ?? asset.id, output, size: asset.size }, io);
}

const PREVIEW_FORMATS = ['webp', 'png', 'jpeg', 'avif'];

/** Saves a rendition: of an image, or of a PDF's page, a video's frame, an audio file's waveform. */
async function preview(
  { client, io }: Session,
  ids: string[],
  values: { page?: string; time?: string; width?: string; format?: string; output?: string },
): Promise<number> {
  const format = values.format ?? 'webp';
  if (!PREVIEW_FORMATS.includes(format)) throw new UsageError(`--format is one of ${PREVIEW_FORMATS.join(', ')}`);
  for (const name of ['page', 'width'] as const) {
    if (values[name] !== undefined && !/^[1-9]\d{0,4}$/.test(values[name]))
      throw new UsageError(`--${name} takes a whole number of at least 1`);
  }
  if (values.time !== undefined && !/^\d+(\.\d+)?$/.test(values.time))
    throw new UsageError('--time takes a number of seconds');
  const asset = await found(client, ids, 'preview');
  if (!asset.url) throw new Error('this asset has no bytes to make a picture of');
  const url = new URL(asset.url);
  url.searchParams.set('w', values.width ?? '1024');
  url.searchParams.set('format', format);
  if (values.page !== undefined) url.searchParams.set('page', values.page);
  if (values.time !== undefined) url.searchParams.set('t', values.time);
  const response = await client.download({ url: url.href });
  const stem = (asset.filename ?? asset.id).replace(/\.[^./\\]*$/, '');
  const what =
    asset.type === 'PDF'
      ? `p${values.page ?? 1}`
      : values.time
        ? `t${values.time}`
        : (({ VIDEO: 'poster', AUDIO: 'waveform' } as Record<string, string>)[asset.type] ??
          `w${values.width ?? 1024}`);
  const ext = format === 'jpeg' ? 'jpg' : format;
  return save(response, { name: `${stem}-${what}.${ext}`, output: values.output }, io);
}

async function remove({ client, io, server }: Session, ids: string[], permanently: boolean): Promise<number> {
  if (ids.length === 0) throw new UsageError('rm needs at least one asset ID');
  let failed = 0;
  for (const id of ids) {
    try {
      io.out(`deleted ${await client.delete(id, { permanently })}`);
    } catch (error) {
      failed++;
      io.err(`assetgate: ${id}: ${describeFailure(error, server)}`);
    }
  }
  return failed ? 1 : 0;
}

async function signedUrl(
  { client, io }: Session,
  ids: string[],
  values: { expires?: string; 'max-fetches'?: string },
): Promise<number> {
  if (ids.length !== 1) throw new UsageError('url takes one asset ID');
  let expiresIn: number | undefined;
  try {
    expiresIn =
      values.expires === undefined ? undefined : Math.max(1, Math.round(parseDuration('--expires', values.expires)));
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  const maxFetches = values['max-fetches'] === undefined ? undefined : Number(values['max-fetches']);
  if (maxFetches !== undefined && !(Number.isInteger(maxFetches) && maxFetches > 0))
    throw new UsageError('--max-fetches takes a whole number of at least 1');
  const { url } = await client.downloadUrl(ids[0], { expiresIn, maxFetches });
  io.out(url);
  return 0;
}

/**
 * The commands that talk to a running server through the typed client. Returns the
 * exit code: 0 done, 1 failed (the server's code on stderr), 2 usage.
 */
export async function runFilesCommand(
  command: FilesCommand,
  args: string[],
  { env, io }: { env: Record<string, string | undefined>; io: FilesIo },
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: OPTIONS[command] });
  } catch (error) {
    io.err(`assetgate ${command}: ${(error as Error).message}\n\n${HELP[command]}`);
    return 2;
  }
  const values = parsed.values as Record<string, never>;
  if (parsed.values.help) {
    io.out(HELP[command]);
    return 0;
  }
  const server = (parsed.values.url ?? env.ASSETGATE_URL ?? 'http://localhost:4000').replace(/\/+$/, '');
  const apiKey = parsed.values.key ?? env.ASSETGATE_KEY;
  if (!apiKey) {
    io.err(`assetgate ${command}: no API key: set ASSETGATE_KEY or pass --key`);
    return 2;
  }
  const client = createClient({ url: server, apiKey });
  const session: Session = { client, io, server };
  try {
    switch (command) {
      case 'upload':
        return await upload(session, parsed.positionals, values);
      case 'ls':
        if (parsed.positionals.length) throw new UsageError('ls takes no positional arguments');
        return await list(client, values, io);
      case 'get':
        return await get(session, parsed.positionals, (parsed.values as { output?: string }).output);
      case 'preview':
        return await preview(session, parsed.positionals, values);
      case 'rm':
        return await remove(
          session,
          parsed.positionals,
          (parsed.values as { permanently?: boolean }).permanently ?? false,
        );
      case 'url':
        return await signedUrl(session, parsed.positionals, values);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`assetgate ${command}: ${error.message}\n\n${HELP[command]}`);
      return 2;
    }
    io.err(`assetgate: ${describeFailure(error, server)}`);
    return 1;
  }
}
