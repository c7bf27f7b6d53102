import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { symlink, utimes } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { type BlobStore, createBlobKey } from '../src/blob/index.js';
import { FsBlobStore } from '../src/blob/fs-blob-store.js';
import { S3BlobStore } from '../src/blob/s3-blob-store.js';
import { decodeGlobalId, encodeGlobalId } from '../src/global-id.js';
import { loadConfig } from '../src/config.js';
import { createDatabase } from '../src/db/database.js';
import { migrateOrThrow } from '../src/db/migrate.js';
import { isClean } from '../src/services/lifecycle/fsck.js';
import {
  assertConsistent,
  createTestApp,
  type Dialect,
  DIALECTS,
  forEachDialect,
  listen,
  png,
  postgresSchema,
  s3Server,
  storedKeys,
  tempDir,
  type TestApp,
} from './helpers.js';

const TENANT = { orgId: 'acme', mode: 'live' } as const;
const HOURS = 3600_000;

/** A store that lets a test act at two moments of a check: as it starts listing, and before a `head`. */
class WatchedStore implements BlobStore {
  /** Runs (once) when a listing starts, before its first blob. */
  onList?: () => Promise<void>;
  /** Runs before each `head`. */
  onHead?: (key: string) => Promise<void>;
  /** Puts of keys it matches wait until `release` is called. */
  hold?: { match: RegExp; released: Promise<void> };
  constructor(readonly inner: BlobStore) {}
  async put(key: string, body: Readable) {
    if (this.hold?.match.test(key)) await this.hold.released;
    return this.inner.put(key, body);
  }
  get: BlobStore['get'] = (key, range) => this.inner.get(key, range);
  delete = (key: string) => this.inner.delete(key);
  async head(key: string) {
    await this.onHead?.(key);
    return this.inner.head(key);
  }
  async *list() {
    const hook = this.onList;
    this.onList = undefined;
    await hook?.();
    yield* this.inner.list();
  }
  close = () => this.inner.close();
}

/** The store each dialect's apps use, built here so that a test can watch it. */
async function storeOf(dialect: Dialect, dir: string): Promise<BlobStore> {
  if (dialect === 'sqlite') return new FsBlobStore({ root: dir });
  const s3 = await s3Server();
  return new S3BlobStore({
    bucket: s3.bucket,
    prefix: `fsck-${Math.random().toString(36).slice(2, 10)}`,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
}

forEachDialect((dialect) => {
  describe(`fsck while the service runs (${dialect})`, () => {
    let app: TestApp;
    let store: WatchedStore;
    let server: Awaited<ReturnType<typeof listen>>;
    before(async () => {
      const folder = tempDir('assetgate-fsck-');
      store = new WatchedStore(await storeOf(dialect, folder.dir));
      app = await createTestApp({ SWEEP_INTERVAL: '0' }, { blobs: store }, dialect);
      server = await listen(app.handler);
      after(folder.remove);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    const upload = (bytes: Buffer, filename: string) =>
      app.services.assets.upload(TENANT, { stream: Readable.from([bytes]), filename });
    const fetchPath = (url: string, headers: Record<string, string> = {}) =>
      fetch(`${server.url}${new URL(url).pathname}${new URL(url).search}`, { headers });
    /** Every asset's bytes download as `expected` says, and its thumbnail serves as an image. */
    const assertServed = async (expected: Map<string, Buffer>) => {
      for (const [rowId, bytes] of expected) {
        const id = encodeGlobalId('Asset', rowId);
        const { data } = await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', { id });
        const { url } = data.createDownloadUrl;
        const { asset } = (await app.gql('query($id: ID!) { asset(id: $id) { status thumbnailUrl } }', { id })).data;
        assert.equal(asset.status, 'READY');
        const download = await fetchPath(url);
        assert.equal(download.status, 200);
        assert.ok(Buffer.from(await download.arrayBuffer()).equals(bytes), `asset ${rowId} serves its bytes`);
        const thumbnail = await fetchPath(asset.thumbnailUrl, app.authHeaders);
        assert.equal(thumbnail.status, 200, `the thumbnail of ${rowId} serves`);
        assert.equal(thumbnail.headers.get('content-type'), 'image/webp');
      }
    };

    test('during a burst of uploads, replacements and thumbnails, fsck --repair reports and deletes nothing', async () => {
      const expected = new Map<string, Buffer>();
      const uploads = Array.from({ length: 36 }, async (_, i) => {
        // Every sixth file repeats an earlier one's bytes: shared copies are counted meanwhile.
        const bytes = png(8 + (i % 6 === 5 ? i - 1 : i), 8);
        const row = await upload(bytes, `burst-${i}.png`);
        if (i % 9 === 0) {
          const next = png(60 + i, 9);
          await app.services.assets.replaceFile(TENANT, row.id, { stream: Readable.from([next]), filename: 'v2.png' });
          expected.set(row.id, next);
        } else expected.set(row.id, bytes);
      });
      let done = false;
      const work = Promise.all(uploads)
        .then(() => app.jobs!.idle())
        .finally(() => (done = true));
      const reports = [];
      // Checks back to back until the uploads are in and processing has nothing left to do.
      do reports.push(await app.fsck({ repair: true, checksums: true }));
      while (!done);
      await work;
      for (const report of reports) {
        assert.deepEqual(
          { ...report, assetsChecked: 0, blobsChecked: 0, youngBlobs: 0 },
          {
            assetsChecked: 0,
            blobsChecked: 0,
            youngBlobs: 0,
            missingBlobs: [],
            damagedBlobs: [],
            missingRenditions: [],
            orphanBlobs: [],
            refCountMismatches: [],
            usageMismatches: [],
            repaired: true,
          },
          `a check found something live: ${JSON.stringify(report)}`,
        );
      }
      assert.ok(reports.length >= 2, 'checks ran while the burst did');
      await app.jobs!.idle();
      assert.ok(isClean(await app.fsck({ checksums: true })), 'consistent afterwards');
      await assertServed(expected);
    });

    test('a thumbnail drawn while the store is listed is kept, even past the grace period', async () => {
      const bytes = png(30, 20);
      const row = await upload(bytes, 'late.png');
      await app.jobs!.idle();
      const id = encodeGlobalId('Asset', row.id);
      const { thumbnailUrl } = (await app.gql('query($id: ID!) { asset(id: $id) { thumbnailUrl } }', { id })).data
        .asset;
      let release!: () => void;
      // Its thumbnail (a rendition, drawn on first request) is written only once the check lists the store.
      store.hold = {
        match: new RegExp(`${row.id}\\.r`),
        released: new Promise<void>((resolve) => (release = resolve)),
      };
      const drawn = fetchPath(thumbnailUrl, app.authHeaders);
      let served: Response | undefined;
      store.onList = async () => {
        release();
        served = await drawn;
      };
      try {
        const report = await app.fsck({ repair: true, now: Date.now() + 3 * HOURS });
        assert.deepEqual(report.orphanBlobs, [], 'held by its rendition row once listed: no orphan');
      } finally {
        store.hold = undefined;
      }
      assert.equal(served?.status, 200);
      assert.ok((await storedKeys(app)).some((key) => key.startsWith(`${row.id.slice(0, 2)}/${row.id}.r`)));
      await assertServed(new Map([[row.id, bytes]]));
    });

    test('bytes replaced while the check reads them are not reported lost, and stay served', async () => {
      const row = await upload(png(12, 34), 'moving.png');
      await app.jobs!.idle();
      const next = png(34, 12);
      // The asset is replaced (its old bytes deleted) just as the check looks at them.
      store.onHead = async (key) => {
        if (key !== row.blob_key) return;
        store.onHead = undefined;
        await app.services.assets.replaceFile(TENANT, row.id, { stream: Readable.from([next]), filename: 'moved.png' });
      };
      const report = await app.fsck({ repair: true });
      assert.equal(store.onHead, undefined, 'the replacement ran during the check');
      assert.deepEqual(report.missingBlobs, []);
      assert.deepEqual(report.damagedBlobs, []);
      await app.jobs!.idle();
      await assertServed(new Map([[row.id, next]]));
    });

    test('bytes put to an upload URL, not yet taken in, are an upload in flight: kept past the grace period', async () => {
      const { data } = await app.gql(
        'mutation { createUploadUrl(input: { filename: "later.txt", size: 9 }) { asset { id } uploadUrl } }',
      );
      const id = decodeGlobalId(data.createUploadUrl.asset.id).id;
      // Where a signed PUT straight to the store puts them, before any gateway has looked.
      const key = createBlobKey(id);
      await store.put(key, Readable.from([Buffer.from('arrived..')]));
      const report = await app.fsck({ repair: true, now: Date.now() + 3 * HOURS });
      assert.deepEqual(report.orphanBlobs, []);
      assert.ok(await store.head(key), 'still there for the upload to take in');
      await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id, permanently: true }) { deletedId } }', {
        id: data.createUploadUrl.asset.id,
      });
      await store.delete(key);
    });

    test('a rendition deleted with its asset while the check reads it is not reported lost', async () => {
      const row = await upload(png(40, 30), 'rendered.png');
      await app.jobs!.idle();
      const id = encodeGlobalId('Asset', row.id);
      const rendition = await fetch(`${server.url}/download/${id}?w=16&format=webp`, { headers: app.authHeaders });
      assert.equal(rendition.status, 200);
      await rendition.arrayBuffer();
      let deleted = false;
      store.onHead = async (key) => {
        if (!key.startsWith(`${row.id.slice(0, 2)}/${row.id}.r`)) return;
        store.onHead = undefined;
        await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id, permanently: true }) { deletedId } }', {
          id,
        });
        deleted = true;
      };
      const report = await app.fsck({ repair: true });
      assert.ok(deleted, 'the asset went while the check looked at its rendition');
      assert.deepEqual(report.missingRenditions, []);
      assert.ok(isClean(await app.fsck()));
    });

    test("the suites' own consistency check still sees a blob left behind a moment ago", async () => {
      const key = 'ab/abcdef04-0000-4000-8000-000000000000';
      await store.put(key, Readable.from([Buffer.from('leaked by a test just now')]));
      await assert.rejects(assertConsistent(app), /inconsistent store: .*orphanBlobs":\["ab\/abcdef04/);
      await store.delete(key);
      await assertConsistent(app);
    });

    test('an orphan is left alone while young, and found and removed once older than the grace period', async () => {
      const key = 'ab/abcdef02-0000-4000-8000-000000000000';
      await store.put(key, Readable.from([Buffer.from('left behind by a crash')]));
      const young = await app.fsck({ repair: true });
      assert.deepEqual(young.orphanBlobs, [], 'it may be an upload between its bytes and its row');
      assert.equal(young.youngBlobs, 1, 'counted as left alone');
      assert.ok(await store.head(key), 'left alone while young');
      // Aged on disk where the store keeps files; on S3 the check's clock moves on instead.
      const file = store.inner.localPath?.(key);
      const past = new Date(Date.now() - 2 * HOURS);
      if (file) await utimes(file, past, past);
      const later = file ? {} : { now: Date.now() + 2 * HOURS };
      assert.deepEqual((await app.fsck(later)).orphanBlobs, [key], 'reported once old');
      assert.ok(await store.head(key), 'reported only, without --repair');
      assert.deepEqual((await app.fsck({ ...later, repair: true })).orphanBlobs, [key]);
      assert.equal(await store.head(key), null, 'removed by --repair');
      assert.ok(isClean(await app.fsck(later)));
    });
  });
});

const BIN = fileURLToPath(new URL('../bin/assetgate.js', import.meta.url));

/** `assetgate fsck` as an operator runs it (the built CLI): its exit code and what it printed. */
function fsckProcess(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // The SDK's own notice about Node versions is not the CLI's output.
    const all = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env };
    execFile(process.execPath, [BIN, 'fsck', ...args], { env: all }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

/** A server that answers every request as an S3 server in trouble does: HTTP 500, InternalError. */
async function brokenS3(): Promise<{ endpoint: string; close: () => Promise<void> }> {
  const server = createServer((_request, response) => {
    response.writeHead(500, { 'content-type': 'application/xml' });
    response.end(
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>' +
        '<Message>We encountered an internal error. Please try again.</Message></Error>',
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/**
 * One line on stderr says what failed; anything else there is the CLI's own (`assetgate…`),
 * never a stack trace; nothing on stdout.
 */
function assertOneLine(run: { stdout: string; stderr: string }, expected: RegExp): void {
  assert.equal(run.stdout, '');
  const lines = run.stderr.trimEnd().split('\n');
  assert.ok(
    lines.every((line) => line.startsWith('assetgate')),
    `only the CLI's lines, not:\n${run.stderr}`,
  );
  const failures = lines.filter((line) => line.startsWith('assetgate fsck:'));
  assert.equal(failures.length, 1, `one line says what failed, not:\n${run.stderr}`);
  assert.match(failures[0], expected);
}

/** The database the configuration in `env` names, made (migrated) as a server's first start would. */
async function serverDatabase(env: Record<string, string>): Promise<Record<string, string>> {
  const db = createDatabase({ url: loadConfig(env).databaseUrl });
  await migrateOrThrow(db);
  await db.destroy();
  return env;
}

describe('fsck as a process', () => {
  const folder = tempDir('assetgate-fsck-cli-');
  after(folder.remove);

  test('FSCK_GRACE decides which orphans are old enough: exit 0 while young, 1 found, 0 repaired', async () => {
    const env = await serverDatabase({ DATA_DIR: path.join(folder.dir, 'grace') });
    const key = 'cd/cdef0124-0000-4000-8000-000000000000';
    const blobs = new FsBlobStore({ root: path.join(env.DATA_DIR, 'blobs') });
    await blobs.put(key, Readable.from([Buffer.from('twenty minutes old')]));
    const past = new Date(Date.now() - 20 * 60_000);
    await utimes(blobs.localPath(key), past, past);

    const young = await fsckProcess(env);
    assert.equal(young.code, 0, young.stderr);
    assert.match(young.stdout, /left alone: 1 blobs younger than FSCK_GRACE/);
    assert.match(young.stdout, /\nconsistent\n$/);
    const found = await fsckProcess({ ...env, FSCK_GRACE: '10m' });
    assert.equal(found.code, 1);
    assert.match(found.stdout, new RegExp(`orphan blob ${key}\n`));
    assert.ok(await blobs.head(key), 'only reported');
    const repaired = await fsckProcess({ ...env, FSCK_GRACE: '10m' }, ['--repair']);
    assert.equal(repaired.code, 0);
    assert.equal(await blobs.head(key), null, 'removed');
  });

  for (const dialect of DIALECTS) {
    test(`a store whose listing fails is named, exit 3 (${dialect})`, async () => {
      const s3 = await brokenS3();
      const postgres = dialect === 'postgres' ? await postgresSchema() : undefined;
      try {
        const run = await fsckProcess(
          await serverDatabase({
            DATA_DIR: path.join(folder.dir, dialect),
            ...(postgres && { DATABASE_URL: postgres.url }),
            BLOB_STORE: 's3://assets/prod',
            S3_ENDPOINT: s3.endpoint,
            S3_FORCE_PATH_STYLE: 'true',
            AWS_ACCESS_KEY_ID: 'key',
            AWS_SECRET_ACCESS_KEY: 'secret',
          }),
        );
        assert.equal(run.code, 3);
        assertOneLine(
          run,
          /^assetgate fsck: listing the blob store failed: listing s3:\/\/assets\/prod\/ failed after 0 objects: InternalError \(HTTP 500\): We encountered an internal error/,
        );
      } finally {
        await s3.close();
        await postgres?.drop();
      }
    });
  }

  test('a folder store that cannot be read is named, exit 3', async () => {
    const loop = path.join(folder.dir, 'loop');
    await symlink(loop, loop); // a link to itself: opening it fails (ELOOP), as a broken mount would
    const run = await fsckProcess(
      await serverDatabase({ DATA_DIR: path.join(folder.dir, 'fs'), BLOB_STORE: `fs:${loop}` }),
    );
    assert.equal(run.code, 3);
    assertOneLine(run, /^assetgate fsck: listing the blob store failed: ELOOP: .*loop'$/);
  });

  test('a database that cannot be reached is named, exit 3', async () => {
    const run = await fsckProcess({
      DATA_DIR: path.join(folder.dir, 'db'),
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test',
    });
    assert.equal(run.code, 3);
    assertOneLine(run, /^assetgate fsck: opening the database failed: connect ECONNREFUSED 127\.0\.0\.1:1$/);
  });
});
