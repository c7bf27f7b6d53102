import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { isAddressAllowed } from '../src/adapters/safe-fetch.js';
import { createTestApp, processed, type TestApp, forEachDialect } from './helpers.js';

forEachDialect(() => {
  test('address rules: public unicast only, unless allow-listed', () => {
    const refused = [
      '127.0.0.1',
      '127.1.2.3',
      '0.0.0.0',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fc00::1',
      'fd00:ec2::254',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '2002:7f00:1::1',
      '2001:0::1',
      'ff02::1',
    ];
    for (const address of refused) assert.equal(isAddressAllowed(address, []), false, address);
    for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(isAddressAllowed(address, []), true, address);
    }
    assert.equal(isAddressAllowed('127.0.0.1', ['127.0.0.1/32']), true);
    assert.equal(isAddressAllowed('::ffff:127.0.0.1', ['127.0.0.0/8']), true);
    assert.equal(isAddressAllowed('127.0.0.2', ['127.0.0.1/32']), false);
  });

  /** A source on loopback: the only address these tests ever connect to. */
  function sourceServer(): Promise<{ server: Server; base: string; hits: string[] }> {
    const hits: string[] = [];
    const server = createServer((req, res) => {
      hits.push(req.url!);
      const url = new URL(req.url!, 'http://x');
      const hop = /^\/redirect\/(\d+)$/.exec(url.pathname);
      if (hop) {
        const n = Number(hop[1]);
        res.writeHead(302, { location: n === 0 ? '/file.txt' : `/redirect/${n - 1}` }).end();
      } else if (url.pathname === '/file.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('imported words here\n');
      } else if (url.pathname === '/to-metadata') {
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      } else if (url.pathname === '/to-private') {
        res.writeHead(301, { location: 'http://10.0.0.1/secret' }).end();
      } else if (url.pathname === '/to-mapped') {
        res.writeHead(307, { location: 'http://[::ffff:a00:1]/file.txt' }).end(); // 10.0.0.1, IPv4-mapped
      } else if (url.pathname === '/big') {
        res.writeHead(200, { 'content-length': '5000' }).end(Buffer.alloc(5000, 1));
      } else if (url.pathname === '/big-chunked') {
        res.writeHead(200);
        for (let i = 0; i < 5; i++) res.write(Buffer.alloc(1000, 2));
        res.end();
      } else if (url.pathname === '/slow') {
        res.writeHead(200);
        res.write('a little');
        // …and then nothing: the idle timeout must end it.
      } else {
        res.writeHead(404).end('no');
      }
    });
    return new Promise((resolve) =>
      server.listen(0, '127.0.0.1', () =>
        resolve({ server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits }),
      ),
    );
  }

  async function importFrom(app: TestApp, url: string) {
    const result = await app.gql(
      'mutation($url: String!) { importAssetFromUrl(input: { url: $url }) { asset { id status } } }',
      { url },
    );
    if (result.errors) return { errors: result.errors };
    const { id, status } = result.data.importAssetFromUrl.asset;
    assert.equal(status, 'WAITING', 'answers at once');
    return processed(app, id, 'id status failureReason size checksum filename type wordCount metadata { sourceUrl }');
  }

  describe('imports from URLs: the SSRF matrix', () => {
    let source: Awaited<ReturnType<typeof sourceServer>>;
    let closed: TestApp;
    let open: TestApp;
    before(async () => {
      source = await sourceServer();
      closed = await createTestApp();
      open = await createTestApp({ IMPORT_ALLOW: '127.0.0.1/32', IMPORT_MAX_SIZE: '1000', IMPORT_IDLE_TIMEOUT: '1s' });
    });
    after(async () => {
      source.server.closeAllConnections();
      source.server.close();
      await closed.dispose();
      await open.dispose();
    });

    test('by default, loopback in every spelling is refused without a request', async () => {
      const port = new URL(source.base).port;
      const before = source.hits.length;
      for (const url of [
        `${source.base}/file.txt`,
        `http://localhost:${port}/file.txt`,
        `http://[::1]:${port}/file.txt`,
        `http://[::ffff:127.0.0.1]:${port}/file.txt`,
        `http://0x7f000001:${port}/file.txt`,
        `http://2130706433:${port}/file.txt`,
        'http://169.254.169.254/latest/meta-data/',
        'http://10.0.0.1/',
        'http://[fd00:ec2::254]/',
      ]) {
        const asset = await importFrom(closed, url);
        assert.equal(asset.status, 'FAILED', url);
        assert.match(asset.failureReason, /may not be fetched/, url);
      }
      assert.equal(source.hits.length, before, 'no request reached the source');
    });

    test('only http and https', async () => {
      for (const url of [
        'file:///etc/passwd',
        'ftp://example.com/x',
        'gopher://127.0.0.1/',
        'data:text/plain,hi',
        'not a url',
      ]) {
        const result = await importFrom(closed, url);
        assert.equal((result as any).errors?.[0].extensions.code, 'BAD_USER_INPUT', url);
      }
    });

    test('a URL ending in a malformed escape is BAD_USER_INPUT unless a filename is given', async () => {
      const refused = await open.gql(
        'mutation($url: String!) { importAssetFromUrl(input: { url: $url }) { asset { id } } }',
        { url: `${source.base}/file%E0%A4%A` },
      );
      assert.equal(refused.status, 200);
      assert.equal(refused.errors?.[0].extensions.code, 'BAD_USER_INPUT');
      assert.equal(refused.errors?.[0].extensions.field, 'url');
      const named = await open.gql(
        'mutation($url: String!) { importAssetFromUrl(input: { url: $url, filename: "f.txt" }) { asset { filename } } }',
        { url: `${source.base}/file%E0%A4%A` },
      );
      assert.equal(named.data.importAssetFromUrl.asset.filename, 'f.txt');
    });

    test('an allow-listed host is fetched, streamed in and processed', async () => {
      const asset = await importFrom(open, `${source.base}/file.txt`);
      assert.equal(asset.status, 'READY', asset.failureReason);
      assert.equal(asset.size, 20);
      assert.equal(asset.filename, 'file.txt');
      assert.equal(asset.type, 'DOCUMENT');
      assert.equal(asset.wordCount, 3);
      assert.equal(asset.metadata.sourceUrl, `${source.base}/file.txt`);
    });

    test('every redirect hop is checked, and at most 3 are followed', async () => {
      assert.equal((await importFrom(open, `${source.base}/redirect/2`)).status, 'READY', 'three hops');
      const tooMany = await importFrom(open, `${source.base}/redirect/3`);
      assert.equal(tooMany.status, 'FAILED');
      assert.match(tooMany.failureReason, /more than 3 redirects/);
      for (const path of ['/to-metadata', '/to-private', '/to-mapped']) {
        const asset = await importFrom(open, source.base + path);
        assert.equal(asset.status, 'FAILED', path);
        assert.match(asset.failureReason, /may not be fetched/, path);
      }
    });

    test('errors, size caps and a silent source end FAILED', async () => {
      const missing = await importFrom(open, `${source.base}/missing`);
      assert.match(missing.failureReason, /HTTP 404/);
      const declared = await importFrom(open, `${source.base}/big`);
      assert.match(declared.failureReason, /1000 bytes/);
      const streamed = await importFrom(open, `${source.base}/big-chunked`);
      assert.match(streamed.failureReason, /1000 bytes/);
      const slow = await importFrom(open, `${source.base}/slow`);
      assert.equal(slow.status, 'FAILED');
      assert.equal(
        (
          await open.db
            .selectFrom('assets')
            .select('id')
            .where('status', '=', 'FAILED')
            .where('blob_key', 'is not', null)
            .execute()
        ).length,
        0,
        'a failed import keeps no bytes',
      );
    });
  });
});
