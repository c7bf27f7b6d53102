import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startServer, tempDir } from './helpers.js';

type Server = Awaited<ReturnType<typeof startServer>>;

/** `count` GraphQL requests, 8 at a time, each with the request id `<prefix><n>`; their statuses. */
async function requests(server: Server, prefix: string, count: number): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        const n = next++;
        const response = await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${server.key}`,
            'content-type': 'application/json',
            'x-request-id': `${prefix}${n}`,
          },
          body: JSON.stringify({ query: '{ __typename }' }),
        });
        await response.text();
        statuses.push(response.status);
      }
    }),
  );
  return statuses;
}

/** The request ids of the request log lines the process wrote. */
function loggedIds(output: string, prefix: string): Set<string> {
  const ids = new Set<string>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; reqId?: string };
    if (entry.msg === 'request' && entry.reqId?.startsWith(prefix)) ids.add(entry.reqId);
  }
  return ids;
}

/** SIGTERM while stdout is still not read; then stdout is read again. Resolves the exit code. */
async function terminate(server: Server): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
  server.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300)); // the shutdown runs while stdout is still not read: the case under test
  server.child.stdout!.resume();
  return exited;
}

describe('the request log, written asynchronously', () => {
  test('SIGTERM while stdout is not being read: every request line, the last included, is written before the exit', async () => {
    const data = tempDir('assetgate-log-');
    const server = await startServer(data.dir, { env: { RATE_LIMIT: '0' } });
    try {
      // Nobody reads stdout meanwhile: the pipe (64 KiB) fills and the lines wait in the process.
      server.child.stdout!.pause();
      const statuses = await requests(server, 'term-', 1200);
      assert.ok(
        statuses.every((status) => status === 200),
        'the gateway answers while its stdout is full',
      );
      assert.equal(await terminate(server), 0, server.output());
      const ids = loggedIds(server.output(), 'term-');
      assert.ok(ids.has('term-1199'), 'the last request has its line');
      assert.equal(ids.size, 1200, 'no request lost its line');
      assert.match(server.output(), /"msg":"stopped"/);
    } finally {
      server.child.kill('SIGKILL');
      data.remove();
    }
  });

  test('LOG_BUFFER bounds what waits for a stuck stdout: past it lines are dropped, requests are still answered', async () => {
    const data = tempDir('assetgate-log-');
    const server = await startServer(data.dir, { env: { RATE_LIMIT: '0', LOG_BUFFER: '16KiB' } });
    try {
      server.child.stdout!.pause();
      const statuses = await requests(server, 'full-', 1200);
      assert.ok(statuses.every((status) => status === 200));
      assert.equal(await terminate(server), 0, server.output());
      const ids = loggedIds(server.output(), 'full-');
      // About 360 bytes a line: what stdout's socket took and the 16 KiB that waited came out, not 420 KiB.
      assert.ok(ids.size > 0, 'lines were written until the buffer was full');
      assert.ok(ids.size < 1200, `${ids.size} of 1200 lines written: the rest were dropped, not held`);
    } finally {
      server.child.kill('SIGKILL');
      data.remove();
    }
  });
});
