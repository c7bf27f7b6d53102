import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createTestApp, listen, type TestApp } from './helpers.js';

/**
 * Sends `first`, then, once it is answered, a second request on the same connection;
 * resolves with the status lines the server sent before the connection ended.
 */
function twoOnOneConnection(port: number, first: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let sentSecond = false;
    const statuses = () => received.match(/HTTP\/1\.1 \d{3}/g) ?? [];
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (!sentSecond && statuses().length === 1) {
        sentSecond = true;
        socket.write('GET /healthz HTTP/1.1\r\nHost: assets.test\r\n\r\n');
      }
      if (statuses().length === 2) socket.end();
    });
    socket.on('error', (error) => (error as NodeJS.ErrnoException).code === 'ECONNRESET' || reject(error));
    socket.on('close', () => resolve(statuses().map((line) => line.slice(9))));
    socket.write(first);
  });
}

describe('a body no route reads does not cost the connection', () => {
  let app: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  let port: number;
  before(async () => {
    app = await createTestApp({}, {}, 'sqlite');
    server = await listen(app.handler);
    port = Number(new URL(server.url).port);
  });
  after(async () => {
    await server.close();
    await app.dispose();
  });

  const body = '{"unexpected":"body"}';
  const cases: [string, string, string][] = [
    ['GET of a malformed asset id (refused before the body is read)', 'GET /download/abc', '400'],
    ['GET of an unknown asset', 'GET /download/QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw', '404'],
    ['DELETE of an unknown upload', 'DELETE /tus/00000000-0000-4000-8000-000000000000', '401'],
    ['OPTIONS of a route that answers no OPTIONS', 'OPTIONS /download/abc', '405'],
    ['GET of the health check', 'GET /healthz', '200'],
  ];
  for (const [what, line, status] of cases) {
    test(`${what} with a body: answered ${status}, and the next request on the connection is answered`, async () => {
      const sized = `${line} HTTP/1.1\r\nHost: assets.test\r\nTus-Resumable: 1.0.0\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      assert.deepEqual(await twoOnOneConnection(port, sized), [status, '200']);
      const chunked = `${line} HTTP/1.1\r\nHost: assets.test\r\nTus-Resumable: 1.0.0\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
      assert.deepEqual(await twoOnOneConnection(port, chunked), [status, '200']);
    });
  }

  test('a large unread body is not read: the answer says Connection: close and the connection ends', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString('latin1')));
      socket.on('error', (error) => (error as NodeJS.ErrnoException).code === 'ECONNRESET' || reject(error));
      socket.on('close', () => resolve(received));
      socket.write(`GET /download/abc HTTP/1.1\r\nHost: assets.test\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`);
      socket.write(Buffer.alloc(1024));
    });
    assert.match(answer, /^HTTP\/1\.1 400/);
    assert.match(answer, /^Connection: close\r$/im);
  });

  test('a client still sending after the answer that closes its connection is not reset: the answer is not lost', async () => {
    // Without the lingering close the server destroys the socket as soon as its answer is out;
    // the client's next bytes then meet a reset (EPIPE or ECONNRESET), which on a slower link
    // also throws away the answer before the client has read it.
    const outcome = await new Promise<{ answer: string; error: string | null }>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let received = '';
      let error: string | null = null;
      let more = false;
      socket.on('data', (chunk) => {
        received += chunk.toString('latin1');
        if (more || !received.includes('\r\n\r\n')) return;
        more = true;
        // The answer is here; a client that does not read while it sends would go on: 1 MiB more.
        let left = 16;
        const next = () =>
          left-- > 0 ? socket.write(Buffer.alloc(64 * 1024), (e) => (e ? undefined : next())) : socket.end();
        next();
      });
      socket.on('error', (e) => (error = (e as NodeJS.ErrnoException).code ?? String(e)));
      socket.on('close', () => resolve({ answer: received, error }));
      socket.write(`GET /download/abc HTTP/1.1\r\nHost: assets.test\r\nContent-Length: ${20 * 1024 * 1024}\r\n\r\n`);
      socket.write(Buffer.alloc(256 * 1024));
    });
    assert.match(outcome.answer, /^HTTP\/1\.1 400/);
    assert.match(outcome.answer, /^Connection: close\r$/im);
    assert.equal(outcome.error, null, 'the connection ended without a reset');
  });

  for (const [line, status] of [
    ['GET /healthz', '200'],
    ['GET /readyz', '200'],
    ['GET /metrics', '404'], // not served by this app: its 404
    ['GET /no-such-route', '404'],
    ['DELETE /graphql', '405'],
  ]) {
    test(`${line} with 20 MB declared: answered ${status} with Connection: close, the body not read`, async () => {
      const total = 20 * 1024 * 1024;
      const { answer, written } = await new Promise<{ answer: string; written: number }>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let received = '';
        let written = 0;
        socket.on('data', (chunk) => (received += chunk.toString('latin1')));
        socket.on(
          'error',
          (error) => ['ECONNRESET', 'EPIPE'].includes((error as NodeJS.ErrnoException).code!) || reject(error),
        );
        socket.on('close', () => resolve({ answer: received, written }));
        socket.write(`${line} HTTP/1.1\r\nHost: assets.test\r\nContent-Length: ${total}\r\n\r\n`);
        const chunk = Buffer.alloc(64 * 1024);
        const next = () => {
          if (socket.destroyed) return;
          if (written >= total) return void socket.end();
          written += chunk.length;
          socket.write(chunk, (error) => (error ? undefined : next()));
        };
        next();
      });
      assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status}`));
      assert.match(answer, /^Connection: close\r$/im);
      assert.ok(written < total, `the server closed before the body was sent (${written} of ${total} bytes written)`);
    });
  }
});
