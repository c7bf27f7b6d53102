import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../src/cli.js';
import sharp from 'sharp';
import { createTestApp, freePort, listen, pdf, png, tempDir, type TestApp } from './helpers.js';
import { makeVideo } from './preview-fixtures.js';
import { pdfWithText, wav } from './samples.js';

const BIN = path.join(fileURLToPath(new URL('..', import.meta.url)), 'bin/assetgate.js');
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  bytes: Buffer;
}

/** Runs the built command as a process, in `cwd`, and collects what it printed. */
function cli(args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env.PATH!, ...env }, cwd, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? ((error as { code?: number }).code ?? 1) : 0,
          stdout: stdout.toString(),
          stderr: stderr.toString(),
          bytes: stdout,
        }),
    );
  });
}

describe('the CLI for files (real process against a running server)', () => {
  let app: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  const work = tempDir('assetgate-cli-files-');
  let env: Record<string, string>;
  /** Method and path of every request the server received. */
  const seen: string[] = [];
  const run = (...args: string[]) => cli(args, env, work.dir);

  before(async () => {
    // The URLs the server hands out (downloads, tus Locations) must reach it.
    const port = await freePort();
    app = await createTestApp({ PUBLIC_URL: `http://127.0.0.1:${port}` });
    server = await listen(
      (req, res) => {
        seen.push(`${req.method} ${req.url}`);
        return app.handler(req, res);
      },
      undefined,
      port,
    );
    env = { ASSETGATE_URL: server.url, ASSETGATE_KEY: app.key };
    writeFileSync(path.join(work.dir, 'photo.png'), png(40, 30));
    writeFileSync(path.join(work.dir, 'paper.pdf'), pdf());
  });
  after(async () => {
    await server.close();
    await app.dispose();
    work.remove();
  });

  test('upload prints one asset per file; ls filters by type, tag and search', async () => {
    const up = await run('upload', 'photo.png', 'paper.pdf', '--tag', 'cli', '--tag', 'first', '--json');
    assert.equal(up.code, 0, up.stderr);
    const assets = up.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.deepEqual(
      assets.map((a) => [a.filename, a.tags]),
      [
        ['photo.png', ['cli', 'first']],
        ['paper.pdf', ['cli', 'first']],
      ],
    );
    const [photo, paper] = assets;
    assert.equal(photo.checksum, `sha256:${sha256(png(40, 30))}`);

    const images = await run('ls', '--type', 'image', '--tag', 'cli', '--json');
    assert.equal(images.code, 0, images.stderr);
    assert.deepEqual(
      images.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).id),
      [photo.id],
    );
    const searched = await run('ls', '--search', 'paper');
    assert.equal(searched.code, 0, searched.stderr);
    assert.match(searched.stdout, new RegExp(`^${paper.id}  \\w+  PDF  .*paper\\.pdf$`, 'm'));
    assert.doesNotMatch(searched.stdout, new RegExp(photo.id));

    const badType = await run('ls', '--type', 'SPREADSHEET');
    assert.equal(badType.code, 2);
    assert.match(badType.stderr, /--type SPREADSHEET is not one of/);
  });

  test('ls pages through every asset, past the largest page the server gives', async () => {
    for (let i = 0; i < 105; i++) {
      const { errors } = await app.gql(
        'mutation ($input: CreateAssetInput!) { createAsset(input: $input) { asset { id } } }',
        { input: { type: 'LINK', title: `link ${i}`, externalUrl: `https://example.com/${i}`, tags: ['many'] } },
      );
      assert.equal(errors, undefined);
    }
    seen.length = 0;
    const listed = await run('ls', '--tag', 'many', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    const titles = listed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).title);
    assert.equal(new Set(titles).size, 105);
    assert.equal(seen.filter((r) => r === 'POST /graphql').length, 2, 'two pages of at most 100');
  });

  test('a large file goes up resumably in chunks, and get brings the same bytes back', async () => {
    const big = randomBytes(9 * 1024 * 1024);
    writeFileSync(path.join(work.dir, 'big.bin'), big);
    seen.length = 0;
    const up = await run('upload', 'big.bin', '--json');
    assert.equal(up.code, 0, up.stderr);
    const asset = JSON.parse(up.stdout);
    assert.equal(asset.size, big.length);
    assert.equal(asset.checksum, `sha256:${sha256(big)}`);
    assert.equal(seen.filter((r) => r.startsWith('PATCH /tus/')).length, 2, '8 MiB and then 1 MiB');

    const got = await run('get', asset.id, '-o', 'back.bin');
    assert.equal(got.code, 0, got.stderr);
    assert.equal(sha256(readFileSync(path.join(work.dir, 'back.bin'))), sha256(big));
  });

  test('ls gives sizes in binary units, as the asset page does', async () => {
    const listed = await run('ls');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /  9\.0 MiB  big\.bin$/m);
    for (const line of listed.stdout.trim().split('\n')) {
      assert.match(line.split('  ')[3], /^(-|\d+ B|\d+\.\d (KiB|MiB|GiB))$/, line);
    }
  });

  test('get writes to the asset filename, never over a file that exists, or to stdout with -o -', async () => {
    const up = await run('upload', 'paper.pdf', '--title', 'Paper', '--json');
    const { id } = JSON.parse(up.stdout);
    const sub = path.join(work.dir, 'sub');
    (await import('node:fs')).mkdirSync(sub);

    const first = await cli(['get', id], env, sub);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(readFileSync(path.join(sub, 'paper.pdf')), pdf());

    writeFileSync(path.join(sub, 'paper.pdf'), 'mine');
    const again = await cli(['get', id], env, sub);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /EEXIST: paper\.pdf exists/);
    assert.equal(readFileSync(path.join(sub, 'paper.pdf'), 'utf8'), 'mine');
    assert.deepEqual((await import('node:fs')).readdirSync(sub), ['paper.pdf'], 'no partial file is left behind');

    const piped = await run('get', id, '-o', '-');
    assert.equal(piped.code, 0, piped.stderr);
    assert.deepEqual(piped.bytes, pdf());
  });

  test('preview saves a PDF page, a video poster and a waveform; a file with no picture fails with its code', async () => {
    const dir = path.join(work.dir, 'previews');
    (await import('node:fs')).mkdirSync(dir);
    writeFileSync(path.join(dir, 'report.pdf'), pdfWithText(2));
    writeFileSync(path.join(dir, 'clip.mp4'), makeVideo(2));
    writeFileSync(path.join(dir, 'tone.wav'), wav(1, 8000, 0.8));
    writeFileSync(path.join(dir, 'table.csv'), 'a,b\n1,2\n');
    const up = await cli(['upload', 'report.pdf', 'clip.mp4', 'tone.wav', 'table.csv', '--json'], env, dir);
    assert.equal(up.code, 0, up.stderr);
    const [report, clip, tone, table] = up.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).id as string);
    await app.jobs!.idle();
    const saved = async (args: string[], file: string) => {
      const made = await cli(['preview', ...args], env, dir);
      assert.equal(made.code, 0, made.stderr);
      return sharp(readFileSync(path.join(dir, file))).metadata();
    };
    const page = await saved([report, '--page', '2', '--width', '256'], 'report-p2.webp');
    assert.deepEqual([page.format, page.width], ['webp', 256]);
    const poster = await saved([clip, '--width', '128', '--format', 'png'], 'clip-poster.png');
    assert.deepEqual([poster.format, poster.width], ['png', 128]);
    const waveform = await saved([tone, '--width', '256', '--format', 'jpeg'], 'tone-waveform.jpg');
    assert.deepEqual([waveform.format, waveform.width, waveform.height], ['jpeg', 256, 64]);
    const piped = await cli(['preview', clip, '--time', '1.5', '--width', '64', '-o', '-'], env, dir);
    assert.equal((await sharp(piped.bytes).metadata()).width, 64);
    const none = await cli(['preview', table], env, dir);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /BAD_USER_INPUT/);
    const pastEnd = await cli(['preview', report, '--page', '3'], env, dir);
    assert.equal(pastEnd.code, 1);
    assert.match(pastEnd.stderr, /BAD_USER_INPUT: "page" is at most 2/);
    const usage = await cli(['preview', clip, '--format', 'gif'], env, dir);
    assert.equal(usage.code, 2);
  });

  test('url prints a signed URL that needs no key and counts its fetches', async () => {
    const { id } = JSON.parse((await run('upload', 'photo.png', '--json')).stdout);
    const made = await run('url', id, '--expires', '1h', '--max-fetches', '1');
    assert.equal(made.code, 0, made.stderr);
    const url = made.stdout.trim();
    assert.ok(url.startsWith(`${server.url}/dl/`), url);
    const once = await fetch(url);
    assert.equal(once.status, 200);
    assert.deepEqual(Buffer.from(await once.arrayBuffer()), png(40, 30));
    const twice = await fetch(url);
    assert.ok([403, 404, 410].includes(twice.status), `a used-up URL answered ${twice.status}`);
    await twice.arrayBuffer();

    const bad = await run('url', id, '--expires', 'soon');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"soon" is not a duration/);
  });

  test('rm deletes what it can, says what it could not with the code, and exits 1', async () => {
    const { id } = JSON.parse((await run('upload', 'photo.png', '--json')).stdout);
    const missing = 'QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw';
    const removed = await run('rm', id, missing);
    assert.equal(removed.code, 1);
    assert.equal(removed.stdout.trim(), `deleted ${id}`);
    assert.match(removed.stderr, new RegExp(`${missing}: NOT_FOUND: `));
    const gone = await run('get', id);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /NOT_FOUND/);
  });

  test('keys and servers: flags stand in for the environment, and failures carry a code', async () => {
    const viaFlags = await cli(['ls', '--url', server.url, '--key', app.key, '--type', 'PDF'], {}, work.dir);
    assert.equal(viaFlags.code, 0, viaFlags.stderr);
    assert.match(viaFlags.stdout, /paper\.pdf/);

    const noKey = await cli(['ls'], { ASSETGATE_URL: server.url }, work.dir);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /ASSETGATE_KEY/);

    const wrongKey = await cli(['ls'], { ...env, ASSETGATE_KEY: 'sk_live_acme_' + '0'.repeat(48) }, work.dir);
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /^assetgate: UNAUTHENTICATED: /m);

    const nobody = `http://127.0.0.1:${await freePort()}`;
    const down = await cli(['ls'], { ...env, ASSETGATE_URL: nobody }, work.dir);
    assert.equal(down.code, 1);
    assert.match(down.stderr, new RegExp(`UNREACHABLE: cannot reach ${nobody}`));

    const failedUpload = await run('upload', 'no-such-file.png', 'photo.png');
    assert.equal(failedUpload.code, 1);
    assert.match(failedUpload.stderr, /no-such-file\.png: ENOENT/);
    assert.match(failedUpload.stdout, /photo\.png {2}(PROCESSING|READY)/, 'the other file still went up');
  });

  test('every command has --help, and a wrong option is a usage error', async () => {
    for (const command of ['upload', 'ls', 'get', 'preview', 'rm', 'url', 'keys', 'fsck']) {
      const help = await run(command, '--help');
      assert.equal(help.code, 0, `${command}: ${help.stderr}`);
      assert.match(help.stdout, new RegExp(`assetgate ${command}`));
    }
    const wrong = await run('ls', '--colour');
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /Unknown option '--colour'/);
    const nothing = await run();
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /assetgate upload FILE/);
  });

  test('on a terminal, upload draws its progress up to 100%', async () => {
    const big = path.join(work.dir, 'progress.bin');
    writeFileSync(big, randomBytes(10 * 1024 * 1024));
    const lines: string[] = [];
    const out: string[] = [];
    const code = await runCli(
      ['upload', big, '--url', server.url, '--key', app.key],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => assert.fail(line),
        progress: (line) => lines.push(line),
      },
    );
    assert.equal(code, 0);
    const shares = lines.map((line) => Number(/(\d+)% /.exec(line)![1]));
    assert.ok(shares.length >= 3, `progress lines: ${lines.join(' | ')}`);
    assert.ok(shares.includes(80), `the 8 MiB chunk shows as 80%: ${shares}`);
    assert.equal(shares.at(-1), 100);
    assert.deepEqual(
      [...shares].sort((a, b) => a - b),
      shares,
      'never goes back',
    );
    assert.match(out[0], /progress\.bin/);
    assert.ok(existsSync(big));
  });
});
