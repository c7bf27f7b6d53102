import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from '../src/client/index.js';
import { loadConfig } from '../src/config.js';
import {
  DIALECTS,
  png,
  postgresSchema,
  REDIS_URL,
  s3Server,
  type ServerProcess,
  startServer,
  tempDir,
} from './helpers.js';

const TOKEN = 'metrics-token-for-the-roles-suite';

test('ROLE: all by default; api forces JOB_CONCURRENCY to 0; a worker must run jobs; anything else is refused', () => {
  const base = { DATA_DIR: '/tmp/unused', JOB_CONCURRENCY: '3' };
  assert.equal(loadConfig(base).role, 'all');
  assert.equal(loadConfig(base).jobConcurrency, 3);
  assert.equal(loadConfig({ ...base, ROLE: 'api' }).jobConcurrency, 0);
  assert.equal(loadConfig({ ...base, ROLE: 'worker' }).jobConcurrency, 3);
  assert.throws(() => loadConfig({ ...base, ROLE: 'worker', JOB_CONCURRENCY: '0' }), /JOB_CONCURRENCY/);
  assert.throws(() => loadConfig({ ...base, ROLE: 'both' }), /ROLE: "both" is not one of all, api, worker/);
});

/**
 * An API-only gateway and a processing-only worker as separate processes on PostgreSQL,
 * an S3 store and Redis: the API queues, the worker processes, and neither does the other's work.
 */
describe(
  'ROLE=api and ROLE=worker together',
  { skip: !DIALECTS.includes('postgres') && 'TEST_DIALECTS has no postgres' },
  () => {
    const data = [tempDir('assetgate-api-'), tempDir('assetgate-worker-')];
    let schema: Awaited<ReturnType<typeof postgresSchema>>;
    let api: ServerProcess;
    let worker: ServerProcess | undefined;
    let env: Record<string, string>;

    before(async () => {
      schema = await postgresSchema();
      env = {
        ...(await s3Server()).env(),
        DATABASE_URL: schema.url,
        REDIS_URL,
        SIGNING_SECRET: 'a shared secret for both roles, long enough',
        METRICS_TOKEN: TOKEN,
        JOB_CONCURRENCY: '2',
      };
      api = await startServer(data[0].dir, { env: { ...env, ROLE: 'api' } });
    });
    after(async () => {
      for (const server of [api, worker]) server?.child.kill('SIGTERM');
      await Promise.all(
        [api, worker].map(
          (s) => s && new Promise((r) => (s.child.exitCode !== null ? r(null) : s.child.once('exit', r))),
        ),
      );
      await schema?.drop();
      for (const d of data) d.remove();
    });

    test('an upload through the API waits in the queue until a worker makes it READY', async () => {
      assert.match(api.output(), /ROLE=api: no background jobs.*JOB_CONCURRENCY is forced to 0/);
      const client = createClient({ url: api.url, apiKey: api.key });
      const asset = await client.upload({ blob: new Blob([new Uint8Array(png(40, 30))]), filename: 'shot.png' });
      // The API process claims nothing: the job is still queued, and says so.
      const backlog = await fetch(`${api.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${api.key}` },
        body: JSON.stringify({ query: '{ viewer { processing { queued running } } }' }),
      });
      assert.equal(backlog.status, 200);
      assert.deepEqual(((await backlog.json()) as any).data.viewer.processing, { queued: 1, running: 0 });
      assert.notEqual((await client.get(asset.id))?.status, 'READY');

      worker = await startServer(data[1].dir, { env: { ...env, ROLE: 'worker' } });
      assert.match(worker.output(), /assetgate worker listening/);
      const ready = await client.waitUntilProcessed(asset.id);
      assert.equal(ready.status, 'READY');
      assert.equal(ready.width, 40);
      assert.ok(ready.thumbnailUrl, 'the worker stored a thumbnail');
      const thumbnail = await fetch(ready.thumbnailUrl!, { headers: { authorization: `Bearer ${api.key}` } });
      assert.equal(thumbnail.status, 200, 'the API serves the thumbnail the worker made');
    });

    test('the worker serves health, readiness and metrics, and 404 to GraphQL, uploads, downloads and the browser', async () => {
      assert.ok(worker, 'started by the test before');
      const { url } = worker;
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      const ready = await fetch(`${url}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(((await ready.json()) as any).backlog, { queued: 0, running: 0, oldestAgeSeconds: 0 });
      const metrics = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^assetgate_jobs_oldest_age_seconds 0$/m);

      const graphql = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${api.key}` },
        body: JSON.stringify({ query: '{ viewer { org } }' }),
      });
      assert.equal(graphql.status, 404);
      assert.equal(((await graphql.json()) as any).error.code, 'NOT_FOUND');
      for (const path of ['/graphql?query=%7B__typename%7D', '/tus/', '/up/x', '/download/x', '/dl/x', '/']) {
        const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${api.key}` } });
        assert.equal(response.status, 404, path);
        await response.arrayBuffer();
      }
    });
  },
);
