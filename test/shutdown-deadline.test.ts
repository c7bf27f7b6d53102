import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { startServer, tempDir, waitFor } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TUS = { 'tus-resumable': '1.0.0' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A request whose body is half sent and never finished: the socket stays open. */
function halfSent(url: string, method: string, headers: Record<string, string>, total: number) {
  const req = request(url, { method, headers: { ...headers, 'content-length': String(total) } });
  req.on('error', () => undefined); // cut by the server at the deadline: expected
  req.on('response', (res) => res.resume());
  req.write(Buffer.alloc(total / 2, 7));
  return req;
}

describe('shutdown: SHUTDOWN_TIMEOUT is a hard deadline', () => {
  test('SIGTERM with a hanging PUT, a tus PATCH, an SSE stream and a webhook receiver that never answers: 503s while draining, exit 0 by the deadline, nothing half-stored, the delivery sent again', async () => {
    const data = tempDir('assetgate-deadline-');
    let answer = false;
    let open = 0;
    const ids: string[] = [];
    const receiver = createServer((req, res) => {
      open++;
      req.socket.once('close', () => open--);
      ids.push(String(req.headers['webhook-id']));
      req.resume();
      if (answer) res.end();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const timeoutS = 3;
    const env = {
      RATE_LIMIT: '0',
      SHUTDOWN_TIMEOUT: `${timeoutS}s`,
      WEBHOOK_TIMEOUT: '120s',
      WEBHOOK_ALLOW: '127.0.0.1/32',
    };
    let server = await startServer(data.dir, { env });
    const key = server.key;
    const gql = async (query: string, headers: Record<string, string> = {}) => {
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query }),
      });
      return response;
    };
    const data_ = async (query: string) => ((await (await gql(query)).json()) as any).data;
    try {
      await data_(
        `mutation { createWebhook(input: { url: "${hookUrl}", events: ["asset.created"] }) { webhook { id } } }`,
      );
      const done = await data_('mutation { createUploadUrl(input: { filename: "a.txt" }) { uploadUrl } }');
      const put = await fetch(`${server.url}${new URL(done.createUploadUrl.uploadUrl).pathname}`, {
        method: 'PUT',
        body: 'hello',
      });
      assert.equal(put.status, 200);
      await waitFor(
        async () => ids.length,
        (n) => n > 0,
      );
      assert.equal(ids.length, 1, 'the webhook attempt reached the receiver, which never answers');

      // A PUT and a tus PATCH, each half sent and left open.
      const size = 400_000;
      const made = async () =>
        (
          await data_(
            `mutation { createUploadUrl(input: { filename: "half.bin", size: ${size} }) { uploadUrl asset { id } } }`,
          )
        ).createUploadUrl;
      const plain = await made();
      const resumable = await made();
      const putPath = new URL(plain.uploadUrl).pathname;
      const tusPath = new URL(resumable.uploadUrl).pathname;
      const hangingPut = halfSent(`${server.url}${putPath}`, 'PUT', {}, size);
      const hangingPatch = halfSent(
        `${server.url}${tusPath}`,
        'PATCH',
        { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
        size,
      );

      // An open subscription.
      const sse = await gql(`subscription { assetUpdated(id: "${plain.asset.id}") { status } }`, {
        accept: 'text/event-stream',
      });
      assert.equal(sse.status, 200);
      const sseEnded = (async () => {
        try {
          for await (const _ of sse.body as unknown as AsyncIterable<Uint8Array>);
        } catch {
          // a stream cut by the server ends here too: either way it ended
        }
        return true;
      })();
      // The half-sent bodies reach their handlers and the stream subscribes: nothing to wait on shows either.
      await sleep(300);

      const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
      const signalled = Date.now();
      server.child.kill('SIGTERM');
      let exitedAt = 0;
      void exited.then(() => (exitedAt = Date.now()));
      await waitFor(
        async () => server.output(),
        (out) => out.includes('shutting down'),
      );

      // The listener still accepts: the balancer sees 503s, not refused connections.
      const readyz = await fetch(`${server.url}/readyz`);
      assert.equal(readyz.status, 503);
      assert.equal(((await readyz.json()) as any).shuttingDown, true);
      const refused = await gql('{ viewer { org } }');
      assert.equal(refused.status, 503, 'no new work is taken');
      assert.equal(((await refused.json()) as any).error.code, 'SERVICE_UNAVAILABLE');
      assert.equal(await sseEnded, true, 'the event stream ended');

      const code = await Promise.race([exited, sleep((timeoutS + 4) * 1000).then(() => 'still running')]);
      assert.equal(code, 0, `exit by SHUTDOWN_TIMEOUT + 4 s:\n${server.output()}`);
      const took = exitedAt - signalled;
      assert.equal(open, 0, "the receiver's socket was closed by the time the process exited");
      hangingPut.destroy();
      hangingPatch.destroy();

      // Nothing half-stored: no blob without its row (no grace), no row pointing at missing bytes.
      const fsck = await promisify(execFile)(
        process.execPath,
        [path.join(ROOT, 'dist/cli.js'), 'fsck', '--checksums', '--json'],
        { env: { ...process.env, DATA_DIR: data.dir, FSCK_GRACE: '0' } },
      ).catch((error) => error as { stdout: string; stderr: string; code: number });
      assert.equal((fsck as { code?: number }).code ?? 0, 0, `fsck: ${fsck.stdout}${fsck.stderr}`);

      answer = true;
      server = await startServer(data.dir, { env });
      // The cut uploads wait for their bytes again: the PUT from the start, the tus upload from what it kept.
      const again = await data_(
        `{ a: asset(id: "${plain.asset.id}") { status } b: asset(id: "${resumable.asset.id}") { status } }`,
      );
      assert.deepEqual([again.a.status, again.b.status], ['WAITING', 'WAITING']);
      const head = await fetch(`${server.url}${tusPath}`, { method: 'HEAD', headers: TUS });
      assert.equal(head.status, 200);
      const offset = Number(head.headers.get('upload-offset'));
      const rest = await fetch(`${server.url}${tusPath}`, {
        method: 'PATCH',
        headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) },
        body: Buffer.alloc(size - offset, 7),
      });
      assert.equal(rest.status, 204, 'the tus upload resumes where the cut left it');

      await waitFor(
        async () => ids.length,
        (n) => n >= 2,
      );
      assert.deepEqual(ids.slice(0, 2), [ids[0], ids[0]], 'the same delivery, sent again by the next process');
      console.log(`SIGTERM to exit: ${took} ms (SHUTDOWN_TIMEOUT ${timeoutS} s)`);
    } finally {
      server.child.kill('SIGKILL');
      receiver.closeAllConnections();
      receiver.close();
      data.remove();
    }
  });
});
