import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createTestApp, type ServerProcess, startServer, tempDir } from './helpers.js';

/**
 * The built server as a process, sent a corpus of malformed paths, headers and
 * bodies on every route and method. Each answer must be a 4xx (or the route's
 * ordinary answer), never a 5xx, and the process must still be serving afterwards:
 * no request, however malformed, ends it.
 */

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const BAD_PATHS = [
  '%',
  '%E0%A4%A',
  '%ZZ',
  '%u0041',
  '%00',
  '%C0%AE%C0%AE%2F',
  '..%2F..%2Fetc%2Fpasswd',
  'x'.repeat(6000),
  '%%%%%%%%',
  'v1.%FF.%FE.%FD',
];

/**
 * One request written to a socket as is; resolves the status the server answered (0: it
 * hung up first, or did not answer in 10 s). The socket stays open for writing, as a
 * client's does while it waits for the answer: the request says `Connection: close`.
 */
function raw(port: number, head: string, body = ''): Promise<number> {
  return new Promise((resolve) => {
    let received = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(head + body));
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => (received += chunk));
    socket.on('error', () => undefined); // the server may reset a request it refused; the status says enough
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0)));
    socket.setTimeout(10_000, () => socket.destroy());
  });
}

/** The head of a request (with the Content-Length of `body`, which the caller sends after it). */
const request = (method: string, path: string, headers: string[] = [], body = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${[
    ...headers,
    ...(body ? [`Content-Length: ${Buffer.byteLength(body)}`] : []),
  ]
    .map((h) => `${h}\r\n`)
    .join('')}\r\n`;

/** A whole request: its head and its body. */
const whole = (method: string, path: string, headers: string[], body: string): [string, string] => [
  request(method, path, headers, body),
  body,
];

const MULTIPART = 'multipart/form-data; boundary=b';
const part = (name: string, value: string) =>
  `--b\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;

/** Headers and bodies that are wrong in every way a client can make them, sent to each route. */
const BAD_REQUESTS: [string, (route: string) => [string, string?]][] = [
  ['non-ASCII bytes in the path', (r) => [`GET ${r}\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]],
  ['a header with a control character', (r) => [request('GET', r, ['X-API-Key: a\x01b'])]],
  ['a made-up key', (r) => [request('GET', r, ['X-API-Key: sk_live_x_%%%'])]],
  ['an Authorization of another scheme', (r) => [request('GET', r, ['Authorization: Basic Zm9vOmJhcg=='])]],
  ['a garbage Range', (r) => [request('GET', r, ['Range: bytes=zz-!'])]],
  ['a Range past every integer', (r) => [request('GET', r, ['Range: bytes=99999999999999999999999-'])]],
  ['a garbage If-None-Match', (r) => [request('GET', r, ['If-None-Match: "\\"'])]],
  ['a negative Content-Length', (r) => [`PUT ${r}x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n`]],
  ['two Content-Lengths', (r) => [`PUT ${r}x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`]],
  ['a broken chunked body', (r) => [`PUT ${r}x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n`]],
  ['headers of 80 KiB', (r) => [request('GET', r, [`X-Big: ${'a'.repeat(80 * 1024)}`])]],
  ['a JSON body that does not parse', (r) => whole('POST', r, ['Content-Type: application/json'], '{"query": ')],
  ['a JSON body of the wrong shape', (r) => whole('POST', r, ['Content-Type: application/json'], '[1,"x",null]')],
  [
    'multipart without a boundary',
    (r) => whole('POST', r, ['Content-Type: multipart/form-data', 'x-graphql-yoga-csrf: 1'], 'junk'),
  ],
  [
    'multipart with an empty body',
    (r) => [request('POST', r, [`Content-Type: ${MULTIPART}`, 'x-graphql-yoga-csrf: 1'])],
  ],
  [
    'multipart whose operations are not JSON',
    (r) =>
      whole('POST', r, [`Content-Type: ${MULTIPART}`, 'x-graphql-yoga-csrf: 1'], `${part('operations', '{')}--b--\r\n`),
  ],
  [
    'multipart with neither operations nor map',
    (r) => whole('POST', r, [`Content-Type: ${MULTIPART}`, 'x-graphql-yoga-csrf: 1'], `${part('x', '1')}--b--\r\n`),
  ],
  [
    'multipart with a part header cut off',
    (r) => whole('POST', r, [`Content-Type: ${MULTIPART}`, 'x-graphql-yoga-csrf: 1'], '--b\r\nContent-Disp'),
  ],
  ['an unknown Content-Type', (r) => whole('POST', r, ['Content-Type: application/x-nonsense'], '\x00\x01')],
];

describe('malformed requests against the server process', () => {
  const data = tempDir('assetgate-malformed-');
  let server: ServerProcess;
  /** Every route the server has, from the app's own route table: a new route cannot be missed. */
  let routes: string[] = [];
  const answers: { what: string; status: number }[] = [];

  before(async () => {
    server = await startServer(data.dir, { env: { RATE_LIMIT: '0', MAX_FILE_SIZE: '1MiB' } });
    const app = await createTestApp();
    try {
      routes = Object.keys(app.table);
    } finally {
      await app.dispose();
    }
  });
  after(() => {
    server.child.kill('SIGKILL');
    data.remove();
  });

  test('the route table holds the routes the contract names', () => {
    for (const route of ['/graphql', '/download/', '/dl/', '/up/', '/tus/', '/healthz', '/readyz', '/metrics', '/']) {
      assert.ok(routes.includes(route), `${route} is missing from the route table`);
    }
  });

  test('malformed paths on every route and method are answered 4xx (or as usual), never 5xx', async () => {
    for (const route of routes) {
      for (const path of BAD_PATHS) {
        for (const method of METHODS) {
          const status = await raw(server.port, request(method, `${route}${path}`));
          answers.push({ what: `${method} ${route}${path.slice(0, 20)}`, status });
        }
      }
    }
    const failed = answers.filter((a) => a.status === 0 || a.status >= 500);
    assert.deepEqual(failed, [], 'answered 5xx or not at all');
    assert.ok(
      answers.some((a) => a.what === 'GET /download/%' && a.status === 400),
      'a malformed escape is a 400',
    );
  });

  test('malformed headers and bodies on every route are answered 4xx (or as usual), never 5xx', async () => {
    const bad: { what: string; status: number }[] = [];
    for (const route of routes) {
      for (const [what, make] of BAD_REQUESTS) {
        const [head, body] = make(route);
        const status = await raw(server.port, head, body);
        // A connection dropped without an answer is a failure too: the client learns nothing.
        if (status === 0 || status >= 500) bad.push({ what: `${what} on ${route}`, status });
      }
    }
    assert.deepEqual(bad, []);
  });

  test('malformed tus requests with a good key are answered 4xx, never 5xx', async () => {
    const tus = ['Tus-Resumable: 1.0.0', `X-API-Key: ${server.key}`];
    const create = await fetch(`${server.url}/tus/`, {
      method: 'POST',
      headers: {
        'tus-resumable': '1.0.0',
        'x-api-key': server.key,
        'upload-length': '10',
        'upload-metadata': 'filename YS50eHQ=',
      },
    });
    assert.equal(create.status, 201);
    const upload = new URL(create.headers.get('location')!).pathname;
    const offsetHeaders = ['Content-Type: application/offset+octet-stream'];
    const cases: [string, string, string[], string?][] = [
      ['Upload-Length that is not a number', '/tus/', ['Upload-Length: ten']],
      ['a negative Upload-Length', '/tus/', ['Upload-Length: -5']],
      ['Upload-Length past every integer', '/tus/', ['Upload-Length: 99999999999999999999999']],
      ['Upload-Metadata that is not base64 pairs', '/tus/', ['Upload-Length: 5', 'Upload-Metadata: filename !!!,,,']],
      [
        'a directoryId that is not an ID',
        '/tus/',
        ['Upload-Length: 5', 'Upload-Metadata: filename YQ==,directoryId eHh4'],
      ],
      [
        'isPublic that is not a boolean',
        '/tus/',
        ['Upload-Length: 5', 'Upload-Metadata: filename YQ==,isPublic bWF5YmU='],
      ],
      ['both Upload-Length and Upload-Defer-Length', '/tus/', ['Upload-Length: 5', 'Upload-Defer-Length: 1']],
      ['Upload-Concat', '/tus/', ['Upload-Length: 5', 'Upload-Concat: final;/tus/a /tus/b']],
      ['a PATCH without Upload-Offset', upload, offsetHeaders, '12345'],
      ['a PATCH with a garbage Upload-Offset', upload, [...offsetHeaders, 'Upload-Offset: -3x'], '12345'],
      ['a PATCH of another Content-Type', upload, ['Content-Type: text/plain', 'Upload-Offset: 0'], '12345'],
      ['a PATCH past the upload', upload, [...offsetHeaders, 'Upload-Offset: 0'], '0123456789ABCDEF'],
      [
        'a PATCH with a garbage checksum',
        upload,
        [...offsetHeaders, 'Upload-Offset: 0', 'Upload-Checksum: sha256'],
        '12345',
      ],
      ['a PATCH to the collection', '/tus/', [...offsetHeaders, 'Upload-Offset: 0'], '12345'],
      ['a POST to an upload', upload, ['Upload-Length: 5']],
    ];
    const bad: { what: string; status: number }[] = [];
    for (const [what, path, headers, body] of cases) {
      const method = what.startsWith('a PATCH') ? 'PATCH' : 'POST';
      const status = await raw(server.port, request(method, path, [...tus, ...headers], body), body);
      if (status < 400 || status >= 500) bad.push({ what, status });
    }
    assert.deepEqual(bad, []);
  });

  test('after all of it the process still serves', async () => {
    assert.equal(server.child.exitCode, null, server.output());
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { org } }' }),
    });
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as any).data.viewer.org, 'default');
    assert.doesNotMatch(server.output(), /URIError|"msg":"unexpected error"/, 'no request failed unexpectedly');
  });
});
