import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from '../src/client/index.js';
import { DIALECTS, postgresSchema, REDIS_URL, s3Server, type ServerProcess, startServer, tempDir } from './helpers.js';

/**
 * Two built gateways as separate processes, sharing PostgreSQL, an S3 store, Redis
 * and the signing secret, with nothing in front of them but their two ports: they
 * must behave as one.
 */
describe(
  'two gateways behave as one',
  { skip: !DIALECTS.includes('postgres') && 'TEST_DIALECTS has no postgres' },
  () => {
    const data = [tempDir('assetgate-gw-a-'), tempDir('assetgate-gw-b-')];
    let schema: Awaited<ReturnType<typeof postgresSchema>>;
    let a: ServerProcess;
    let b: ServerProcess;
    let key: string;

    before(async () => {
      schema = await postgresSchema();
      const s3 = await s3Server();
      const env = {
        ...s3.env(),
        DATABASE_URL: schema.url,
        REDIS_URL,
        SIGNING_SECRET: 'a shared secret for both gateways, long enough',
        RATE_LIMIT: '300',
        JOB_CONCURRENCY: '1',
      };
      // Started together on an empty database: migrations and the first key race.
      [a, b] = await Promise.all(data.map((d) => startServer(d.dir, { env })));
      const keys = [a.key, b.key].filter(Boolean);
      assert.equal(keys.length, 1, `exactly one gateway made the first key:\n${a.output()}\n${b.output()}`);
      key = keys[0];
    });
    after(async () => {
      for (const server of [a, b]) server?.child.kill('SIGTERM');
      await Promise.all(
        [a, b].map((s) => s && new Promise((r) => (s.child.exitCode !== null ? r(null) : s.child.once('exit', r)))),
      );
      await schema?.drop();
      for (const d of data) d.remove();
    });

    test('an asset uploaded through one is listed, updated, downloaded and deleted through the other', async () => {
      const viaA = createClient({ url: a.url, apiKey: key });
      const viaB = createClient({ url: b.url, apiKey: key });
      const asset = await viaA.upload(
        { blob: new Blob(['shared bytes across gateways']), filename: 'shared.txt' },
        {
          tags: ['gw'],
        },
      );
      const listed = [];
      for await (const found of viaB.list({ filter: { tags: ['gw'] } })) listed.push(found.id);
      assert.deepEqual(listed, [asset.id]);
      assert.equal((await viaB.update({ id: asset.id, title: 'Renamed on B' })).title, 'Renamed on B');
      assert.equal((await viaA.get(asset.id))?.title, 'Renamed on B');
      const body = await (await viaB.download({ url: asset.url!.replace(a.url, b.url) })).text();
      assert.equal(body, 'shared bytes across gateways');
      // Processing ran once, on whichever gateway claimed it.
      const processed = await viaB.waitUntilProcessed(asset.id);
      assert.equal(processed.wordCount, 4);
      assert.equal(await viaB.delete(asset.id), asset.id);
      await assert.rejects(viaA.get(asset.id), (error: any) => error.code === 'NOT_FOUND');
    });

    test('a resumable upload begun on one gateway is resumed and finished on the other; racing chunks never both land', async () => {
      const tus = { 'tus-resumable': '1.0.0', authorization: `Bearer ${key}` };
      const file = Buffer.concat([Buffer.from('%resumable across gateways%\n'), Buffer.alloc(200_000, 'x')]);
      const created = await fetch(`${a.url}/tus/`, {
        method: 'POST',
        headers: {
          ...tus,
          'upload-length': String(file.length),
          'upload-metadata': `filename ${Buffer.from('gw.txt').toString('base64')}`,
        },
      });
      assert.equal(created.status, 201);
      const path = new URL(created.headers.get('location')!).pathname;
      const patch = (server: ServerProcess, offset: number, bytes: Buffer) =>
        fetch(`${server.url}${path}`, {
          method: 'PATCH',
          headers: { ...tus, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) },
          body: new Uint8Array(bytes),
        });
      assert.equal((await patch(a, 0, file.subarray(0, 50_000))).status, 204);
      // The same chunk sent to both gateways at once: one lands, the other is refused.
      const raced = await Promise.all([a, b].map((s) => patch(s, 50_000, file.subarray(50_000, 100_000))));
      assert.deepEqual(raced.map((r) => r.status).sort(), [204, 409]);
      const probe = await fetch(`${b.url}${path}`, { method: 'HEAD', headers: tus });
      assert.equal(probe.headers.get('upload-offset'), '100000');
      const last = await patch(b, 100_000, file.subarray(100_000));
      assert.equal(last.status, 204);
      const viaA = createClient({ url: a.url, apiKey: key });
      const asset = await viaA.waitUntilProcessed(last.headers.get('asset-id')!);
      const { createHash } = await import('node:crypto');
      assert.equal(asset.checksum, `sha256:${createHash('sha256').update(file).digest('hex')}`);
      assert.equal(asset.size, file.length);
    });

    test('a URL good for 3 fetches, fetched 12 times at once across both, yields exactly 3 bodies', async () => {
      const client = createClient({ url: a.url, apiKey: key });
      const asset = await client.upload({ blob: new Blob(['counted']), filename: 'counted.txt' });
      const { url } = await client.downloadUrl(asset.id, { maxFetches: 3 });
      const path = new URL(url).pathname;
      const statuses = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const response = await fetch((i % 2 ? a.url : b.url) + path);
          const text = await response.text();
          return response.status === 200 ? text : response.status;
        }),
      );
      assert.deepEqual(
        statuses.filter((s) => s === 'counted'),
        ['counted', 'counted', 'counted'],
      );
      assert.deepEqual(
        statuses.filter((s) => s !== 'counted'),
        Array(9).fill(404),
      );
    });

    test('a change made through one gateway reaches a subscriber on the other', async () => {
      const client = createClient({ url: a.url, apiKey: key });
      const asset = await client.create({ title: 'Watched', type: 'LINK', externalUrl: 'https://example.com/w' });
      const controller = new AbortController();
      const response = await fetch(`${b.url}/graphql`, {
        method: 'POST',
        signal: controller.signal,
        headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream', 'content-type': 'application/json' },
        body: JSON.stringify({ query: `subscription { assetUpdated(id: "${asset.id}") { title } }` }),
      });
      assert.equal(response.status, 200);
      let received = '';
      const reading = (async () => {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          received += Buffer.from(chunk).toString();
          if (received.includes('Seen on B')) return;
        }
      })().catch((error: Error) => {
        if (error.name !== 'AbortError') throw error;
      });
      await new Promise((r) => setTimeout(r, 300)); // subscribed
      await client.update({ id: asset.id, title: 'Seen on B' });
      await Promise.race([reading, new Promise((r) => setTimeout(r, 5000))]);
      controller.abort();
      assert.match(received, /Seen on B/);
    });

    test('the rate limit counts across both: one bucket, not one per gateway', async () => {
      const rate = await fetch(`${a.url}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ viewer { rateLimit { limit remaining } } }' }),
      });
      const { limit, remaining } = ((await rate.json()) as any).data.viewer.rateLimit;
      assert.equal(limit, 300);
      // Sent 16 at a time, alternating gateways: far faster than the bucket refills (limit/minute).
      const statuses: number[] = [];
      const send = async (i: number) => {
        const response = await fetch(`${i % 2 ? a.url : b.url}/graphql`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ viewer { org } }' }),
        });
        await response.arrayBuffer();
        statuses.push(response.status);
      };
      const total = remaining + 40;
      for (let i = 0; i < total; i += 16) {
        await Promise.all(Array.from({ length: Math.min(16, total - i) }, (_, j) => send(i + j)));
      }
      const refused = statuses.filter((s) => s === 429).length;
      // A bucket per gateway would have let every request through (each has `limit` tokens);
      // one shared bucket refuses what is over it, less the little refilled meanwhile.
      assert.ok(refused >= 15, `refused ${refused} of ${statuses.length}`);
    });
  },
);
