import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Scope } from '../src/auth/scopes.js';
import type { Method } from '../src/http/router.js';
import { createTestApp, forEachDialect, listen, type TestApp } from './helpers.js';

/**
 * The access reference, checked: every route of the router's own table × every method
 * it declares × every kind of caller has an expected status and error code. The rows
 * are keyed `METHOD route`; a route or method added to the app without a row fails the
 * suite, as does a row for a method the route does not declare. Methods a route does
 * not declare are derived from the table: 405 with `Allow`. The same rows, rendered,
 * are the table of docs/access.md (UPDATE_DOCS=1 writes it).
 */

const CALLERS = {
  anonymous: null,
  'read:assets': ['read:assets'],
  'write:assets': ['write:assets'],
  'read+write': ['read:assets', 'write:assets'],
  'every scope': undefined,
  'another org': undefined,
  'test mode': undefined,
} as const satisfies Record<string, readonly Scope[] | null | undefined>;
type Caller = keyof typeof CALLERS;
const CALLER_NAMES = Object.keys(CALLERS) as Caller[];
const METHODS: readonly Method[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** A status, and the error code its body carries (JSON `error.code`, GraphQL `errors[0].extensions.code`). */
type Expect = number | readonly [number, string];
type Expected = Record<Caller, Expect>;
interface Request {
  path: string;
  headers?: Record<string, string>;
  body?: string;
}
interface Case {
  what: string;
  /** The request; called once per caller, so a request that changes something gets its own object. */
  make: (f: Fixtures) => Promise<Request> | Request;
  expect: Expected;
}

/** What the cases act on: made by the owner (org `acme`, live, every scope). */
interface Fixtures {
  url: string;
  privateAsset: string;
  publicAsset: string;
  trashedAsset: string;
  /** Paths of tus uploads: one under way, one finished (its asset READY or PROCESSING). */
  uploading: string;
  finished: string;
  newUpload: () => Promise<string>;
  newAsset: () => Promise<string>;
  signedDownload: string;
  newSignedUpload: () => Promise<string>;
  usedSignedUpload: string;
}

const same = (e: Expect): Expected => Object.fromEntries(CALLER_NAMES.map((c) => [c, e])) as Expected;
const NOT_FOUND = [404, 'NOT_FOUND'] as const;
const FORBIDDEN = [403, 'FORBIDDEN'] as const;
const UNAUTHENTICATED = [401, 'UNAUTHENTICATED'] as const;
/** What a key may read: its org and mode with read:assets; the rest is missing (403 for a key without read:assets). */
const reading = (ok: Expect, noBody = false): Expected => ({
  anonymous: noBody ? 404 : NOT_FOUND,
  'read:assets': ok,
  'write:assets': noBody ? 403 : FORBIDDEN,
  'read+write': ok,
  'every scope': ok,
  'another org': noBody ? 404 : NOT_FOUND,
  'test mode': noBody ? 404 : NOT_FOUND,
});
/** tus on `/tus/`: a key is needed (401), one that may write (403), of the upload's org and mode (404). */
const uploading = (ok: Expect, foreign: Expect = NOT_FOUND, noBody = false): Expected => ({
  anonymous: noBody ? 401 : UNAUTHENTICATED,
  'read:assets': noBody ? 403 : FORBIDDEN,
  'write:assets': ok,
  'read+write': ok,
  'every scope': ok,
  'another org': foreign,
  'test mode': foreign,
});
const TUS = { 'tus-resumable': '1.0.0' };
const CHUNK = { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' };
const gql = (query: string, variables: Record<string, unknown> = {}) => ({
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ query, variables }),
});
/** The reading rule in GraphQL: refusals are errors in a 200 answer. */
const GRAPHQL_READING: Expected = {
  ...reading(200),
  anonymous: [200, 'NOT_FOUND'],
  'write:assets': [200, 'FORBIDDEN'],
  'another org': [200, 'NOT_FOUND'],
  'test mode': [200, 'NOT_FOUND'],
};
const ASSET_TITLE = 'query($id: ID!) { asset(id: $id) { title } }';

const ROWS: Record<string, Case[]> = {
  'GET /graphql': [
    {
      what: 'query a private asset',
      make: (f) => ({ path: `/graphql?query=${encodeURIComponent(`{ asset(id: "${f.privateAsset}") { title } }`)}` }),
      expect: GRAPHQL_READING,
    },
    {
      what: 'a mutation (only by POST)',
      make: () => ({ path: `/graphql?query=${encodeURIComponent('mutation { __typename }')}` }),
      expect: same([405, 'BAD_USER_INPUT']),
    },
  ],
  'POST /graphql': [
    {
      what: 'query a private asset',
      make: (f) => ({ path: '/graphql', ...gql(ASSET_TITLE, { id: f.privateAsset }) }),
      expect: GRAPHQL_READING,
    },
    {
      what: 'deleteAsset (to the trash)',
      make: async (f) => ({
        path: '/graphql',
        ...gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', { id: await f.newAsset() }),
      }),
      expect: {
        anonymous: [401, 'UNAUTHENTICATED'],
        'read:assets': [200, 'FORBIDDEN'],
        'write:assets': [200, 'FORBIDDEN'],
        'read+write': [200, 'FORBIDDEN'],
        'every scope': 200,
        'another org': [200, 'NOT_FOUND'],
        'test mode': [200, 'NOT_FOUND'],
      },
    },
  ],
  'OPTIONS /graphql': [
    {
      what: 'CORS preflight',
      make: () => ({
        path: '/graphql',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
      }),
      expect: same(204),
    },
  ],
  'GET /healthz': [{ what: 'alive', make: () => ({ path: '/healthz' }), expect: same(200) }],
  'HEAD /healthz': [{ what: 'alive', make: () => ({ path: '/healthz' }), expect: same(200) }],
  'GET /readyz': [{ what: 'ready', make: () => ({ path: '/readyz' }), expect: same(200) }],
  'HEAD /readyz': [{ what: 'ready', make: () => ({ path: '/readyz' }), expect: same(200) }],
  'GET /metrics': [
    { what: 'an API key is not the metrics token', make: () => ({ path: '/metrics' }), expect: same(UNAUTHENTICATED) },
  ],
  'HEAD /metrics': [
    { what: 'an API key is not the metrics token', make: () => ({ path: '/metrics' }), expect: same(401) },
  ],
  ...Object.fromEntries(
    ['/', '/browser/app.js', '/browser/app.css', '/browser/thumbhash.js'].flatMap((page) => [
      [`GET ${page}`, [{ what: 'the asset browser', make: () => ({ path: page }), expect: same(200) }]],
      [`HEAD ${page}`, [{ what: 'the asset browser', make: () => ({ path: page }), expect: same(200) }]],
    ]),
  ),
  'GET /download/': [
    { what: 'a private asset', make: (f) => ({ path: `/download/${f.privateAsset}` }), expect: reading(200) },
    { what: 'a public asset', make: (f) => ({ path: `/download/${f.publicAsset}` }), expect: same(200) },
    {
      what: 'an asset in the trash',
      make: (f) => ({ path: `/download/${f.trashedAsset}` }),
      expect: reading(NOT_FOUND),
    },
  ],
  'HEAD /download/': [
    { what: 'a private asset', make: (f) => ({ path: `/download/${f.privateAsset}` }), expect: reading(200, true) },
    { what: 'a public asset', make: (f) => ({ path: `/download/${f.publicAsset}` }), expect: same(200) },
  ],
  'GET /dl/': [
    {
      what: 'a signed download URL (the token is the grant)',
      make: (f) => ({ path: f.signedDownload }),
      expect: same(200),
    },
    {
      what: 'a tampered signed URL',
      make: (f) => ({ path: f.signedDownload.replace(/\/dl\/(.)/, (_, c) => `/dl/${c === 'A' ? 'B' : 'A'}`) }),
      expect: same(FORBIDDEN),
    },
  ],
  'HEAD /dl/': [{ what: 'a signed download URL', make: (f) => ({ path: f.signedDownload }), expect: same(200) }],
  'PUT /up/': [
    {
      what: 'a signed upload URL (the token is the grant)',
      make: async (f) => ({ path: await f.newSignedUpload(), body: 'hello, world' }),
      expect: same(200),
    },
    {
      what: 'a used signed upload URL',
      make: (f) => ({ path: f.usedSignedUpload, body: 'hello, world' }),
      expect: same([409, 'CONFLICT']),
    },
  ],
  'HEAD /up/': [
    {
      what: 'a signed upload URL, resumed with tus',
      make: async (f) => ({ path: await f.newSignedUpload(), headers: TUS }),
      expect: same(200),
    },
    { what: 'a used signed upload URL', make: (f) => ({ path: f.usedSignedUpload, headers: TUS }), expect: same(409) },
  ],
  'PATCH /up/': [
    {
      what: 'a signed upload URL, resumed with tus',
      make: async (f) => ({ path: await f.newSignedUpload(), headers: CHUNK, body: 'hello' }),
      expect: same(204),
    },
  ],
  'POST /tus/': [
    {
      what: 'create an upload (in the caller’s own org)',
      make: () => ({
        path: '/tus/',
        headers: { ...TUS, 'upload-length': '5', 'upload-metadata': `filename ${btoa('new.txt')}` },
      }),
      expect: uploading(201, 201),
    },
  ],
  'OPTIONS /tus/': [{ what: 'what the server speaks', make: () => ({ path: '/tus/' }), expect: same(204) }],
  'HEAD /tus/': [
    {
      what: 'an upload under way',
      make: (f) => ({ path: f.uploading, headers: TUS }),
      expect: uploading(200, 404, true),
    },
    {
      what: 'a finished upload (offset = length)',
      make: (f) => ({ path: f.finished, headers: TUS }),
      expect: uploading(200, 404, true),
    },
  ],
  'PATCH /tus/': [
    {
      what: 'an upload under way',
      make: async (f) => ({ path: await f.newUpload(), headers: CHUNK, body: 'hello' }),
      expect: uploading(204),
    },
    {
      what: 'a finished upload',
      make: (f) => ({ path: f.finished, headers: { ...CHUNK, 'upload-offset': '12' } }),
      expect: uploading([409, 'CONFLICT']),
    },
  ],
  'DELETE /tus/': [
    {
      what: 'end an upload under way',
      make: async (f) => ({ path: await f.newUpload(), headers: TUS }),
      expect: uploading(204),
    },
    {
      what: 'a finished upload (its asset stays)',
      make: (f) => ({ path: f.finished, headers: TUS }),
      expect: uploading(NOT_FOUND),
    },
  ],
};

/** The rows as the Markdown table of docs/access.md. */
function renderTable(): string {
  const show = (e: Expect) => (typeof e === 'number' ? String(e) : `${e[0]} ${e[1]}`);
  const lines = [
    `| Request | Case | ${CALLER_NAMES.join(' | ')} |`,
    `| --- | --- | ${CALLER_NAMES.map(() => '---').join(' | ')} |`,
  ];
  for (const [row, cases] of Object.entries(ROWS))
    for (const c of cases)
      lines.push(`| \`${row}\` | ${c.what} | ${CALLER_NAMES.map((name) => show(c.expect[name])).join(' | ')} |`);
  return lines.join('\n');
}

const DOCS = new URL('../docs/access.md', import.meta.url);
const BEGIN = '<!-- access-table:begin (generated by test/route-table.test.ts; UPDATE_DOCS=1 rewrites it) -->';
const END = '<!-- access-table:end -->';

forEachDialect(() => {
  describe('the route table: every route × method × caller', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    let f: Fixtures;
    const keys = {} as Record<Caller, string | null>;

    const send = async (method: string, request: Request, key: string | null) => {
      const response = await fetch(server.url + request.path, {
        method,
        headers: { ...(key && { authorization: `Bearer ${key}` }), ...request.headers },
        body: request.body,
      });
      const text = await response.text();
      let code: string | undefined;
      try {
        const json = JSON.parse(text);
        code = json.error?.code ?? json.errors?.[0]?.extensions?.code;
      } catch {
        code = undefined; // not JSON (tus' own answers, files, Prometheus text): no code to check
      }
      return { status: response.status, code, allow: response.headers.get('allow') };
    };

    before(async () => {
      app = await createTestApp({
        METRICS_TOKEN: 'metrics-token-of-the-suite',
        MAX_FILE_SIZE: '1MiB',
        UPLOAD_URL_TTL: '10m',
      });
      server = await listen(app.handler);
      for (const caller of CALLER_NAMES) {
        const scopes = CALLERS[caller];
        keys[caller] =
          caller === 'anonymous'
            ? null
            : caller === 'another org'
              ? await app.createKey('globex')
              : caller === 'test mode'
                ? await app.createKey('acme', undefined, 'test')
                : caller === 'every scope'
                  ? app.key
                  : await app.createKey('acme', scopes as readonly Scope[]);
      }
      const owner = app.authHeaders;
      const tusCreate = async (body: string | null, isPublic = false) => {
        const response = await fetch(`${server.url}/tus/`, {
          method: 'POST',
          headers: {
            ...owner,
            ...TUS,
            'upload-length': body === null ? '5' : String(body.length),
            'upload-metadata': `filename ${btoa('a.txt')},isPublic ${btoa(String(isPublic))}`,
            ...(body !== null && { 'content-type': 'application/offset+octet-stream' }),
          },
          body: body ?? undefined,
        });
        assert.equal(response.status, 201, await response.text());
        return new URL(response.headers.get('location')!).pathname;
      };
      const globalIdOf = (path: string) => Buffer.from(`Asset:${path.split('/').pop()}`).toString('base64url');
      const newAsset = async () => globalIdOf(await tusCreate('hello, world'));
      const finished = await tusCreate('hello, world');
      const trashedAsset = await newAsset();
      const trashed = await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', {
        id: trashedAsset,
      });
      assert.equal(trashed.errors, undefined);
      const privateAsset = await newAsset();
      const url = await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', {
        id: privateAsset,
      });
      const newSignedUpload = async () => {
        const made = await app.gql(
          'mutation { createUploadUrl(input: { filename: "s.txt", size: 12 }) { uploadUrl } }',
        );
        return new URL(made.data.createUploadUrl.uploadUrl).pathname;
      };
      const usedSignedUpload = await newSignedUpload();
      assert.equal((await fetch(server.url + usedSignedUpload, { method: 'PUT', body: 'hello, world' })).status, 200);
      f = {
        url: server.url,
        privateAsset,
        publicAsset: globalIdOf(await tusCreate('hello, world', true)),
        trashedAsset,
        uploading: await tusCreate(null),
        finished,
        newUpload: () => tusCreate(null),
        newAsset,
        signedDownload: new URL(url.data.createDownloadUrl.url).pathname,
        newSignedUpload,
        usedSignedUpload,
      };
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    test('every route and method the router declares has a row, and every row a declared route and method', () => {
      const declared = Object.entries(app.table).flatMap(([route, methods]) => methods.map((m) => `${m} ${route}`));
      assert.deepEqual(
        declared.filter((row) => !(row in ROWS)),
        [],
        'add a row for each new route or method',
      );
      assert.deepEqual(
        Object.keys(ROWS).filter((row) => !declared.includes(row)),
        [],
        'a row for a method the route does not declare',
      );
      for (const cases of Object.values(ROWS)) assert.ok(cases.length > 0);
    });

    test('every row answers each caller with its status and error code', async () => {
      const wrong: string[] = [];
      for (const [row, cases] of Object.entries(ROWS)) {
        const method = row.split(' ')[0];
        for (const c of cases) {
          for (const caller of CALLER_NAMES) {
            const expected = c.expect[caller];
            const [status, code] = typeof expected === 'number' ? [expected, undefined] : expected;
            const got = await send(method, await c.make(f), keys[caller]);
            if (got.status !== status || got.code !== code)
              wrong.push(
                `${row} (${c.what}) as ${caller}: ${got.status} ${got.code ?? ''}, not ${status} ${code ?? ''}`,
              );
          }
        }
      }
      assert.deepEqual(wrong, []);
    });

    test('a finished upload and its asset are still there after every caller tried to end it', async () => {
      const id = Buffer.from(`Asset:${f.finished.split('/').pop()}`).toString('base64url');
      const asset = await app.gql('query($id: ID!) { asset(id: $id) { id trashedAt } }', { id });
      assert.deepEqual(asset.data.asset, { id, trashedAt: null });
    });

    test('every method a route does not declare is 405 with Allow, for any caller', async () => {
      const wrong: string[] = [];
      for (const [route, methods] of Object.entries(app.table)) {
        const path = route.endsWith('/') && route !== '/' ? `${route}x` : route;
        for (const method of METHODS.filter((m) => !methods.includes(m))) {
          for (const caller of ['anonymous', 'every scope'] as const) {
            const got = await send(
              method,
              { path, headers: TUS, body: method === 'GET' || method === 'HEAD' ? undefined : 'x' },
              keys[caller],
            );
            if (got.status !== 405 || got.allow !== methods.join(', '))
              wrong.push(`${method} ${route} as ${caller}: ${got.status}, Allow ${got.allow}`);
          }
        }
      }
      assert.deepEqual(wrong, []);
    });

    test('a path outside the table is 404 NOT_FOUND', async () => {
      assert.deepEqual(await send('GET', { path: '/nowhere' }, null), { status: 404, code: 'NOT_FOUND', allow: null });
    });

    test('docs/access.md holds the table these rows make', () => {
      const docs = readFileSync(DOCS, 'utf8');
      const table = `${BEGIN}\n${renderTable()}\n${END}`;
      const current = docs.slice(docs.indexOf(BEGIN), docs.indexOf(END) + END.length);
      if (process.env.UPDATE_DOCS === '1' && current !== table) writeFileSync(DOCS, docs.replace(current, table));
      else assert.equal(current, table, 'run with UPDATE_DOCS=1 to rewrite the table in docs/access.md');
    });
  });
});
