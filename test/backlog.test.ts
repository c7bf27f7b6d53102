import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestApp, forEachDialect, listen, multipartForm, postMultipart, type TestApp } from './helpers.js';

const TOKEN = 'metrics-token-for-the-backlog-suite';
const UPLOAD = 'mutation($input: UploadAssetInput!) { uploadAsset(input: $input) { asset { id status } } }';
const PROCESSING = '{ viewer { processing { queued running oldestAgeSeconds } } }';

forEachDialect(() => {
  describe('the processing backlog: /metrics, /readyz and viewer.processing', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    // A clock the test moves: how long the jobs have waited is then exact.
    let now = Date.parse('2026-01-05T10:00:00.000Z');
    before(async () => {
      // No job runs here: what is uploaded stays queued, the way it does on a gateway that falls behind.
      app = await createTestApp(
        { JOB_CONCURRENCY: '0', METRICS_TOKEN: TOKEN, SWEEP_INTERVAL: '0' },
        { clock: () => now },
      );
      server = await listen(app.handler);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    const upload = async (name: string, headers = app.authHeaders) => {
      const form = multipartForm(UPLOAD, { input: { file: null } }, [
        ['variables.input.file', new Blob([`notes of ${name}`]), name],
      ]);
      const { status, json } = await postMultipart(server.url, form, headers);
      assert.equal(status, 200, JSON.stringify(json));
      return json.data.uploadAsset.asset.id as string;
    };
    const processingOf = async (headers = app.authHeaders) => {
      const result = await app.gql(PROCESSING, {}, headers);
      assert.equal(result.status, 200, JSON.stringify(result.errors));
      return result.data.viewer.processing;
    };

    test('an empty queue reports nothing waiting', async () => {
      assert.deepEqual(await processingOf(), { queued: 0, running: 0, oldestAgeSeconds: 0 });
      const ready = await fetch(`${server.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(((await ready.json()) as any).backlog, { queued: 0, running: 0, oldestAgeSeconds: 0 });
    });

    test('jobs waiting show in all three, each caller seeing only its org and mode', async () => {
      await upload('first.txt');
      now += 30_000;
      await upload('second.txt');
      now += 90_000;

      assert.deepEqual(await processingOf(), { queued: 2, running: 0, oldestAgeSeconds: 120 });
      // Another org, and the same org's test mode, have nothing waiting.
      const other = { authorization: `Bearer ${await app.createKey('globex')}` };
      const testMode = { authorization: `Bearer ${await app.createKey('acme', undefined, 'test')}` };
      assert.deepEqual(await processingOf(other), { queued: 0, running: 0, oldestAgeSeconds: 0 });
      assert.deepEqual(await processingOf(testMode), { queued: 0, running: 0, oldestAgeSeconds: 0 });
      await upload('theirs.txt', other);
      assert.deepEqual(await processingOf(other), { queued: 1, running: 0, oldestAgeSeconds: 0 });
      assert.equal((await processingOf()).queued, 2);

      const metrics = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(metrics.status, 200);
      const text = await metrics.text();
      assert.match(text, /^assetgate_jobs\{state="queued"\} 3$/m);
      assert.match(text, /^assetgate_jobs_oldest_age_seconds 120$/m);

      // Behind is not down: readiness stays 200 and says how far behind.
      const ready = await fetch(`${server.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(((await ready.json()) as any).backlog, { queued: 3, running: 0, oldestAgeSeconds: 120 });
    });

    test('a claimed job counts as running, and the age follows the oldest job still waiting', async () => {
      const iso = (ms: number) => new Date(ms).toISOString();
      const claimed = await app.repositories.jobs.claim('w1', iso(now), iso(now + 60_000));
      assert.ok(claimed);
      assert.deepEqual(await processingOf(), { queued: 1, running: 1, oldestAgeSeconds: 90 });
    });

    test('a caller without a key gets no view of the queue', async () => {
      const result = await app.gql(PROCESSING, {}, {});
      assert.equal(result.status, 401);
      assert.equal(result.data?.viewer ?? null, null);
      assert.equal(result.errors?.[0]?.extensions.code, 'UNAUTHENTICATED');
    });
  });
});
