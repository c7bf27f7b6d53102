import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createTestApp, listen, type TestApp } from './helpers.js';

let app: TestApp;
let server: Awaited<ReturnType<typeof listen>>;

before(async () => {
  app = await createTestApp();
  server = await listen(app.handler);
});
after(async () => {
  await server.close();
  await app.dispose();
});

/** GET /graphql as a browser opening GraphiQL does, over a real socket; the body as sent (not decoded). */
function open(acceptEncoding?: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'text/html,application/xhtml+xml' };
    if (acceptEncoding) headers['accept-encoding'] = acceptEncoding;
    request(`${server.url}/graphql`, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

test('GraphiQL goes gzipped to a browser that takes gzip, with its policy, and whole to one that does not', async () => {
  const plain = await open();
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['content-encoding'], undefined);
  const html = plain.body.toString('utf8');
  assert.match(html, /assetgate GraphiQL[\s\S]*YogaGraphiQL/);
  assert.match(String(plain.headers['content-security-policy']), /script-src 'sha256-/);

  const zipped = await open('gzip, deflate, br');
  assert.equal(zipped.status, 200);
  assert.equal(zipped.headers['content-encoding'], 'gzip');
  assert.equal(zipped.headers['vary'], 'Accept-Encoding');
  assert.equal(Number(zipped.headers['content-length']), zipped.body.length);
  assert.equal(zipped.headers['content-security-policy'], plain.headers['content-security-policy']);
  // The same page, in a fraction of the bytes.
  assert.equal(gunzipSync(zipped.body).toString('utf8'), html);
  assert.ok(zipped.body.length < html.length / 2, `${zipped.body.length} bytes gzipped of ${html.length}`);
});
