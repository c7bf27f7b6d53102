import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { stat, utimes } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BlobStore, ByteRange } from '../src/blob/index.js';
import { FsBlobStore } from '../src/blob/fs-blob-store.js';
import { isClean } from '../src/services/lifecycle/fsck.js';
import {
  assertConsistent,
  createTestApp,
  listFiles,
  listen,
  multipartForm,
  startServer,
  tempDir,
  forEachDialect,
  waitFor,
} from './helpers.js';

forEachDialect(() => {
  const UPLOAD = 'mutation($f: Upload!) { uploadAsset(input: { file: $f }) { asset { id size } } }';

  /**
   * A store that fails on demand, like a full or broken disk, or a slow one; `vanish` deletes
   * each blob right after listing it, as a concurrent delete would.
   */
  class FailingBlobStore implements BlobStore {
    mode: 'ok' | 'ENOSPC' | 'EIO' | 'slow' | 'vanish' = 'ok';
    constructor(private readonly inner: FsBlobStore) {}
    #fail(): void {
      if (this.mode === 'ENOSPC' || this.mode === 'EIO') {
        throw Object.assign(new Error(`${this.mode}: simulated`), { code: this.mode });
      }
    }
    async put(key: string, body: Readable) {
      if (this.mode === 'slow') await new Promise((r) => setTimeout(r, 300));
      if (this.mode !== 'ENOSPC') return this.inner.put(key, body);
      // Take some bytes, as a disk does before it fills up, then fail.
      const partial = Readable.from(
        (async function* () {
          for await (const chunk of body) {
            yield chunk;
            throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
          }
        })(),
      );
      return this.inner.put(key, partial);
    }
    async get(key: string, range?: ByteRange) {
      this.#fail();
      return this.inner.get(key, range);
    }
    head(key: string) {
      return this.inner.head(key);
    }
    async delete(key: string) {
      return this.inner.delete(key);
    }
    async *list() {
      for await (const blob of this.inner.list()) {
        if (this.mode === 'vanish') await this.inner.delete(blob.key);
        yield blob;
      }
    }
    localPath(key: string) {
      return this.inner.localPath(key);
    }
    sweepTemporaries(olderThanMs: number) {
      return this.inner.sweepTemporaries(olderThanMs);
    }
    close() {
      return this.inner.close();
    }
  }

  describe('faults: a failing blob store and a busy database', () => {
    const data = tempDir('assetgate-faults-');
    after(data.remove);

    test('disk full, I/O errors and a slow store: typed errors, nothing left behind, still serving', async () => {
      const store = new FailingBlobStore(new FsBlobStore({ root: path.join(data.dir, 'blobs') }));
      const app = await createTestApp({}, { blobs: store, logError: () => undefined });
      const server = await listen(app.handler);
      const upload = async (content: string) => {
        const form = multipartForm(UPLOAD, { f: null }, [['variables.f', new Blob([content]), 'f.txt']]);
        const response = await fetch(`${server.url}/graphql`, {
          method: 'POST',
          body: form,
          headers: { ...app.authHeaders, 'x-graphql-yoga-csrf': '1' },
        });
        return (await response.json()) as any;
      };
      try {
        store.mode = 'ENOSPC';
        const full = await upload('x'.repeat(100_000));
        assert.equal(full.errors[0].extensions.code, 'INTERNAL_SERVER_ERROR');
        assert.doesNotMatch(full.errors[0].message, /ENOSPC/, 'internal details are masked');
        assert.deepEqual(await listFiles(path.join(data.dir, 'blobs')), [], 'no blob, no temporary file');
        assert.deepEqual(await app.repositories.orgs.usage('acme'), { used: 0, reserved: 0 });

        store.mode = 'ok';
        const stored = (await upload('kept bytes')).data.uploadAsset.asset;
        store.mode = 'EIO';
        const read = await fetch(`${server.url}/download/${stored.id}`, { headers: app.authHeaders });
        assert.equal(read.status, 500);
        store.mode = 'slow';
        assert.equal((await upload('slow but fine')).data.uploadAsset.asset.size, 13);
        store.mode = 'ok';
        await assertConsistent(app);
      } finally {
        await server.close();
        await app.dispose();
      }
    });

    test('a database locked for a moment: writes wait for it and go through', async () => {
      const app = await createTestApp({}, {}, 'sqlite'); // SQLite's own locking
      try {
        await app.gql('{ viewer { org } }');
        // Another process holds the write lock for half a second (better-sqlite3 waits synchronously).
        const holder = spawn(
          process.execPath,
          [
            '-e',
            `const D=require('better-sqlite3');const d=new D(process.argv[1]);d.exec('BEGIN EXCLUSIVE');process.stdout.write('locked');Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0,500);d.exec('COMMIT');`,
            app.config.databaseUrl.slice('sqlite:'.length),
          ],
          { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
        );
        await new Promise((resolve) => holder.stdout!.once('data', resolve));
        const result = await app.gql(
          'mutation { createDirectory(input: { name: "after the lock" }) { directory { name } } }',
        );
        await new Promise((resolve) => holder.once('exit', resolve));
        assert.equal(result.data.createDirectory.directory.name, 'after the lock');
      } finally {
        await app.dispose();
      }
    });

    test('a blob a crash left without its row (or a delete left behind) is removed by the deep sweep', async () => {
      let now = Date.now();
      const app = await createTestApp({}, { clock: () => now });
      try {
        const key = 'ab/abcdef01-0000-4000-8000-000000000000';
        await app.blobs.put(key, Readable.from([Buffer.from('orphaned bytes')]));
        // Too young to tell from an upload between its bytes and its row: neither reported nor removed.
        assert.deepEqual((await app.fsck()).orphanBlobs, []);
        assert.equal((await app.sweeper.sweep({ deep: true })).fsck?.youngBlobs, 1);
        assert.ok(await app.blobs.head(key), 'left alone while young');
        now += 3 * 3600_000;
        assert.deepEqual((await app.sweeper.sweep({ deep: true })).fsck?.orphanBlobs, [key], 'reported once old');
        assert.equal(await app.blobs.head(key), null, 'removed once old enough');
        assert.ok(isClean(await app.fsck()));
      } finally {
        await app.dispose();
      }
    });

    test('a blob deleted while the check lists the store is not reported as an orphan', async () => {
      const store = new FailingBlobStore(new FsBlobStore({ root: path.join(data.dir, 'vanish') }));
      // No background sweep: its own listing of this store would make the blob vanish first.
      const app = await createTestApp({ SWEEP_INTERVAL: '0' }, { blobs: store });
      try {
        const key = 'cd/cdef0123-0000-4000-8000-000000000000';
        await store.put(key, Readable.from([Buffer.from('deleted meanwhile')]));
        store.mode = 'vanish';
        const report = await app.fsck({ now: Date.now() + 3 * 3600_000 }); // old enough to be an orphan
        assert.equal(report.blobsChecked, 1, 'the blob was listed');
        assert.deepEqual(report.orphanBlobs, []);
        assert.ok(isClean(report));
      } finally {
        await app.dispose();
      }
    });
  });

  const ROOT = fileURLToPath(new URL('..', import.meta.url));

  describe('faults: the server killed (SIGKILL)', () => {
    test('mid-upload and right after an acknowledged one: nothing acknowledged is lost, nothing half-written shows', async () => {
      const data = tempDir('assetgate-kill-');
      const env = { RATE_LIMIT: '0' };
      let { child, key, port } = await startServer(data.dir, { env });
      try {
        const auth = { authorization: `Bearer ${key}` };
        const form = multipartForm(UPLOAD, { f: null }, [['variables.f', new Blob(['acknowledged bytes']), 'ack.txt']]);
        const acked = (
          (await (
            await fetch(`http://127.0.0.1:${port}/graphql`, {
              method: 'POST',
              body: form,
              headers: { ...auth, 'x-graphql-yoga-csrf': '1' },
            })
          ).json()) as any
        ).data.uploadAsset.asset;

        // A large upload, killed halfway.
        const boundary = 'killboundary';
        const req = request(`http://127.0.0.1:${port}/graphql`, {
          method: 'POST',
          headers: {
            ...auth,
            'x-graphql-yoga-csrf': '1',
            'content-type': `multipart/form-data; boundary=${boundary}`,
            'content-length': String(50 * 1024 * 1024),
          },
        });
        req.on('error', () => undefined);
        req.write(
          `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query: UPLOAD, variables: { f: null } })}\r\n--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.f"]}\r\n--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="big.bin"\r\n\r\n`,
        );
        for (let i = 0; i < 10; i++) req.write(Buffer.alloc(1024 * 1024, 7));
        // The kill comes once the upload is being written: a temporary file holding a MiB or more.
        const blobsDir = path.join(data.dir, 'blobs');
        const written = async () => {
          for (const name of (await listFiles(blobsDir)).filter((f) => f.includes('.tmp-'))) {
            const info = await stat(path.join(blobsDir, name)).catch(() => null);
            if (info && info.size >= 1024 * 1024) return true;
          }
          return false;
        };
        await waitFor(written, (writing) => writing); // the upload is being written to a temporary file

        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        req.destroy();

        // What the crash left: a temporary file and nothing else new; age it as time would.
        const left = await listFiles(blobsDir);
        const temporaries = left.filter((f) => f.includes('.tmp-'));
        assert.equal(temporaries.length, 1, `the kill left the upload's temporary file: ${left.join(', ')}`);
        for (const name of temporaries) {
          const old = new Date(Date.now() - 3 * 3600_000);
          await utimes(path.join(data.dir, 'blobs', name), old, old);
        }
        ({ child } = await startServer(data.dir, { port, env }));
        const list = (await (
          await fetch(`http://127.0.0.1:${port}/graphql`, {
            method: 'POST',
            headers: { ...auth, 'content-type': 'application/json' },
            body: JSON.stringify({ query: '{ assets { totalCount edges { node { id size status } } } }' }),
          })
        ).json()) as any;
        assert.equal(list.data.assets.totalCount, 1, 'only the acknowledged upload exists');
        assert.equal(list.data.assets.edges[0].node.id, acked.id);
        const bytes = await (await fetch(`http://127.0.0.1:${port}/download/${acked.id}`, { headers: auth })).text();
        assert.equal(bytes, 'acknowledged bytes');

        // The restarted server's first sweep is deep: the temporary file goes.
        await waitFor(
          () => listFiles(path.join(data.dir, 'blobs')),
          (files) => !files.some((f) => f.includes('.tmp-')),
        );
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
        const { execFile } = await import('node:child_process');
        const fsckOut = await new Promise<string>((resolve, reject) =>
          execFile(
            process.execPath,
            [path.join(ROOT, 'bin/assetgate.js'), 'fsck'],
            { env: { ...process.env, DATA_DIR: data.dir } },
            (error, stdout) => (error ? reject(error) : resolve(stdout)),
          ),
        );
        assert.match(fsckOut, /consistent/);
      } finally {
        child.kill('SIGKILL');
        data.remove();
      }
    });
  });
});
