import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  assertConsistent,
  createTestApp,
  listen,
  multipartForm,
  png,
  type TestApp,
  forEachDialect,
  forEachSetup,
} from './helpers.js';

/**
 * Bad input, one case a test: each asserts the exact error code (or the harmless
 * outcome), that the server answers the next request, and that the store is
 * consistent afterwards (no row without its blob, no blob without its row, usage
 * equal to the sum of sizes).
 */

const UPLOAD = 'mutation($f: Upload!) { uploadAsset(input: { file: $f }) { asset { id filename mimeType type url } } }';
const UPLOAD_MANY =
  'mutation($f: [Upload!]!) { uploadAssets(input: { files: $f }) { assets { id } failures { index code } } }';

forEachDialect(() => {
  describe('hostile input', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    let url: string;
    let auth: Record<string, string>;

    before(async () => {
      app = await createTestApp({ MAX_FILE_SIZE: '10000', MAX_FILES_PER_REQUEST: '3', MAX_JSON_BODY_SIZE: '40000' });
      server = await listen(app.handler, { httpHeadersTimeout: 1, httpRequestTimeout: 30, httpIdleTimeout: 5 });
      url = server.url;
      auth = app.authHeaders;
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    /** After every case: the server answers and the store is consistent. */
    async function stillServing() {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ viewer { org } }' }),
      });
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as any).data.viewer.org, 'acme');
      await assertConsistent(app);
    }

    async function post(body: string, headers: Record<string, string> = {}) {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', ...headers },
        body,
      });
      const text = await response.text();
      let json: any = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = { raw: text };
      }
      return { status: response.status, json, code: json?.errors?.[0]?.extensions?.code, headers: response.headers };
    }

    const gql = (query: string, variables?: unknown) => post(JSON.stringify({ query, variables }));

    /** A refused request: the contract's code and the HTTP status that goes with it, both. */
    function expectError(result: { status: number; code?: string; json: unknown }, code: string, status: number) {
      assert.deepEqual({ code: result.code, status: result.status }, { code, status }, JSON.stringify(result.json));
    }

    async function multipart(form: FormData, headers: Record<string, string> = { 'x-graphql-yoga-csrf': '1' }) {
      const response = await fetch(`${url}/graphql`, { method: 'POST', body: form, headers: { ...auth, ...headers } });
      const json = (await response.json()) as any;
      return { status: response.status, json, code: json?.errors?.[0]?.extensions?.code };
    }

    const file = (bytes: string | Uint8Array<ArrayBuffer>, name: string) =>
      multipartForm(UPLOAD, { f: null }, [['variables.f', new Blob([bytes]), name]]);

    const cases: [string, () => Promise<void>][] = [
      ['malformed JSON body', async () => expectError(await post('{"query": '), 'BAD_USER_INPUT', 400)],
      [
        'a JSON body that is not an object',
        async () => expectError(await post('"just a string"'), 'BAD_USER_INPUT', 400),
      ],
      ['no query at all', async () => expectError(await post('{}'), 'BAD_USER_INPUT', 400)],
      [
        'a query string or form body whose variables or extensions are not JSON, without a key',
        async () => {
          const form = { 'content-type': 'application/x-www-form-urlencoded' };
          for (const [name, init, target] of [
            ['variables', {}, `${url}/graphql?query=%7B__typename%7D&variables=%7Bbad`],
            ['extensions', {}, `${url}/graphql?query=%7B__typename%7D&extensions=%7Bbad`],
            [
              'variables',
              { method: 'POST', headers: form, body: 'query=%7B__typename%7D&variables=%7Bbad' },
              `${url}/graphql`,
            ],
            [
              'extensions',
              { method: 'POST', headers: form, body: 'query=%7B__typename%7D&extensions=%7Bbad' },
              `${url}/graphql`,
            ],
          ] as const) {
            const response = await fetch(target, init);
            const json = (await response.json()) as any;
            expectError(
              { status: response.status, json, code: json?.errors?.[0]?.extensions?.code },
              'BAD_USER_INPUT',
              400,
            );
            assert.equal(json.errors[0].extensions.field, name, target);
          }
        },
      ],
      ['a query that does not parse', async () => expectError(await gql('{ assets(first: '), 'BAD_USER_INPUT', 400)],
      ['an unknown field', async () => expectError(await gql('{ secrets }'), 'BAD_USER_INPUT', 400)],
      [
        'an unknown enum value',
        async () =>
          expectError(await gql('{ assets(filter: { types: [ROOT] }) { totalCount } }'), 'BAD_USER_INPUT', 400),
      ],
      [
        'a variable of the wrong type',
        async () =>
          expectError(
            await gql('query($n: Int) { assets(first: $n) { totalCount } }', { n: 'ten' }),
            'BAD_USER_INPUT',
            400,
          ),
      ],
      [
        'variables that are not an object',
        async () =>
          expectError(
            await post(JSON.stringify({ query: '{ viewer { org } }', variables: 'x' })),
            'BAD_USER_INPUT',
            400,
          ),
      ],
      [
        'a huge first',
        async () => expectError(await gql('{ assets(first: 1000000) { totalCount } }'), 'BAD_USER_INPUT', 400),
      ],
      [
        'a costly query whose page sizes come as variables',
        async () => {
          const fields =
            'id title filename checksum url tags directory { parent { parent { parent { parent { parent { id } } } } } }';
          const aliases = (first: string) =>
            Array.from(
              { length: 25 },
              (_, i) => `a${i}: assets(first: ${first}) { edges { node { ${fields} } } }`,
            ).join(' ');
          const inline = await gql(`{ ${aliases('100')} }`);
          expectError(inline, 'BAD_USER_INPUT', 400);
          const variables = await gql(`query($n: Int) { ${aliases('$n')} }`, { n: 100 });
          expectError(variables, 'BAD_USER_INPUT', 400);
          assert.match(variables.json.errors[0].message, /cost limit/);
          const small = await gql(`query($n: Int) { ${aliases('$n').split(' a1:')[0]} }`, { n: 10 });
          assert.equal(small.status, 200, JSON.stringify(small.json));
          assert.ok(small.json.data.a0, 'a query within the limit runs');
        },
      ],
      [
        'a negative last',
        async () => expectError(await gql('{ assets(last: -5) { totalCount } }'), 'BAD_USER_INPUT', 200),
      ],
      [
        'an invalid cursor',
        async () => expectError(await gql('{ assets(first: 1, after: "%%%") { totalCount } }'), 'BAD_USER_INPUT', 200),
      ],
      [
        'a forged cursor',
        async () => {
          const forged = Buffer.from(JSON.stringify(['created_at', 'desc', { $gt: 1 }, 'x'])).toString('base64url');
          expectError(await gql(`{ assets(first: 1, after: "${forged}") { totalCount } }`), 'BAD_USER_INPUT', 200);
        },
      ],
      [
        'a garbage id',
        async () => expectError(await gql('{ asset(id: "../../etc/passwd") { id } }'), 'BAD_USER_INPUT', 200),
      ],
      [
        'an id of another type',
        async () => {
          const id = Buffer.from('ApiKey:00000000-0000-4000-8000-000000000000').toString('base64url');
          expectError(await gql(`{ asset(id: "${id}") { id } }`), 'NOT_FOUND', 200);
        },
      ],
      [
        'a deep query',
        async () => {
          const deep = `{ assets { edges { node { directory { ${'parent { '.repeat(15)}id${' }'.repeat(15)} } } } } }`;
          expectError(await gql(deep), 'BAD_USER_INPUT', 400);
        },
      ],
      [
        'many aliases',
        async () => {
          const aliases = Array.from({ length: 60 }, (_, i) => `a${i}: viewer { org }`).join(' ');
          expectError(await gql(`{ ${aliases} }`), 'BAD_USER_INPUT', 400);
        },
      ],
      [
        'many directives',
        async () =>
          expectError(await gql(`{ viewer { org ${'@include(if: true) '.repeat(60)} } }`), 'BAD_USER_INPUT', 400),
      ],
      [
        'a query of too many tokens',
        async () => expectError(await gql(`{ viewer { ${'org '.repeat(6000)} } }`), 'BAD_USER_INPUT', 400),
      ],
      [
        'a JSON body over the limit',
        async () => {
          const result = await gql(`{ assets(filter: { search: "${'x'.repeat(50_000)}" }) { totalCount } }`);
          assert.equal(result.status, 413);
          assert.equal(result.code, 'PAYLOAD_TOO_LARGE');
        },
      ],
      [
        'batched operations',
        async () =>
          expectError(
            await post(JSON.stringify([{ query: '{ viewer { org } }' }, { query: '{ viewer { org } }' }])),
            'BAD_USER_INPUT',
            400,
          ),
      ],
      [
        'a mutation over GET',
        async () => {
          const response = await fetch(
            `${url}/graphql?query=${encodeURIComponent('mutation { createDirectory(input: { name: "x" }) { directory { id } } }')}`,
            { headers: { ...auth, accept: 'application/json' } },
          );
          const json = (await response.json()) as any;
          assert.equal(json.errors[0].extensions.code, 'BAD_USER_INPUT');
        },
      ],
      [
        'a key without the scope',
        async () => {
          const key = await app.createKey('acme', ['read:assets']);
          const response = await fetch(`${url}/graphql`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ query: 'mutation { createDirectory(input: { name: "x" }) { directory { id } } }' }),
          });
          assert.equal(((await response.json()) as any).errors[0].extensions.code, 'FORBIDDEN');
        },
      ],
      [
        'a made-up key',
        async () =>
          assert.equal(
            (
              await post(JSON.stringify({ query: '{ viewer { org } }' }), {
                authorization: `Bearer sk_live_acme_${'f'.repeat(48)}`,
              })
            ).status,
            401,
          ),
      ],
      [
        'an invalid date',
        async () =>
          expectError(
            await gql('{ assets(filter: { createdAfter: "31/12/2026" }) { totalCount } }'),
            'BAD_USER_INPUT',
            400,
          ),
      ],
      [
        'a title too long',
        async () =>
          expectError(
            await gql(
              `mutation { createAsset(input: { title: "${'t'.repeat(600)}", type: LINK, externalUrl: "https://e.com" }) { asset { id } } }`,
            ),
            'BAD_USER_INPUT',
            200,
          ),
      ],
      [
        'too many tags',
        async () => {
          const tags = JSON.stringify(Array.from({ length: 60 }, (_, i) => `t${i}`));
          expectError(
            await gql(
              `mutation { createAsset(input: { title: "x", type: LINK, externalUrl: "https://e.com", tags: ${tags} }) { asset { id } } }`,
            ),
            'BAD_USER_INPUT',
            200,
          );
        },
      ],
      [
        'a javascript: link',
        async () =>
          expectError(
            await gql(
              'mutation { createAsset(input: { title: "x", type: LINK, externalUrl: "javascript:alert(1)" }) { asset { id } } }',
            ),
            'BAD_USER_INPUT',
            200,
          ),
      ],
      [
        'path traversal in a filename',
        async () => {
          const { json } = await multipart(file('plain', '../../../etc/cron.d/evil'));
          assert.equal(json.data.uploadAsset.asset.filename, 'evil');
        },
      ],
      [
        'control characters in a filename',
        async () => expectError(await multipart(file('plain', 'a\u0001b\r\n.txt')), 'BAD_USER_INPUT', 200),
      ],
      [
        'bytes that contradict the name and the declared type',
        async () => {
          const form = multipartForm(UPLOAD, { f: null }, [
            ['variables.f', new Blob([new Uint8Array(png(2, 2))], { type: 'application/pdf' }), 'report.pdf'],
          ]);
          const { json } = await multipart(form);
          assert.equal(json.data.uploadAsset.asset.mimeType, 'image/png');
          assert.equal(json.data.uploadAsset.asset.type, 'IMAGE');
        },
      ],
      [
        'an SVG with script',
        async () => {
          const { json } = await multipart(
            file(
              '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>',
              'icon.png',
            ),
          );
          const asset = json.data.uploadAsset.asset;
          assert.equal(asset.mimeType, 'image/svg+xml');
          const response = await fetch(url + new URL(asset.url).pathname, { headers: auth });
          assert.match(response.headers.get('content-disposition')!, /^attachment/);
          assert.match(response.headers.get('content-security-policy')!, /sandbox/);
          assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
        },
      ],
      [
        'HTML with script named .txt',
        async () => {
          const { json } = await multipart(file('<html><script>document.cookie</script></html>', 'notes.txt'));
          const asset = json.data.uploadAsset.asset;
          assert.equal(asset.mimeType, 'text/html');
          const response = await fetch(url + new URL(asset.url).pathname, { headers: auth });
          assert.match(response.headers.get('content-disposition')!, /^attachment/);
        },
      ],
      [
        'a declared size that lies',
        async () => {
          const created = await gql(
            'mutation { createUploadUrl(input: { filename: "x.bin", size: 10 }) { uploadUrl } }',
          );
          const put = await fetch(url + new URL(created.json.data.createUploadUrl.uploadUrl).pathname, {
            method: 'PUT',
            body: 'not ten bytes at all',
          });
          assert.equal(put.status, 400);
          assert.equal(((await put.json()) as any).error.code, 'BAD_USER_INPUT');
        },
      ],
      [
        'an oversize file',
        async () => expectError(await multipart(file(new Uint8Array(10_001), 'big.bin')), 'PAYLOAD_TOO_LARGE', 413),
      ],
      [
        'an oversize PUT body',
        async () => {
          const created = await gql('mutation { createUploadUrl(input: { filename: "x.bin" }) { uploadUrl } }');
          const put = await fetch(url + new URL(created.json.data.createUploadUrl.uploadUrl).pathname, {
            method: 'PUT',
            body: new Uint8Array(20_000),
          });
          assert.equal(put.status, 413);
        },
      ],
      [
        'an oversize multipart field',
        async () => {
          const form = new FormData();
          const padding = ' '.repeat(1_000_001);
          form.append('operations', `{"query": ${JSON.stringify(UPLOAD)},${padding}"variables": { "f": null }}`);
          form.append('map', JSON.stringify({ 0: ['variables.f'] }));
          form.append('0', new Blob(['x']), 'x.txt');
          const result = await multipart(form);
          expectError(result, 'PAYLOAD_TOO_LARGE', 413);
          assert.equal(result.json.errors[0].extensions.limit, 1_000_000, 'the field limit, not the file limit');
        },
      ],
      [
        'too many files',
        async () => {
          const files = Array.from(
            { length: 4 },
            (_, i) => [`variables.f.${i}`, new Blob(['x']), `f${i}.txt`] as [string, Blob, string],
          );
          expectError(
            await multipart(multipartForm(UPLOAD_MANY, { f: files.map(() => null) }, files)),
            'BAD_USER_INPUT',
            400,
          );
        },
      ],
      [
        'a map naming more files than allowed, whatever the parts that follow',
        async () => {
          const form = new FormData();
          form.append('operations', JSON.stringify({ query: UPLOAD_MANY, variables: { f: [null, null, null, null] } }));
          form.append(
            'map',
            JSON.stringify({ 0: ['variables.f.0'], 1: ['variables.f.1'], 2: ['variables.f.2'], 3: ['variables.f.3'] }),
          );
          form.append('0', new Blob(['x']), 'x.txt');
          const result = await multipart(form);
          expectError(result, 'BAD_USER_INPUT', 400);
          assert.equal(result.json.errors[0].extensions.field, 'files');
        },
      ],
      [
        'extra multipart fields',
        async () => {
          const form = file('x', 'x.txt');
          for (let i = 0; i < 20; i++) form.append(`junk${i}`, 'y'.repeat(100));
          const result = await multipart(form);
          assert.ok(result.code === 'BAD_USER_INPUT' || result.json.data?.uploadAsset, JSON.stringify(result.json));
        },
      ],
      [
        'a file part before operations',
        async () => {
          const form = new FormData();
          form.append('0', new Blob(['x']), 'x.txt');
          form.append('operations', JSON.stringify({ query: UPLOAD, variables: { f: null } }));
          form.append('map', JSON.stringify({ 0: ['variables.f'] }));
          expectError(await multipart(form), 'BAD_USER_INPUT', 400);
        },
      ],
      [
        'a map that points to a file never sent',
        async () => {
          const form = new FormData();
          form.append('operations', JSON.stringify({ query: UPLOAD, variables: { f: null } }));
          form.append('map', JSON.stringify({ 0: ['variables.f'] }));
          expectError(await multipart(form), 'BAD_USER_INPUT', 200);
        },
      ],
      [
        'a map that points nowhere in the operation',
        async () => {
          const form = new FormData();
          form.append('operations', JSON.stringify({ query: UPLOAD, variables: { f: null } }));
          form.append('map', JSON.stringify({ 0: ['variables.nowhere.deep'] }));
          form.append('0', new Blob(['x']), 'x.txt');
          expectError(await multipart(form), 'BAD_USER_INPUT', 400);
        },
      ],
      [
        'the same upload used twice',
        async () => {
          const form = new FormData();
          form.append('operations', JSON.stringify({ query: UPLOAD_MANY, variables: { f: [null, null] } }));
          form.append('map', JSON.stringify({ 0: ['variables.f.0', 'variables.f.1'] }));
          form.append('0', new Blob(['twice']), 'x.txt');
          const { json } = await multipart(form);
          assert.equal(json.data.uploadAssets.assets.length, 1);
          assert.deepEqual(json.data.uploadAssets.failures, [{ index: 1, code: 'BAD_USER_INPUT' }]);
        },
      ],
      [
        'invalid JSON in operations',
        async () => {
          const form = new FormData();
          form.append('operations', '{nope');
          form.append('map', '{}');
          expectError(await multipart(form), 'BAD_USER_INPUT', 400);
        },
      ],
      [
        'multipart without the preflight header',
        async () => expectError(await multipart(file('x', 'x.txt'), {}), 'BAD_USER_INPUT', 400),
      ],
      [
        'a tampered signed URL',
        async () => assert.equal((await fetch(`${url}/dl/v1.00000000.e30.AAAA/x`)).status, 403),
      ],
      [
        'path traversal in a download path',
        async () =>
          assert.equal((await fetch(`${url}/download/..%2F..%2Fetc%2Fpasswd`, { headers: auth })).status, 400),
      ],
      [
        'a range past the end',
        async () => {
          const { json } = await multipart(file('0123456789', 'r.txt'));
          const response = await fetch(url + new URL(json.data.uploadAsset.asset.url).pathname, {
            headers: { ...auth, range: 'bytes=50-60' },
          });
          assert.equal(response.status, 416);
        },
      ],
      [
        'slowloris: headers that never finish',
        async () => {
          const closed = await new Promise<boolean>((resolve) => {
            const socket = connect(Number(new URL(url).port), '127.0.0.1', () => {
              socket.write('POST /graphql HTTP/1.1\r\nHost: x\r\n');
              const drip = setInterval(() => socket.write('X-Drip: 1\r\n'), 200);
              socket.on('close', () => {
                clearInterval(drip);
                resolve(true);
              });
              setTimeout(() => {
                clearInterval(drip);
                socket.destroy();
                resolve(false);
              }, 5000);
            });
            socket.on('error', () => undefined);
          });
          assert.ok(closed, 'the server hung up on the slow client');
        },
      ],
    ];

    for (const [name, run] of cases) {
      test(name, async () => {
        await run();
        await stillServing();
      });
    }
  });

  describe('limits', () => {
    test('a denied media type is UNSUPPORTED_MEDIA_TYPE, judged from the bytes; nothing is kept', async () => {
      const app = await createTestApp({ DENIED_MEDIA_TYPES: 'text/html,application/x-msdownload' });
      const server = await listen(app.handler);
      try {
        const form = multipartForm(UPLOAD, { f: null }, [
          ['variables.f', new Blob(['<!doctype html><p>hi']), 'page.txt'],
        ]);
        const response = await fetch(`${server.url}/graphql`, {
          method: 'POST',
          body: form,
          headers: { ...app.authHeaders, 'x-graphql-yoga-csrf': '1' },
        });
        assert.equal(((await response.json()) as any).errors[0].extensions.code, 'UNSUPPORTED_MEDIA_TYPE');
        assert.equal((await app.db.selectFrom('assets').select('id').execute()).length, 0);
        await assertConsistent(app);
      } finally {
        await server.close();
        await app.dispose();
      }
    });

    test('fsck --repair recounts an org whose recorded storage drifted', async () => {
      const app = await createTestApp();
      try {
        const { Readable } = await import('node:stream');
        await app.services.assets.upload(
          { orgId: 'acme', mode: 'live' },
          { stream: Readable.from([Buffer.alloc(1234)]), filename: 'a.bin' },
        );
        await app.db.updateTable('orgs').set({ used_bytes: 99 }).where('id', '=', 'acme').execute();
        const found = await app.fsck({ repair: true });
        assert.deepEqual(found.usageMismatches, [{ orgId: 'acme', recorded: 99, actual: 1234 }]);
        assert.equal((await app.repositories.orgs.usage('acme')).used, 1234);
        await assertConsistent(app);
      } finally {
        await app.dispose();
      }
    });
  });
});

// Quota, rate limits and upload slots: where the database, the store and shared state meet, so every setup.
forEachSetup(() => {
  describe('quota, rate limits and upload slots', () => {
    test('20 parallel uploads at 99% of the quota never pass it; failures release their reservation', async () => {
      const app = await createTestApp({ ORG_STORAGE_QUOTA: '10000000', UPLOAD_CONCURRENCY: '50' });
      const server = await listen(app.handler);
      try {
        const { Readable } = await import('node:stream');
        await app.services.assets.upload(
          { orgId: 'acme', mode: 'live' },
          { stream: Readable.from([Buffer.alloc(9_900_000)]), filename: 'big.bin' },
        );
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => {
            const form = multipartForm(UPLOAD, { f: null }, [
              ['variables.f', new Blob([new Uint8Array(40_000)]), `f${i}.bin`],
            ]);
            return fetch(`${server.url}/graphql`, {
              method: 'POST',
              body: form,
              headers: { ...app.authHeaders, 'x-graphql-yoga-csrf': '1' },
            }).then((r) => r.json() as any);
          }),
        );
        const stored = results.filter((r) => r.data?.uploadAsset).length;
        const refused = results.filter((r) => r.errors?.[0].extensions.code === 'INSUFFICIENT_STORAGE').length;
        assert.equal(stored + refused, 20);
        assert.ok(stored <= 2, `${stored} stored`);
        const usage = await app.repositories.orgs.usage('acme');
        assert.ok(usage.used <= 10_000_000, `used ${usage.used}`);
        assert.equal(usage.used, 9_900_000 + stored * 40_000);
        assert.equal(usage.reserved, 0, 'every reservation settled or released');
        const viewer = await app.gql('{ viewer { usage { orgBytesStored quotaBytes } } }');
        assert.deepEqual(viewer.data.viewer.usage, { orgBytesStored: usage.used, quotaBytes: 10_000_000 });
        await assertConsistent(app);
      } finally {
        await server.close();
        await app.dispose();
      }
    });

    test('the rate limit counts root fields and aliases; over it: 429, Retry-After, retryAfter', async () => {
      const app = await createTestApp({ RATE_LIMIT: '10' });
      try {
        const first = await app.gql('{ a: viewer { org } b: viewer { org } c: viewer { org } }');
        assert.equal(first.errors, undefined);
        const viewer = await app.gql('{ viewer { rateLimit { limit remaining } } }');
        assert.deepEqual(viewer.data.viewer.rateLimit, { limit: 10, remaining: 6 });
        const over = await app.gql(`{ ${Array.from({ length: 7 }, (_, i) => `x${i}: viewer { org }`).join(' ')} }`);
        assert.equal(over.status, 429);
        assert.equal(over.errors?.[0].extensions.code, 'RATE_LIMITED');
        assert.ok(over.errors![0].extensions.retryAfter >= 1);
        assert.equal(over.headers.get('retry-after'), String(over.errors![0].extensions.retryAfter));
        const other = await app.gql(
          '{ viewer { org } }',
          {},
          { authorization: `Bearer ${await app.createKey('other')}` },
        );
        assert.equal(other.errors, undefined, 'each key has its own bucket');
      } finally {
        await app.dispose();
      }
    });

    test('the upload route takes its slots: with every slot of a key held, its next upload is 429', async () => {
      const app = await createTestApp({ UPLOAD_CONCURRENCY: '1' });
      const server = await listen(app.handler);
      try {
        const viewer = await app.gql('{ viewer { apiKey { id } } }');
        const keyId = Buffer.from(viewer.data.viewer.apiKey.id, 'base64url').toString().split(':')[1];
        const release = await app.services.uploadSlots.acquire(keyId); // an upload of this key in flight
        const send = () =>
          fetch(`${server.url}/graphql`, {
            method: 'POST',
            body: multipartForm(UPLOAD, { f: null }, [['variables.f', new Blob(['x']), 'x.txt']]),
            headers: { ...app.authHeaders, 'x-graphql-yoga-csrf': '1' },
          });
        const refused = await send();
        assert.equal(refused.status, 429);
        assert.equal(((await refused.json()) as any).errors[0].extensions.code, 'RATE_LIMITED');
        release();
        assert.ok(((await (await send()).json()) as any).data.uploadAsset.asset.id);
        assert.equal(
          await app.services.uploadSlots.running(keyId),
          0,
          'the slot is given back when the response closes',
        );
        await assertConsistent(app);
      } finally {
        await server.close();
        await app.dispose();
      }
    });

    test('a key may run UPLOAD_CONCURRENCY uploads at once; one more is RATE_LIMITED', async () => {
      const app = await createTestApp({ UPLOAD_CONCURRENCY: '2' });
      try {
        const slots = app.services.uploadSlots;
        const a = await slots.acquire('k');
        const b = await slots.acquire('k');
        await assert.rejects(slots.acquire('k'), (e: any) => e.code === 'RATE_LIMITED');
        const other = await slots.acquire('other key');
        a();
        const c = await slots.acquire('k');
        for (const release of [b, c, other]) release();
        assert.equal(await slots.running('k'), 0);
      } finally {
        await app.dispose();
      }
    });
  });
});
