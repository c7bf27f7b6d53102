import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { MemoryBlobStore } from '../src/blob/memory-blob-store.js';
import { createLogger } from '../src/observability/logger.js';
import { createTestApp, listen, startServer, type TestApp, tempDir, waitFor } from './helpers.js';

/** Every line a logger wrote, parsed. */
function logSink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  return { stream, lines, entries: () => lines.map((line) => JSON.parse(line) as Record<string, any>) };
}

describe('operations: request logs', () => {
  const sink = logSink();
  let app: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  before(async () => {
    app = await createTestApp(
      { SWEEP_INTERVAL: '0' },
      { logger: createLogger({ level: 'info', format: 'json' }, sink.stream) },
    );
    server = await listen(app.handler);
  });
  after(async () => {
    await server.close();
    await app.dispose();
  });

  test('one JSON line per request with route, status, time, bytes, request id, org and key id; never a key, a token, variables or a file name', async () => {
    const secretFilename = 'private-diary-2026.txt';
    const gql = (query: string, variables: object, headers: Record<string, string> = {}) =>
      fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { ...app.authHeaders, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
    const made = (await (
      await gql(
        'mutation Upload($input: CreateUploadUrlInput!) { createUploadUrl(input: $input) { uploadUrl asset { id } } }',
        { input: { filename: secretFilename, title: 'variable-secret-title' } },
        { 'x-request-id': 'client-chosen-id-1' },
      )
    ).json()) as any;
    const uploadUrl = new URL(made.data.createUploadUrl.uploadUrl);
    const put = await fetch(`${server.url}${uploadUrl.pathname}`, { method: 'PUT', body: 'dear diary' });
    assert.equal(put.status, 200);
    const made2 = (await (
      await gql('mutation Link($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', {
        id: made.data.createUploadUrl.asset.id,
      })
    ).json()) as any;
    const downloadUrl = new URL(made2.data.createDownloadUrl.url);
    const download = await fetch(`${server.url}${downloadUrl.pathname}`);
    assert.equal(await download.text(), 'dear diary');
    assert.match(download.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/, 'made when the client sent none');
    const missing = await fetch(`${server.url}/download/nonsense`, { headers: { 'x-request-id': 'abc.def-1' } });
    assert.equal(missing.headers.get('x-request-id'), 'abc.def-1', 'echoed when the client sent one');
    await missing.arrayBuffer();
    // A request's line is written once its handler has ended, which for a download is after its
    // count is written: the signed download's line may come after the next request's.
    await waitFor(
      async () => sink.entries().filter((e) => e.msg === 'request'),
      (logged) => logged.some((e) => e.reqId === 'abc.def-1') && logged.some((e) => e.route === '/dl/'),
    );

    const entries = sink.entries().filter((e) => e.msg === 'request');
    const token = (url: URL) => url.pathname.split('/')[2];
    const text = sink.lines.join('\n');
    for (const secret of [app.key, token(uploadUrl), token(downloadUrl), secretFilename, 'variable-secret-title']) {
      assert.ok(!text.includes(secret), `the log holds ${secret.slice(0, 12)}…`);
    }
    const first = entries.find((e) => e.reqId === 'client-chosen-id-1')!;
    assert.equal(first.method, 'POST');
    assert.equal(first.route, '/graphql');
    assert.equal(first.status, 200);
    assert.equal(first.operation, 'Upload');
    assert.equal(first.org, 'acme');
    assert.match(first.keyId, /^[0-9a-f-]{36}$/);
    assert.ok(first.bytesIn > 100 && first.bytesOut > 100, JSON.stringify(first));
    assert.equal(typeof first.ms, 'number');
    const upload = entries.find((e) => e.route === '/up/')!;
    assert.equal(upload.status, 200);
    assert.equal(upload.keyId, first.keyId, 'the key that signed the URL');
    assert.ok(upload.bytesIn >= 'dear diary'.length);
    const signed = entries.find((e) => e.route === '/dl/')!;
    assert.equal(signed.status, 200);
    assert.equal(signed.org, 'acme');
    assert.ok(entries.some((e) => e.route === '/download/' && e.status === 400));
    assert.ok(sink.entries().every((e) => e.service === 'assetgate' && typeof e.time === 'string'));
  });

  test('background jobs log their end with the asset id', async () => {
    await app.jobs?.idle();
    const jobs = sink.entries().filter((e) => e.msg === 'job ended');
    assert.ok(
      jobs.some((e) => e.kind === 'extract' && e.outcome === 'done' && /^[0-9a-f-]{36}$/.test(e.assetId)),
      JSON.stringify(jobs),
    );
  });
});

describe('operations: metrics and readiness', () => {
  const TOKEN = 'metrics-token-for-the-test-suite';
  let app: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  before(async () => {
    app = await createTestApp({ METRICS_TOKEN: TOKEN, SWEEP_INTERVAL: '0', METRICS_MAX_OPERATIONS: '30' });
    server = await listen(app.handler);
  });
  const scrape = async () => {
    const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(response.status, 200);
    return response.text();
  };
  /** The series (sample lines) requests feed; background jobs feed others meanwhile. */
  const seriesOf = (text: string) => text.split('\n').filter((line) => /^assetgate_(http|graphql)_/.test(line));
  const operationLabels = (text: string) =>
    new Set([...text.matchAll(/assetgate_graphql_operations_total\{operation="([^"]*)"/g)].map((m) => m[1]));
  const postQuery = async (query: string, headers: Record<string, string> = {}) => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query }),
    });
    await response.arrayBuffer();
    return response.status;
  };
  /** Runs `count` calls of `send`, 50 at a time. */
  const flood = async (count: number, send: (i: number) => Promise<unknown>) => {
    for (let i = 0; i < count; i += 50)
      await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => send(i + j)));
  };
  after(async () => {
    await server.close();
    await app.dispose();
  });

  test('/metrics answers Prometheus text only to the bearer of METRICS_TOKEN', async () => {
    assert.equal((await fetch(`${server.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    const viewer = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { ...app.authHeaders, 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query Who { viewer { org } }' }),
    });
    await viewer.arrayBuffer();
    const form = new FormData();
    form.append(
      'operations',
      JSON.stringify({
        query: 'mutation($f: Upload!) { uploadAsset(input: { file: $f }) { asset { id } } }',
        variables: { f: null },
      }),
    );
    form.append('map', '{"0":["variables.f"]}');
    form.append('0', new Blob(['x'.repeat(5000)]), 'a.txt');
    const uploaded = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      body: form,
      headers: { ...app.authHeaders, 'x-graphql-yoga-csrf': '1' },
    });
    assert.equal(uploaded.status, 200);
    await uploaded.arrayBuffer();
    // A name is labelled once a key's request under it succeeded; its failures count under it after that.
    assert.equal(await postQuery('query Missing { viewer { org } }', app.authHeaders), 200);
    assert.equal(await postQuery('query Missing { asset(id: "nonsense") { id } }', app.authHeaders), 200);
    const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^text\/plain/);
    const text = await response.text();
    assert.match(
      text,
      /assetgate_http_request_duration_seconds_count\{route="\/graphql",method="POST",status="200"\} [1-9]/,
    );
    assert.match(text, /assetgate_graphql_operations_total\{operation="Who",outcome="ok"\} 1/);
    assert.match(text, /assetgate_graphql_operations_total\{operation="Missing",outcome="BAD_USER_INPUT"\} 1/);
    const uploadedBytes = Number(/assetgate_uploaded_bytes_total (\d+)/.exec(text)?.[1]);
    assert.ok(uploadedBytes >= 5000, `uploaded ${uploadedBytes}`);
    assert.match(text, /assetgate_uploads_in_flight 0/);
    assert.match(text, /assetgate_jobs\{state="queued"\} \d+/);
    assert.match(text, /assetgate_renditions_made \d+/);
    assert.match(text, /process_cpu_user_seconds_total/);
    assert.match(text, /nodejs_eventloop_lag_seconds/);
  });

  test('labels come from closed sets: 1,000 invented operation names and 1,000 invented paths add a handful of series', async () => {
    assert.equal(await postQuery('query Known { viewer { org } }', app.authHeaders), 200);
    await scrape(); // the scrape itself is a request: its series exist from now on
    const before = await scrape();
    const random = () => Math.random().toString(36).slice(2);
    await flood(1000, async () => assert.equal(await postQuery(`query X${random()} { __typename }`), 200));
    const methods = ['GET', 'POST', 'DELETE', 'PROPFIND', 'PURGE', 'MKCOL', 'REPORT'];
    await flood(
      1000,
      (i) =>
        new Promise<void>((resolve, reject) => {
          const prefix = ['/', '/download/', '/dl/', '/tus/', '/nope/', '/graphql-'][i % 6];
          const sent = request(`${server.url}${prefix}${random()}/${random()}`, {
            method: methods[i % methods.length],
          });
          sent.on('response', (res) => res.resume().on('end', resolve));
          sent.on('error', reject);
          sent.end();
        }),
    );
    // A name of 3,012 characters from a key, which succeeds: kept cut to 64.
    const long = `L${'o'.repeat(3010)}g`;
    assert.equal(await postQuery(`query ${long} { viewer { org } }`, app.authHeaders), 200);
    assert.equal(await postQuery('query Known { viewer { org } }', app.authHeaders), 200);
    const after = await scrape();
    const added = seriesOf(after).length - seriesOf(before).length;
    // At most: `other` and the long name as operations, and one refusal count per route and status
    // for the invented paths; never one series per name, path or method.
    assert.ok(added <= 2 + 12, `${added} series added`);
    const labels = operationLabels(after);
    assert.ok(labels.has('other'), [...labels].join(', '));
    assert.ok(labels.has(long.slice(0, 64)), 'the long name, cut to 64 characters');
    assert.ok([...labels].every((label) => label.length <= 64));
    assert.ok(![...labels].some((label) => label.startsWith('X')), 'no invented name is a label');
    const methodsSeen = new Set([...after.matchAll(/method="([^"]*)"/g)].map((m) => m[1]));
    assert.deepEqual(
      [...methodsSeen].filter((m) => !['GET', 'POST', 'PUT', 'PATCH'].includes(m)),
      [],
    );
    assert.match(after, /assetgate_http_refused_total\{route="unknown",status="404"\} [1-9]/);
    const routes = new Set([...after.matchAll(/route="([^"]*)"/g)].map((m) => m[1]));
    assert.deepEqual(
      [...routes].filter((route) => !['/graphql', 'unknown', ...app.routes, ...app.pages].includes(route)),
      [],
    );
    const known = (text: string) =>
      Number(/assetgate_graphql_operations_total\{operation="Known",outcome="ok"\} (\d+)/.exec(text)?.[1]);
    assert.equal(known(after), known(before) + 1, 'a known operation is still counted under its name');
  });

  test('a key names at most METRICS_MAX_OPERATIONS operations; the rest count as other', async () => {
    await flood(60, async (i) =>
      assert.equal(await postQuery(`query Named${i} { viewer { org } }`, app.authHeaders), 200),
    );
    const labels = operationLabels(await scrape());
    labels.delete('other');
    assert.equal(labels.size, 30, [...labels].join(', '));
  });

  test('/metrics is not served without METRICS_TOKEN', async () => {
    const plain = await createTestApp();
    const other = await listen(plain.handler);
    try {
      assert.equal(
        (await fetch(`${other.url}/metrics`, { headers: { authorization: 'Bearer anything' } })).status,
        404,
      );
    } finally {
      await other.close();
      await plain.dispose();
    }
  });

  test('/readyz checks the database and the store, and turns 503 once shutdown begins; /healthz stays', async () => {
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    const { backlog, ...checks } = (await ready.json()) as any;
    assert.deepEqual(checks, { ok: true, database: 'up', store: 'up', shuttingDown: false });
    // Figures, not a verdict: the backlog suite checks them.
    assert.deepEqual(Object.keys(backlog).sort(), ['oldestAgeSeconds', 'queued', 'running']);
    app.beginShutdown();
    const draining = await fetch(`${server.url}/readyz`);
    assert.equal(draining.status, 503);
    assert.equal(((await draining.json()) as any).shuttingDown, true);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });

  test('/readyz is 503 when the store does not answer', async () => {
    const broken = new MemoryBlobStore();
    broken.head = async () => {
      throw new Error('connect ECONNREFUSED');
    };
    const sick = await createTestApp({ SWEEP_INTERVAL: '0' }, { blobs: broken });
    const other = await listen(sick.handler);
    try {
      const response = await fetch(`${other.url}/readyz`);
      assert.equal(response.status, 503);
      const body = (await response.json()) as any;
      assert.equal(body.database, 'up');
      assert.match(body.store, /^down: connect ECONNREFUSED/);
    } finally {
      await other.close();
      await sick.dispose();
    }
  });
});

/** Waits until the server process has begun storing the upload of `assetId` (its asset is PROCESSING). */
async function uploadUnderWay(url: string, key: string, assetId: string): Promise<void> {
  const status = async () => {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ asset(id: "${assetId}") { status } }` }),
    });
    return ((await response.json()) as any).data.asset.status as string;
  };
  await waitFor(status, (now) => now === 'PROCESSING');
}

describe('operations: shutdown of the server process', () => {
  test('SIGTERM: /readyz and new requests answer 503 while draining, an upload under way finishes and is kept, the process exits 0', async () => {
    const data = tempDir('assetgate-shutdown-');
    let server = await startServer(data.dir, { env: { RATE_LIMIT: '0', SHUTDOWN_TIMEOUT: '20s' } });
    try {
      const auth = { authorization: `Bearer ${server.key}`, 'content-type': 'application/json' };
      const made = (await (
        await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({
            query:
              'mutation { createUploadUrl(input: { filename: "slow.bin", size: 300000 }) { uploadUrl asset { id } } }',
          }),
        })
      ).json()) as any;
      const path = new URL(made.data.createUploadUrl.uploadUrl).pathname;
      const upload = request(`${server.url}${path}`, { method: 'PUT', headers: { 'content-length': '300000' } });
      const answered = new Promise<number>((resolve, reject) => {
        upload.on('response', (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        upload.on('error', reject);
      });
      upload.write(Buffer.alloc(100_000, 1));
      await uploadUnderWay(server.url, server.key, made.data.createUploadUrl.asset.id);
      const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
      server.child.kill('SIGTERM');
      await waitFor(
        () => Promise.resolve(server.output()),
        (out) => out.includes('shutting down'),
      );
      // Still accepting, but answering 503: a balancer sees the drain instead of refused connections.
      const readyz = await fetch(`${server.url}/readyz`);
      assert.equal(readyz.status, 503);
      assert.equal(((await readyz.json()) as any).shuttingDown, true);
      const refused = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ query: '{ viewer { org } }' }),
      });
      assert.equal(refused.status, 503, 'no new work is taken');
      assert.equal(refused.headers.get('connection'), 'close');
      assert.equal(((await refused.json()) as any).error.code, 'SERVICE_UNAVAILABLE');
      upload.write(Buffer.alloc(100_000, 1));
      await new Promise((r) => setTimeout(r, 200)); // a slow client: the upload goes on during the drain
      upload.end(Buffer.alloc(100_000, 1));
      assert.equal(await answered, 200, 'the upload under way finished');
      assert.equal(await exited, 0, server.output());
      assert.match(server.output(), /"msg":"stopped"/);

      server = await startServer(data.dir, { env: { RATE_LIMIT: '0' } });
      const asset = (await (
        await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: { authorization: auth.authorization, 'content-type': 'application/json' },
          body: JSON.stringify({ query: `{ asset(id: "${made.data.createUploadUrl.asset.id}") { size status } }` }),
        })
      ).json()) as any;
      assert.equal(asset.data.asset.size, 300000);
    } finally {
      server.child.kill('SIGKILL');
      data.remove();
    }
  });

  test('SIGTERM with a request that never ends: it is cut at SHUTDOWN_TIMEOUT and the process still exits 0', async () => {
    const data = tempDir('assetgate-shutdown-');
    const server = await startServer(data.dir, { env: { RATE_LIMIT: '0', SHUTDOWN_TIMEOUT: '1s' } });
    try {
      const made = (await (
        await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: { authorization: `Bearer ${server.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            query: 'mutation { createUploadUrl(input: { filename: "never.bin" }) { uploadUrl asset { id } } }',
          }),
        })
      ).json()) as any;
      const path = new URL(made.data.createUploadUrl.uploadUrl).pathname;
      const hanging = request(`${server.url}${path}`, { method: 'PUT', headers: { 'content-length': '1000000' } });
      hanging.on('error', () => undefined);
      hanging.write(Buffer.alloc(1000, 1));
      await uploadUnderWay(server.url, server.key, made.data.createUploadUrl.asset.id);
      const started = Date.now();
      const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
      server.child.kill('SIGTERM');
      assert.equal(await exited, 0, server.output());
      const took = Date.now() - started;
      // Held until the drain ends (the timeout less its margin for the final closes, a fifth of 1 s), not cut at once.
      assert.ok(took >= 700 && took < 10_000, `exited after ${took} ms`);
      hanging.destroy();
    } finally {
      server.child.kill('SIGKILL');
      data.remove();
    }
  });
});
