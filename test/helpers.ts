import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { before, describe } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Server } from 'node:http';
import { createHttpServer } from '../src/http/server.js';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import pg from 'pg';
import { type App, type AppOverrides, createApp } from '../src/app.js';
import { SCOPES, type Scope } from '../src/auth/scopes.js';
import { type Config, loadConfig } from '../src/config.js';
import { createDatabase } from '../src/db/database.js';
import { s3rverArgs } from '../scripts/s3rver.js';

/** A fresh data folder, removed by the returned function. */
export function tempDir(prefix = 'assetgate-test-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestApp extends App {
  config: Config;
  /** The database, blob store and shared state it runs on. */
  setup: Setup;
  dataDir: string;
  /** A live key of org `acme` with every scope. */
  key: string;
  /** `Authorization` header carrying `key`: the default of `gql`. */
  authHeaders: Record<string, string>;
  /** Creates another key (and its org when new). */
  createKey(orgId: string, scopes?: readonly Scope[], mode?: 'live' | 'test'): Promise<string>;
  /** Runs a GraphQL operation in-process through `yoga.fetch`, with `authHeaders` unless other headers are given. */
  gql<T = any>(
    query: string,
    variables?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<GqlResult<T>>;
  /** Counts SQL statements while `fn` runs. */
  countQueries(fn: () => Promise<unknown>): Promise<number>;
  /** The SQL text of every statement run while `fn` runs. */
  recordQueries(fn: () => Promise<unknown>): Promise<string[]>;
  dispose(): Promise<void>;
}

export interface GqlResult<T> {
  status: number;
  headers: Headers;
  data: T;
  errors?: { message: string; path?: string[]; extensions: Record<string, any> }[];
}

export type Dialect = 'sqlite' | 'postgres';

/** One way to run the gateway: a database, a blob store, and where gateways keep shared state. */
export interface Setup {
  /** What suites are described by: the dialect for a bundle, every axis for a crossed setup. */
  name: string;
  dialect: Dialect;
  blobs: 'fs' | 's3';
  state: 'memory' | 'redis';
}

/**
 * The two bundles every database-facing suite runs against: `sqlite` (the embedded
 * default: SQLite, files, state in process) and `postgres` (what several gateways
 * share: PostgreSQL, an S3 store on s3rver, Redis).
 */
const BUNDLES: Record<Dialect, Setup> = {
  sqlite: { name: 'sqlite', dialect: 'sqlite', blobs: 'fs', state: 'memory' },
  postgres: { name: 'postgres', dialect: 'postgres', blobs: 's3', state: 'redis' },
};

/**
 * The bundles with their axes crossed, so that no store or state passes only because of
 * the database it always ran with. `forEachSetup` adds them, for the suites where the
 * axes meet (a row and its blob, quota, downloads, shared limits, tus).
 */
const CROSSED: readonly Setup[] = [
  { name: 'sqlite+s3+redis', dialect: 'sqlite', blobs: 's3', state: 'redis' },
  { name: 'postgres+fs+memory', dialect: 'postgres', blobs: 'fs', state: 'memory' },
];

/** `TEST_DIALECTS` (comma-separated) picks the databases; by default both. */
export const DIALECTS: readonly Dialect[] = (process.env.TEST_DIALECTS ?? 'sqlite,postgres').split(',').map((name) => {
  if (name !== 'sqlite' && name !== 'postgres') throw new Error(`TEST_DIALECTS: unknown dialect "${name}"`);
  return name;
});

/** The bundles and, unless `TEST_CROSSED=0`, the crossed setups, on the databases `TEST_DIALECTS` picks. */
export const SETUPS: readonly Setup[] = [
  ...DIALECTS.map((dialect) => BUNDLES[dialect]),
  ...(process.env.TEST_CROSSED === '0' ? [] : CROSSED.filter((setup) => DIALECTS.includes(setup.dialect))),
];

/** The setup of the suite being run; `createTestApp` uses it unless told another dialect. */
let currentSetup: Setup = BUNDLES[DIALECTS[0]];

function describeSetup(setup: Setup, body: (dialect: Dialect, setup: Setup) => void): void {
  describe(setup.name, () => {
    before(() => {
      currentSetup = setup;
    });
    body(setup.dialect, setup);
  });
}

/**
 * Runs a database-facing suite once per configured dialect: `body` is declared inside
 * a describe named after the dialect, whose apps (`createTestApp`) use that bundle.
 */
export function forEachDialect(body: (dialect: Dialect) => void): void {
  for (const dialect of DIALECTS) describeSetup(BUNDLES[dialect], body);
}

/**
 * `forEachDialect` plus the crossed setups (`SETUPS`): for suites where the database,
 * the blob store and shared state meet. Each describe is named after its setup
 * (`sqlite+s3+redis`), so a failure says which combination broke.
 */
export function forEachSetup(body: (dialect: Dialect, setup: Setup) => void): void {
  for (const setup of SETUPS) describeSetup(setup, body);
}

/** PostgreSQL of the test machine (trust auth); override with TEST_DATABASE_URL. */
const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh, empty PostgreSQL schema and a URL whose connections use it. */
export async function postgresSchema(): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const url = `${POSTGRES_URL}${POSTGRES_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    url,
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`drop schema ${schema} cascade`);
      await client.end();
    },
  };
}

/**
 * An app on a throwaway folder in the setup of the suite being run: a SQLite file or a
 * fresh PostgreSQL schema, files under the folder or a fresh prefix on s3rver, state in
 * process or in Redis. A `dialect` other than the suite's gets that dialect's bundle.
 */
export async function createTestApp(
  env: Record<string, string> = {},
  overrides: AppOverrides = {},
  dialect: Dialect = currentSetup.dialect,
): Promise<TestApp> {
  const setup = dialect === currentSetup.dialect ? currentSetup : BUNDLES[dialect];
  const { dir, remove } = tempDir();
  const postgres = setup.dialect === 'postgres' ? await postgresSchema() : undefined;
  const shared = {
    ...(setup.blobs === 's3' && (await s3Server()).env()),
    ...(setup.state === 'redis' && { REDIS_URL }),
  };
  // Suites make hundreds of calls a minute; the rate limit has a suite of its own.
  const config = loadConfig({
    DATA_DIR: dir,
    PUBLIC_URL: 'http://assets.test',
    RATE_LIMIT: '0',
    // Likewise the rate of new renditions for callers without a key (rendition-cache).
    RENDITION_ANON_RATE: '0',
    // The log has suites of its own (operations); elsewhere it would only drown the test report.
    LOG_LEVEL: 'silent',
    ...(postgres && { DATABASE_URL: postgres.url }),
    ...shared,
    ...env,
  });
  let recording: string[] | undefined;
  const db =
    overrides.db ??
    createDatabase({
      url: config.databaseUrl,
      poolSize: config.databasePool,
      poolWait: config.databasePoolWait,
      onQuery: (event) => {
        if (event.level === 'query') recording?.push(event.query.sql);
      },
    });
  const recordQueries = async (fn: () => Promise<unknown>) => {
    recording = [];
    try {
      await fn();
      return recording;
    } finally {
      recording = undefined;
    }
  };
  const unexpected: unknown[] = [];
  const app = await createApp(config, { logError: (e) => unexpected.push(e), ...overrides, db });
  const createKey = async (orgId: string, scopes: readonly Scope[] = SCOPES, mode: 'live' | 'test' = 'live') =>
    (await app.services.apiKeys.create({ orgId, scopes, mode, name: `${orgId} ${mode}` })).key;
  const key = await createKey('acme');
  const authHeaders = { authorization: `Bearer ${key}` };
  return {
    ...app,
    config,
    setup,
    dataDir: dir,
    key,
    authHeaders,
    createKey,
    async gql(query, variables, headers = authHeaders) {
      const response = await app.yoga.fetch('http://assets.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
      const json = (await response.json()) as any;
      return { status: response.status, headers: response.headers, data: json.data, errors: json.errors };
    },
    recordQueries,
    countQueries: async (fn) => (await recordQueries(fn)).length,
    async dispose() {
      await app.close();
      await postgres?.drop();
      remove();
      if (unexpected.length) {
        console.error(unexpected);
        throw new AggregateError(unexpected, 'unexpected errors were logged');
      }
    },
  };
}

/** Serves `handler` on a free loopback port. */
export async function listen(
  handler: App['handler'],
  config: Parameters<typeof createHttpServer>[1] = {
    httpHeadersTimeout: 20,
    httpRequestTimeout: 3600,
    httpIdleTimeout: 60,
  },
  atPort = 0,
): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createHttpServer(handler, config);
  await new Promise<void>((resolve) => server.listen(atPort, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A GraphQL multipart body for `fetch`: `files` go to the given variable paths. */
export function multipartForm(
  query: string,
  variables: Record<string, unknown>,
  files: [string, Blob, string][],
): FormData {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query, variables }));
  form.append('map', JSON.stringify(Object.fromEntries(files.map(([p], i) => [String(i), [p]]))));
  files.forEach(([, blob, name], i) => form.append(String(i), blob, name));
  return form;
}

/** POSTs a multipart upload with the CSRF header and returns the parsed JSON. */
export async function postMultipart(url: string, form: FormData, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    body: form,
    headers: { 'x-graphql-yoga-csrf': '1', ...headers },
  });
  return { status: response.status, json: (await response.json()) as any };
}

/** A valid 1×1 … w×h PNG, made without an image library (stored, uncompressed deflate). */
export function png(width: number, height: number): Buffer {
  const { deflateSync, crc32 } = zlibHelpers();
  const raw = Buffer.alloc((width * 3 + 1) * height);
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function zlibHelpers() {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const byte of buf) c = table[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  return { deflateSync: zlib.deflateSync, crc32 };
}

/** A minimal one-page PDF. */
export function pdf(): Buffer {
  return Buffer.from(
    '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n' +
      '3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n',
  );
}

/** Files and folders under `dir`, relative, sorted: to assert nothing was left behind. */
export async function listFiles(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? (e as any).path, e.name)))
    .sort();
}

/** One GraphQL operation; with `files` it is sent as a multipart request (variable path → content). */
export interface Operation {
  query: string;
  variables?: Record<string, unknown>;
  files?: Record<string, string>;
}

/** Sends `operation` to a listening server with `headers`; returns the status and parsed body. */
export async function sendOperation(url: string, operation: Operation, headers: Record<string, string>) {
  const { query, variables = {}, files } = operation;
  const init: RequestInit = files
    ? {
        body: multipartForm(
          query,
          variables,
          Object.entries(files).map(([p, content]) => [p, new Blob([content]), 'f.txt'] as [string, Blob, string]),
        ),
        headers: { ...headers, 'x-graphql-yoga-csrf': '1' },
      }
    : { body: JSON.stringify({ query, variables }), headers: { ...headers, 'content-type': 'application/json' } };
  const response = await fetch(`${url}/graphql`, { method: 'POST', ...init });
  return { status: response.status, ...((await response.json()) as { data?: any; errors?: any[] }) };
}

/** Polls `read` until `done` holds: for effects that land just after a response. Throws past `timeoutMs`. */
export async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value)) {
    // What was waited for never happened: a failure, not a value for the caller to misread.
    if (Date.now() > deadline)
      throw new Error(`waitFor: not done within ${timeoutMs} ms (last: ${String(value).slice(0, 200)})`);
    await new Promise((r) => setTimeout(r, 10));
    value = await read();
  }
  return value;
}

/** Stores `bytes` as a file of acme's (live) and waits for its background jobs; its global id. */
export async function uploadTo(app: TestApp, bytes: Buffer, filename: string): Promise<string> {
  const asset = await app.services.assets.upload(
    { orgId: 'acme', mode: 'live' },
    { stream: Readable.from([bytes]), filename },
  );
  const id = Buffer.from(`Asset:${asset.id}`).toString('base64url');
  await processed(app, id);
  return id;
}

/** Waits until background jobs are done, then reads the asset with `fields`. */
export async function processed(app: TestApp, id: string, fields = 'id status failureReason') {
  await app.jobs?.idle();
  const result = await app.gql(`query($id: ID!) { asset(id: $id) { ${fields} } }`, { id });
  return result.data.asset;
}

/**
 * Runs the consistency check and fails when the database and the blob store disagree.
 * Once the jobs are idle nothing is in flight, so no blob is young: one left behind a
 * moment ago is reported (the second ahead covers the stores' clock resolution).
 */
export async function assertConsistent(app: TestApp): Promise<void> {
  await app.jobs?.idle();
  const { isClean } = await import('../src/services/lifecycle/fsck.js');
  const report = await app.fsck({ checksums: true, orphanGraceMs: 0, now: Date.now() + 1000 });
  if (!isClean(report)) throw new Error(`inconsistent store: ${JSON.stringify(report)}`);
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The built server (`dist/main.js`) as a process of its own. */
export interface ServerProcess {
  child: ChildProcess;
  url: string;
  port: number;
  /** The key printed on first start (empty when the data folder already had keys). */
  key: string;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
}

/** Starts the built server on `dir` and resolves once it listens; `env` adds to or overrides its configuration. */
export async function startServer(
  dir: string,
  options: { port?: number; env?: Record<string, string> } = {},
): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/main.js')], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dir, PUBLIC_URL: url, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
  for (let i = 0; i < 100 && !output.includes('listening') && child.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!output.includes('listening')) {
    // One that starts late would keep the test process alive after the failure.
    child.kill('SIGKILL');
    throw new Error(`the server did not start:\n${output}`);
  }
  const key = /\b(sk_live_default_[0-9a-f]{48})\b/.exec(output)?.[1] ?? '';
  return { child, url, port, key, output: () => output };
}

/** The S3-compatible server (s3rver) this test process runs on loopback, and the bucket it made. */
export interface S3Server {
  endpoint: string;
  bucket: string;
  /** What `createApp` needs to reach it: BLOB_STORE under a fresh prefix, and the connection. */
  env(prefix?: string): Record<string, string>;
  /**
   * Keys of the multipart uploads begun under `prefix` and neither completed nor
   * aborted, read from the server's own folder (s3rver cannot list them over the API).
   */
  incompleteUploads(prefix: string): Promise<string[]>;
}

let s3: Promise<S3Server> | undefined;

/**
 * Starts s3rver (a real S3 protocol server, from npm) for this test process on first
 * use; it is killed when the process exits. Every caller gets its own prefix.
 */
export function s3Server(): Promise<S3Server> {
  s3 ??= (async () => {
    const data = tempDir('assetgate-s3-');
    const bucket = 'assetgate-test';
    const child = spawn(process.execPath, s3rverArgs(data.dir, bucket), { stdio: ['ignore', 'pipe', 'inherit'] });
    process.once('exit', () => {
      child.kill('SIGKILL');
      data.remove();
    });
    let output = '';
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (chunk) => {
        output += chunk;
        const match = /listening on [\d.]+:(\d+)/.exec(output);
        if (match) resolve(Number(match[1]));
      });
      child.once('exit', (code) => reject(new Error(`s3rver exited (${code}): ${output}`)));
    });
    // From here on it must not keep the test process alive.
    child.unref();
    (child.stdout as unknown as { unref(): void }).unref();
    const endpoint = `http://127.0.0.1:${port}`;
    return {
      endpoint,
      bucket,
      async incompleteUploads(prefix) {
        const { readdir, readFile } = await import('node:fs/promises');
        const root = path.join(data.dir, bucket);
        const folders = (await readdir(root)).filter((name) => name.includes('uploads'));
        const keys: string[] = [];
        for (const folder of folders) {
          for (const id of await readdir(path.join(root, folder))) {
            const key = await readFile(path.join(root, folder, id, 'key'), 'utf8');
            if (key.startsWith(`${prefix}/`)) keys.push(key);
          }
        }
        return keys;
      },
      env: (prefix = `t${randomBytes(6).toString('hex')}`) => ({
        BLOB_STORE: `s3://${bucket}/${prefix}`,
        S3_ENDPOINT: endpoint,
        S3_FORCE_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
      }),
    };
  })();
  return s3;
}

/** Redis of the test machine; override with TEST_REDIS_URL. */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every key in an app's blob store, sorted: what is stored, whichever store it is. */
export async function storedKeys(app: { blobs: App['blobs'] }): Promise<string[]> {
  const keys: string[] = [];
  for await (const blob of app.blobs.list()) keys.push(blob.key);
  return keys.sort();
}

/**
 * Everything an app's blob store holds, finished or not: its keys, plus the files in the
 * filesystem store's folder (temporary ones too) or the multipart uploads begun on S3 and
 * never completed or aborted. What a refused or cut-short upload must leave unchanged,
 * whichever store the setup has.
 */
export async function blobFootprint(app: TestApp): Promise<{ keys: string[]; partial: string[] }> {
  const keys = await storedKeys(app);
  const spec = app.config.blobStore;
  if (spec.startsWith('s3://')) {
    const prefix = spec.slice('s3://'.length).split('/').slice(1).join('/');
    return { keys, partial: (await (await s3Server()).incompleteUploads(prefix)).sort() };
  }
  if (spec === 'memory') return { keys, partial: [] };
  return { keys, partial: await listFiles(spec.startsWith('fs:') ? spec.slice(3) : path.join(app.dataDir, 'blobs')) };
}
