import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, openAsBlob } from 'node:fs';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createClient } from '../src/client/index.js';
import { pdf, png, startServer, tempDir } from './helpers.js';

const LARGE = 512 * 1024 ** 2;

/** Peak resident memory of a process, from /proc (VmHWM), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function sha256(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

describe('end to end: the built server, driven by the typed client', () => {
  const data = tempDir('assetgate-e2e-');
  let server: ChildProcess;
  let url: string;
  let key = '';

  before(async () => {
    const started = await startServer(data.dir, { env: { MAX_FILE_SIZE: '1GiB' } });
    ({ child: server, url, key } = started);
    // First start: the server made org "default" and one key, and printed it once.
    assert.ok(key, started.output());
  });

  after(() => {
    server.kill('SIGTERM');
    data.remove();
  });

  test('upload several files, page through them, download byte for byte, update and delete', async () => {
    const client = createClient({ url, apiKey: key });
    const image = png(8, 5);
    const { assets, failures } = await client.uploadMany(
      [
        { blob: new Blob([new Uint8Array(image)]), filename: 'a.png' },
        { blob: new Blob([new Uint8Array(pdf())]), filename: 'b.pdf' },
        { blob: new Blob(['hello, world']), filename: 'c.txt' },
      ],
      { tags: ['e2e'] },
    );
    assert.deepEqual(failures, []);
    assert.deepEqual(
      assets.map((a) => a.type),
      ['IMAGE', 'PDF', 'DOCUMENT'],
    );
    assert.deepEqual([assets[0].width, assets[0].height], [8, 5]);

    const listed = [];
    for await (const asset of client.list({ filter: { tags: ['e2e'] }, pageSize: 2 })) listed.push(asset.id);
    assert.deepEqual(listed.sort(), assets.map((a) => a.id).sort());

    const response = await client.download(assets[0]);
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), image);

    const updated = await client.update({ id: assets[2].id, title: 'Greeting', tags: ['kept'] });
    assert.equal(updated.title, 'Greeting');
    assert.deepEqual((await client.get(assets[2].id))?.tags, ['kept']);

    const twoStep = await client.uploadViaUrl({ blob: new Blob(['two steps']), filename: 'two.txt', size: 9 });
    assert.equal(twoStep.status, 'PROCESSING');
    assert.equal((await client.waitUntilProcessed(twoStep.id)).wordCount, 2);
    const { url: signed } = await client.downloadUrl(twoStep.id, { maxFetches: 1 });
    assert.equal(await (await fetch(signed)).text(), 'two steps');
    assert.equal((await fetch(signed)).status, 404, 'used up');

    // The same bytes again: with reuseStored, made on the stored copy and nothing sent.
    const checksum = `sha256:${createHash('sha256').update('two steps').digest('hex')}`;
    const reused = await client.uploadViaUrl({
      blob: new Blob(['never sent']),
      filename: 'again.txt',
      size: 9,
      checksum,
      reuseStored: true,
    });
    assert.notEqual(reused.id, twoStep.id);
    assert.equal(reused.checksum, checksum);
    assert.equal(await (await client.download(await client.waitUntilProcessed(reused.id))).text(), 'two steps');

    const replaced = await client.replaceViaUrl(twoStep.id, { blob: new Blob(['three steps']), filename: 'three.txt' });
    assert.equal(replaced.id, twoStep.id);
    const after = await client.waitUntilProcessed(twoStep.id);
    assert.equal(after.filename, 'three.txt');
    assert.equal(await (await client.download(after)).text(), 'three steps');

    assert.equal(await client.delete(assets[1].id), assets[1].id);
    await assert.rejects(client.get(assets[1].id), (error: any) => error.code === 'NOT_FOUND');
  });

  test(`a ${LARGE / 1024 ** 2} MiB file streams through with bounded server memory`, async () => {
    const file = path.join(data.dir, 'large.bin');
    await writeFile(file, 'assetgate large file test\n');
    await truncate(file, LARGE);
    const client = createClient({ url, apiKey: key });
    const before = await peakRss(server.pid!);
    const asset = await client.upload({ blob: await openAsBlob(file), filename: 'large.bin' });
    const growth = (await peakRss(server.pid!)) - before;
    assert.equal(asset.size, LARGE);
    assert.equal(asset.checksum, await sha256(createReadStream(file)));
    assert.ok(growth < 64 * 1024 ** 2, `server peak RSS grew by ${(growth / 1024 ** 2).toFixed(1)} MiB`);
    const download = await client.download(asset);
    assert.equal(await sha256(Readable.fromWeb(download.body as never)), asset.checksum);
  });
});
