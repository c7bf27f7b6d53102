import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FsBlobStore } from '../src/blob/fs-blob-store.js';
import { S3BlobStore } from '../src/blob/s3-blob-store.js';
import { createTestApp, forEachSetup } from './helpers.js';

/**
 * The setups the suites are run against are what their names say: a suite described
 * `sqlite+s3+redis` that ran on files and in-process state would pass without testing
 * the combination it names.
 */
forEachSetup((dialect, setup) => {
  test('the app runs on the database, blob store and shared state its setup names', async () => {
    const [a, b] = [await createTestApp(), await createTestApp()];
    try {
      assert.equal(a.setup, setup);
      assert.equal(a.config.databaseUrl.startsWith('postgres'), dialect === 'postgres', a.config.databaseUrl);
      assert.ok(a.blobs instanceof (setup.blobs === 's3' ? S3BlobStore : FsBlobStore), a.blobs.constructor.name);
      // Two gateways share upload slots only through Redis: the count is the observable sign.
      const key = `setup-${randomBytes(4).toString('hex')}`;
      const release = await a.services.uploadSlots.acquire(key);
      assert.equal(await b.services.uploadSlots.running(key), setup.state === 'redis' ? 1 : 0);
      release();
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});
