/**
 * `npm run bench [-- --quick]`: assetgate (production build, real port, embedded
 * defaults) against raw node:http baselines, run side by side in one process tree,
 * interleaved A, B, A, B…, medians of 3 runs. Every figure is reported as a ratio
 * to its baseline. Writes a markdown table to stdout and JSON to bench/results/.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import SQLite from 'better-sqlite3';
import sharp from 'sharp';
import {
  cpuMicros,
  drain,
  median,
  memory,
  MiB,
  multipartBody,
  type Proc,
  percentile,
  pool,
  resetPeak,
  ROOT,
  serverArgs,
  flushDisk,
  send,
  start,
  startBaseline,
  timed,
  distinctPngs,
  uploadAssetBody,
} from './lib.js';
import { previewRows } from './previews.js';
import { processingRows } from './processing.js';
import { scaleOut } from './scale-out.js';

const quick = process.argv.includes('--quick');
/**
 * `--only U1,U2-ready` (or `--only=…`): only the sections that make those rows, by the id
 * each row's name starts with (U1, S1, S2, T1, U2, U2-ready, U3, L1, O1, L2, D1, R1, R2, R3,
 * P1, V1, M1, J1, and the scale-out rows'). Any row after U3 but J1 runs everything from L1 on (they
 * share the seeded list, the large file of U1 and the server's memory figures), and U1 with them.
 */
const onlyAt = process.argv.findIndex((arg) => arg === '--only' || arg.startsWith('--only='));
const only =
  onlyAt === -1
    ? null
    : new Set(
        (process.argv[onlyAt].includes('=') ? process.argv[onlyAt].split('=')[1] : (process.argv[onlyAt + 1] ?? ''))
          .split(',')
          .map((id) => id.trim())
          .filter(Boolean),
      );
if (only?.size === 0) throw new Error('--only takes row ids separated by commas, e.g. --only U1,U2,U2-ready');
const want = (...ids: string[]) => !only || ids.some((id) => only.has(id));
const EARLY = new Set(['U1', 'S1', 'S2', 'T1', 'U2', 'U2-ready', 'U3', 'J1']);
/** Rows after U3 asked for. */
const later = !only || [...only].some((id) => !EARLY.has(id));
const SIZE = quick
  ? { u1: 128 * MiB, u2: 200, u3: 3, assets: 20_000, deep: 18_000, d1: 128 * MiB, seconds: 3, latencyRuns: 50 }
  : { u1: 1024 * MiB, u2: 1000, u3: 10, assets: 100_000, deep: 90_000, d1: 1024 * MiB, seconds: 10, latencyRuns: 200 };
const RUNS = 3;

const work = await mkdtemp(path.join(os.tmpdir(), 'assetgate-bench-'));
const dataDir = path.join(work, 'data');
const port = 20000 + Math.floor(Math.random() * 20000);
const url = `http://127.0.0.1:${port}`;
const procs: Proc[] = [];
const results: Record<string, unknown> = {
  quick,
  machine: { cpus: os.cpus().length, memory: os.totalmem(), node: process.version },
};
const rows: string[][] = [];
const row = (...cells: (string | number)[]) => rows.push(cells.map(String));
const fmt = (n: number, digits = 1) => n.toFixed(digits);
/** A grey picture of gaussian noise: as costly to encode as a photo, made on the spot. */
const noise = (width: number, height: number, sigma: number) =>
  sharp({
    create: { width, height, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma } },
  });

async function main() {
  // Inputs: a large file, a 20 KB PNG.
  const big = path.join(work, 'big.bin');
  await writeFile(big, 'assetgate benchmark\n');
  await truncate(big, SIZE.u1);
  const smallPng = path.join(work, 'small.png');
  await noise(82, 82, 40).png({ compressionLevel: 0 }).resize(82, 82).toFile(smallPng);
  // The resumable runs send a large file of their own: U1's stays stored for D1.
  const bigTus = path.join(work, 'big-tus.bin');
  await writeFile(bigTus, 'assetgate benchmark, resumable\n');
  await truncate(bigTus, SIZE.u1);
  // Small files, each upload its own bytes (RUNS sets for U2, and for U3).
  const smallsDir = path.join(work, 'smalls');
  await mkdir(smallsDir);
  const u2Files = want('U2', 'U2-ready') ? await distinctPngs(smallPng, smallsDir, 'u2', RUNS * SIZE.u2) : [];
  const u3Files = want('U3') ? await distinctPngs(smallPng, smallsDir, 'u3', RUNS * SIZE.u3 * 100) : [];

  const server = await start(
    serverArgs(),
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      PUBLIC_URL: url,
      RATE_LIMIT: '0',
      MAX_FILE_SIZE: '2GiB',
      UPLOAD_CONCURRENCY: '64',
    },
    port,
  );
  procs.push(server);
  const key = /\b(sk_live_default_[0-9a-f]{48})\b/.exec(server.output())![1];
  const auth = { authorization: `Bearer ${key}` };
  const pid = server.child.pid!;
  await new Promise((r) => setTimeout(r, 1000));
  const idle = await memory(pid);

  const gql = async (query: string, variables: unknown = {}, headers = auth) => {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as any;
  };
  // Until processing is done. Not WAITING: an asset waiting for bytes the run never sends (S2's
  // plain upload URLs) would hold every run here until the loop's end, 10 minutes.
  const settled = async () => {
    for (let i = 0; i < 6000; i++) {
      const r = await gql('{ assets(filter: { status: [PROCESSING] }) { totalCount } }');
      if (r.data.assets.totalCount === 0) return;
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  const uploadOp = (file: string, name: string) => uploadAssetBody(file, name);

  // A folder per baseline: each creates its own files, none overwrites another's.
  const [busboyDir, rawDir, durableDir, graphqlDir, graphqlDurableDir] = [
    'busboy',
    'raw',
    'durable',
    'gql',
    'gql-fsync',
  ].map((name) => path.join(work, name));
  for (const dir of [busboyDir, rawDir, durableDir, graphqlDir, graphqlDurableDir]) await mkdir(dir);
  const busboy = await startBaseline('upload.ts', ['multipart', busboyDir]);
  const raw = await startBaseline('upload.ts', ['raw', rawDir]);
  const durable = await startBaseline('upload.ts', ['multipart-fsync', durableDir]);
  const graphqlFloor = await startBaseline('graphql-upload.ts', [graphqlDir]);
  const graphqlDurable = await startBaseline('graphql-upload.ts', [graphqlDurableDir, 'fsync']);
  procs.push(busboy, raw, durable, graphqlFloor, graphqlDurable);

  const removeAsset = (id: string) =>
    gql('mutation($id: ID!) { deleteAsset(input: { id: $id, permanently: true }) { deletedId } }', { id });
  // Kept for D1 (the large file it downloads) and M1 (U1's peak growth).
  let lastBig = '';
  let u1Peak = 0;
  if (want('U1', 'S1') || later) {
    // U1: one large file.
    const u1 = {
      assetgate: [] as number[],
      busboy: [] as number[],
      raw: [] as number[],
      durable: [] as number[],
      rssGrowth: [] as number[],
    };
    const s1 = { stored: [] as number[], fresh: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      // Each run stores the file anew: the one before is deleted for good first.
      if (lastBig) await removeAsset(lastBig);
      await settled();
      await resetPeak(pid);
      const before = await memory(pid);
      let response: { text: string } = { text: '' };
      flushDisk();
      u1.assetgate.push(
        SIZE.u1 /
          MiB /
          ((await timed(
            async () =>
              (response = await send(`${url}/graphql`, 'POST', uploadOp(big, 'big.bin'), {
                ...auth,
                'x-graphql-yoga-csrf': '1',
              })),
          )) /
            1000),
      );
      u1.rssGrowth.push((await memory(pid)).hwm - before.rss);
      lastBig = JSON.parse(response.text).data.uploadAsset.asset.id;
      s1.fresh.push(u1.assetgate.at(-1)!);
      await settled();
      // S1: the same bytes again, which the org now stores: hashed and written as ever, then
      // found stored, pointed at the copy and the new blob deleted.
      flushDisk();
      s1.stored.push(
        SIZE.u1 /
          MiB /
          ((await timed(
            async () =>
              (response = await send(`${url}/graphql`, 'POST', uploadOp(big, 'again.bin'), {
                ...auth,
                'x-graphql-yoga-csrf': '1',
              })),
          )) /
            1000),
      );
      await settled();
      await removeAsset(JSON.parse(response.text).data.uploadAsset.asset.id);
      flushDisk();
      u1.busboy.push(
        SIZE.u1 /
          MiB /
          ((await timed(() => send(`http://127.0.0.1:${busboy.port}/`, 'POST', uploadOp(big, 'big.bin')))) / 1000),
      );
      flushDisk();
      u1.raw.push(
        SIZE.u1 /
          MiB /
          ((await timed(() =>
            send(`http://127.0.0.1:${raw.port}/`, 'POST', {
              stream: createReadStream(big),
              length: SIZE.u1,
            }),
          )) /
            1000),
      );
      await rm(busboyDir, { recursive: true, force: true }).then(() => mkdir(busboyDir));
      flushDisk();
      u1.durable.push(
        SIZE.u1 /
          MiB /
          ((await timed(() => send(`http://127.0.0.1:${durable.port}/`, 'POST', uploadOp(big, 'big.bin')))) / 1000),
      );
      await rm(durableDir, { recursive: true, force: true }).then(() => mkdir(durableDir));
      await rm(rawDir, { recursive: true, force: true }).then(() => mkdir(rawDir));
    }
    u1Peak = Math.max(...u1.rssGrowth);
    results.U1 = {
      mbPerSecond: {
        assetgate: median(u1.assetgate),
        busboy: median(u1.busboy),
        raw: median(u1.raw),
        busboyFsync: median(u1.durable),
      },
      runs: u1,
      rssGrowthBytes: u1Peak,
    };
    const u1Ratio = median(u1.assetgate) / median(u1.busboy);
    row(
      'U1 large upload',
      `${SIZE.u1 / MiB} MiB`,
      `${fmt(median(u1.assetgate))} MB/s`,
      `${fmt(median(u1.busboy))} MB/s (busboy); ceiling ${fmt(median(u1.raw))} MB/s; busboy + fsync ${fmt(median(u1.durable))} MB/s (ratio ${fmt(median(u1.assetgate) / median(u1.durable), 2)})`,
      fmt(u1Ratio, 2),
      `≥ 0.8, RSS growth ${fmt(u1Peak / MiB)} MiB < 64`,
      u1Ratio >= 0.8 && u1Peak < 64 * MiB ? 'met' : 'missed',
    );

    const s1Ratio = median(s1.stored) / median(s1.fresh);
    results.S1 = { mbPerSecond: { stored: median(s1.stored), fresh: median(s1.fresh) }, runs: s1 };
    row(
      'S1 upload of stored bytes',
      `U1's ${SIZE.u1 / MiB} MiB again, while the org stores them (kept once)`,
      `${fmt(median(s1.stored))} MB/s`,
      `${fmt(median(s1.fresh))} MB/s (U1: bytes the org did not store)`,
      fmt(s1Ratio, 2),
      '≥ 0.9',
      s1Ratio >= 0.9 ? 'met' : 'missed',
    );
  }

  if (want('S2')) {
    // S2: createUploadUrl for bytes the org stores (reuseStored: the asset at once, nothing to
    // send) against a plain createUploadUrl (an asset waiting for its PUT).
    const note = path.join(work, 'note.txt');
    await writeFile(note, 'a note every team uploads twice\n');
    const stored = JSON.parse(
      (await send(`${url}/graphql`, 'POST', uploadOp(note, 'note.txt'), { ...auth, 'x-graphql-yoga-csrf': '1' })).text,
    ).data.uploadAsset.asset;
    const noteChecksum = (await gql('query($id: ID!) { asset(id: $id) { checksum } }', { id: stored.id })).data.asset
      .checksum as string;
    const ask = (input: Record<string, unknown>) =>
      gql('mutation($i: CreateUploadUrlInput!) { createUploadUrl(input: $i) { uploadUrl asset { id } } }', {
        i: input,
      });
    const s2 = { reused: [] as number[], plain: [] as number[] };
    const made: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const times = { reused: [] as number[], plain: [] as number[] };
      for (let i = 0; i < SIZE.latencyRuns / 4; i++) {
        times.reused.push(
          await timed(async () => {
            const r = await ask({
              filename: 'again.txt',
              checksum: noteChecksum,
              size: stored.size,
              reuseStored: true,
            });
            if (r.data.createUploadUrl.uploadUrl !== null) throw new Error('reuseStored asked for an upload');
            made.push(r.data.createUploadUrl.asset.id);
          }),
        );
        times.plain.push(
          await timed(async () => made.push((await ask({ filename: 'new.txt' })).data.createUploadUrl.asset.id)),
        );
      }
      s2.reused.push(median(times.reused));
      s2.plain.push(median(times.plain));
    }
    await settled();
    for (const id of [...made, stored.id]) await removeAsset(id);
    const s2Ratio = median(s2.reused) / median(s2.plain);
    results.S2 = { medianMs: { reused: median(s2.reused), plain: median(s2.plain) }, runs: s2 };
    row(
      'S2 reuseStored',
      'createUploadUrl for bytes the org stores: the asset at once, no upload',
      `${fmt(median(s2.reused), 2)} ms`,
      `${fmt(median(s2.plain), 2)} ms (a plain createUploadUrl)`,
      `${fmt(s2Ratio, 2)}×`,
      '≤ 2×',
      s2Ratio <= 2 ? 'met' : 'missed',
    );
  }

  if (want('T1')) {
    // T1: a large file of the same size resumable (tus: one PATCH, as tus-js-client sends by default,
    // and 8 MiB chunks) against one PUT to a signed upload URL, interleaved.
    const CHUNK = 8 * MiB;
    const t1 = { tus: [] as number[], one: [] as number[], put: [] as number[], rssGrowth: [] as number[] };
    /** One tus upload of the file in PATCHes of `chunk` bytes; MB/s. Its asset is deleted after. */
    const tusUpload = async (chunk: number) => {
      await resetPeak(pid);
      const before = await memory(pid);
      flushDisk();
      let tusAsset = '';
      const ms = await timed(async () => {
        const created = await fetch(`${url}/tus/`, {
          method: 'POST',
          headers: {
            ...auth,
            'tus-resumable': '1.0.0',
            'upload-length': String(SIZE.u1),
            'upload-metadata': `filename ${Buffer.from('big.bin').toString('base64')}`,
          },
        });
        const location = new URL(created.headers.get('location')!).pathname;
        for (let offset = 0; offset < SIZE.u1; offset += chunk) {
          const length = Math.min(chunk, SIZE.u1 - offset);
          const answer = await send(
            `${url}${location}`,
            'PATCH',
            {
              stream: createReadStream(bigTus, { start: offset, end: offset + length - 1, highWaterMark: MiB }),
              length,
              contentType: 'application/offset+octet-stream',
            },
            { ...auth, 'tus-resumable': '1.0.0', 'upload-offset': String(offset) },
          );
          if (answer.status !== 204) throw new Error(`tus PATCH answered ${answer.status}: ${answer.text}`);
        }
        tusAsset = Buffer.from(`Asset:${location.split('/').pop()}`).toString('base64url');
      });
      t1.rssGrowth.push((await memory(pid)).hwm - before.rss);
      await settled();
      await removeAsset(tusAsset);
      return SIZE.u1 / MiB / (ms / 1000);
    };
    for (let run = 0; run < RUNS; run++) {
      t1.tus.push(await tusUpload(CHUNK));
      t1.one.push(await tusUpload(SIZE.u1));
      flushDisk();
      const made = await gql(
        'mutation($size: Float) { createUploadUrl(input: { filename: "big.bin", size: $size }) { uploadUrl asset { id } } }',
        { size: SIZE.u1 },
      );
      t1.put.push(
        SIZE.u1 /
          MiB /
          ((await timed(async () => {
            const answer = await send(made.data.createUploadUrl.uploadUrl, 'PUT', {
              stream: createReadStream(bigTus),
              length: SIZE.u1,
            });
            if (answer.status !== 200) throw new Error(`PUT answered ${answer.status}: ${answer.text}`);
          })) /
            1000),
      );
      await settled();
      await removeAsset(made.data.createUploadUrl.asset.id);
    }
    const t1Ratio = median(t1.tus) / median(t1.put);
    const t1OneRatio = median(t1.one) / median(t1.put);
    const t1Peak = Math.max(...t1.rssGrowth);
    results.T1 = {
      mbPerSecond: { tus: median(t1.tus), tusOnePatch: median(t1.one), put: median(t1.put) },
      runs: t1,
      rssGrowthBytes: t1Peak,
    };
    row(
      'T1 resumable upload, one PATCH',
      `${SIZE.u1 / MiB} MiB over tus in one PATCH (tus-js-client's default)`,
      `${fmt(median(t1.one))} MB/s`,
      `${fmt(median(t1.put))} MB/s (one PUT to a signed upload URL)`,
      fmt(t1OneRatio, 2),
      '≥ 0.9',
      t1OneRatio >= 0.9 ? 'met' : 'missed',
    );
    row(
      'T1 resumable upload, 8 MiB chunks',
      `${SIZE.u1 / MiB} MiB over tus in 8 MiB chunks (each fsynced before its 204)`,
      `${fmt(median(t1.tus))} MB/s`,
      `${fmt(median(t1.put))} MB/s (one PUT to a signed upload URL)`,
      fmt(t1Ratio, 2),
      `≥ 0.7, RSS growth ${fmt(t1Peak / MiB)} MiB < 64`,
      t1Ratio >= 0.7 && t1Peak < 64 * MiB ? 'met' : 'missed',
    );
  }

  if (want('U2', 'U2-ready')) {
    // U2: many small uploads, 8 at a time.
    const u2 = {
      assetgate: [] as number[],
      busboy: [] as number[],
      durable: [] as number[],
      graphql: [] as number[],
      graphqlDurable: [] as number[],
      /** Time until every image of the run is READY (placeholder made) ÷ the time to upload them. */
      ready: [] as number[],
    };
    const smalls = Array.from({ length: SIZE.u2 }, (_, i) => i);
    // Run `run`'s own files, the same for assetgate and each baseline.
    const smallUploads = async (run: number, target: string, headers: Record<string, string> = {}) => {
      flushDisk();
      const ms = await timed(() =>
        pool(smalls, 8, async (i) => {
          const r = await send(target, 'POST', uploadOp(u2Files[run * SIZE.u2 + i], `s${i}.png`), headers);
          if (r.status !== 200 || r.text.includes('"errors"')) throw new Error(r.text);
        }),
      );
      return SIZE.u2 / (ms / 1000);
    };
    for (let run = 0; run < RUNS; run++) {
      const uploadStarted = performance.now();
      u2.assetgate.push(await smallUploads(run, `${url}/graphql`, { ...auth, 'x-graphql-yoga-csrf': '1' }));
      const uploadMs = performance.now() - uploadStarted;
      await settled(); // thumbnails are made in the background: let them finish before the baseline runs
      u2.ready.push((performance.now() - uploadStarted) / uploadMs);
      u2.busboy.push(await smallUploads(run, `http://127.0.0.1:${busboy.port}/`));
      u2.durable.push(await smallUploads(run, `http://127.0.0.1:${durable.port}/`));
      u2.graphql.push(
        await smallUploads(run, `http://127.0.0.1:${graphqlFloor.port}/graphql`, { 'x-graphql-yoga-csrf': '1' }),
      );
      u2.graphqlDurable.push(
        await smallUploads(run, `http://127.0.0.1:${graphqlDurable.port}/graphql`, { 'x-graphql-yoga-csrf': '1' }),
      );
    }
    const u2Ratio = median(u2.assetgate) / median(u2.busboy);
    results.U2 = {
      readyOverUpload: median(u2.ready),
      filesPerSecond: {
        assetgate: median(u2.assetgate),
        busboy: median(u2.busboy),
        busboyFsync: median(u2.durable),
        graphqlFloor: median(u2.graphql),
        graphqlFloorFsync: median(u2.graphqlDurable),
      },
      runs: u2,
    };
    row(
      'U2 small uploads',
      `${SIZE.u2} × 20 KB PNG, 8 concurrent`,
      `${fmt(median(u2.assetgate), 0)} files/s`,
      `${fmt(median(u2.busboy), 0)} files/s; busboy + fsync ${fmt(median(u2.durable), 0)} files/s (ratio ${fmt(median(u2.assetgate) / median(u2.durable), 2)}); the stack alone (yoga + graphql-upload-minimal, nothing behind) ${fmt(median(u2.graphql), 0)} files/s (${fmt(median(u2.graphql) / median(u2.busboy), 2)} of busboy), with fsync ${fmt(median(u2.graphqlDurable), 0)} files/s (${fmt(median(u2.graphqlDurable) / median(u2.busboy), 2)}; gateway ${fmt(median(u2.assetgate) / median(u2.graphqlDurable), 2)} of it)`,
      fmt(u2Ratio, 2),
      '≥ 0.4',
      u2Ratio >= 0.4 ? 'met' : 'missed',
    );
    const u2FloorRatio = median(u2.assetgate) / median(u2.graphqlDurable);
    row(
      "U2 ÷ the stack's durable floor",
      `${SIZE.u2} × 20 KB PNG, 8 concurrent`,
      `${fmt(median(u2.assetgate), 0)} files/s`,
      `${fmt(median(u2.graphqlDurable), 0)} files/s (yoga + graphql-upload-minimal, each file fsynced: graphqlFloorFsync)`,
      fmt(u2FloorRatio, 2),
      '≥ 0.8',
      u2FloorRatio >= 0.8 ? 'met' : 'missed',
    );
    row(
      'U2-ready',
      `time until all ${SIZE.u2} images are READY with their placeholder`,
      `${fmt(median(u2.ready), 2)}× the upload time`,
      'the time to upload them',
      fmt(median(u2.ready), 2),
      '≤ 1.5',
      median(u2.ready) <= 1.5 ? 'met' : 'missed',
    );
  }

  if (want('U3')) {
    // U3: batches of 100 files.
    const batchOp = (files: string[]) =>
      multipartBody(
        [
          [
            'operations',
            JSON.stringify({
              query:
                'mutation($f: [Upload!]!) { uploadAssets(input: { files: $f }) { assets { id } failures { index } } }',
              variables: { f: Array(100).fill(null) },
            }),
          ],
          [
            'map',
            JSON.stringify(
              Object.fromEntries(Array.from({ length: 100 }, (_, i) => [String(i), [`variables.f.${i}`]])),
            ),
          ],
        ],
        files.map((file, i) => ({ field: String(i), path: file, name: `b${i}.png` })),
      );
    const batch = (run: number, r: number) => u3Files.slice((run * SIZE.u3 + r) * 100, (run * SIZE.u3 + r + 1) * 100);
    const u3 = { assetgate: [] as number[], busboy: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      flushDisk();
      u3.assetgate.push(
        (SIZE.u3 * 100) /
          ((await timed(async () => {
            for (let r = 0; r < SIZE.u3; r++)
              await send(`${url}/graphql`, 'POST', batchOp(batch(run, r)), { ...auth, 'x-graphql-yoga-csrf': '1' });
          })) /
            1000),
      );
      await settled();
      flushDisk();
      u3.busboy.push(
        (SIZE.u3 * 100) /
          ((await timed(async () => {
            for (let r = 0; r < SIZE.u3; r++)
              await send(`http://127.0.0.1:${busboy.port}/`, 'POST', batchOp(batch(run, r)));
          })) /
            1000),
      );
    }
    results.U3 = { filesPerSecond: { assetgate: median(u3.assetgate), busboy: median(u3.busboy) }, runs: u3 };
    row(
      'U3 batch uploads',
      `${SIZE.u3} × uploadAssets of 100 files`,
      `${fmt(median(u3.assetgate), 0)} files/s`,
      `${fmt(median(u3.busboy), 0)} files/s`,
      fmt(median(u3.assetgate) / median(u3.busboy), 2),
      '(files/s)',
      'reported',
    );
  }
  await busboy.stop();
  await raw.stop();
  await durable.stop();
  await graphqlFloor.stop();
  await graphqlDurable.stop();

  if (later) {
    // Seed assets straight into the database for the list workloads, in a tenant of their own
    // (the org's test mode, read with a test key) so that the uploads above are not in the list.
    const listKey = (
      await gql('mutation { createApiKey(input: { name: "bench", mode: TEST, scopes: ["read:assets"] }) { key } }')
    ).data.createApiKey.key as string;
    const listAuth = { authorization: `Bearer ${listKey}` };
    // Rows as stored files have them (a blob key, so `size` is served); no list reads the blobs.
    const db = new SQLite(path.join(dataDir, 'assetgate.db'));
    db.pragma('busy_timeout = 10000');
    const insert =
      db.prepare(`insert into assets (id, org_id, mode, title, slug, type, status, filename, mime_type, size, checksum, blob_key, width, height, is_public, download_count, created_at, updated_at, url_version, download_urls_issued, search_tags)
    values (?, 'default', 'test', ?, ?, 'IMAGE', 'READY', ?, 'image/png', ?, ?, ?, 640, 480, 0, 0, ?, ?, 0, 0, ?)`);
    const tag = db.prepare(`insert into asset_tags (asset_id, org_id, mode, tag) values (?, 'default', 'test', ?)`);
    const base = Date.parse('2020-01-01T00:00:00Z');
    const seed = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
        const at = new Date(base + i * 1000).toISOString();
        insert.run(
          id,
          `Asset ${i}`,
          `bench-asset-${i}`,
          `asset-${i}.png`,
          20_000 + (i % 1000),
          `sha256:${'0'.repeat(64)}`,
          `seeded/${id}`,
          at,
          at,
          // The tags as the repository keeps them for search: sorted, in one string.
          [`batch-${i % 97}`, `tag-${i % 10}`].sort().join(' '),
        );
        tag.run(id, `tag-${i % 10}`);
        tag.run(id, `batch-${i % 97}`);
      }
    });
    for (let i = 0; i < SIZE.assets; i += 10_000) seed(i, Math.min(SIZE.assets, i + 10_000));
    db.close();
    const seeded = await memory(pid);

    // L1: the first page, 16 connections.
    const listBody = JSON.stringify({
      query: '{ assets(first: 50) { edges { node { id title mimeType size width height createdAt tags } } } }',
    });
    const listBaseline = await startBaseline('list.ts', [path.join(dataDir, 'assetgate.db'), 'default', 'test']);
    procs.push(listBaseline);
    const cannon = (target: string, opts: Partial<autocannon.Options>) =>
      autocannon({
        url: target,
        connections: 16,
        duration: SIZE.seconds,
        ...opts,
      }) as unknown as Promise<autocannon.Result>;
    // The floor: the cheapest operation there is, through the same HTTP, key check and GraphQL
    // pipeline. What it costs is spent on every request before any data is read.
    const floorBody = JSON.stringify({ query: '{ __typename }' });
    const l1 = {
      assetgate: [] as autocannon.Result[],
      baseline: [] as autocannon.Result[],
      floor: [] as autocannon.Result[],
    };
    const gateway = (body: string) =>
      cannon(`${url}/graphql`, { method: 'POST', headers: { ...listAuth, 'content-type': 'application/json' }, body });
    // Server CPU per request besides throughput: on a shared machine a round's throughput moves
    // with the other load, the CPU a request costs much less.
    const cpu = { assetgate: [] as number[], baseline: [] as number[] };
    const charged = async (target: number, cpus: number[], run: () => Promise<autocannon.Result>) => {
      const before = await cpuMicros(target);
      const result = await run();
      cpus.push(((await cpuMicros(target)) - before) / Math.max(1, result.requests.total));
      return result;
    };
    for (let run = 0; run < RUNS; run++) {
      l1.assetgate.push(await charged(pid, cpu.assetgate, () => gateway(listBody)));
      l1.baseline.push(
        await charged(listBaseline.child.pid!, cpu.baseline, () =>
          cannon(`http://127.0.0.1:${listBaseline.port}/`, {}),
        ),
      );
      l1.floor.push(await gateway(floorBody));
    }
    await listBaseline.stop();
    const rps = (rs: autocannon.Result[]) => median(rs.map((r) => r.requests.average));
    const lat = (rs: autocannon.Result[], p: 'p50' | 'p99') => median(rs.map((r) => r.latency[p]));
    const l1Ratio = rps(l1.assetgate) / rps(l1.baseline);
    const errors = l1.assetgate.reduce((n, r) => n + r.errors + r.non2xx, 0);
    const floorRatio = rps(l1.floor) / rps(l1.baseline);
    results.L1 = {
      assetgate: { rps: rps(l1.assetgate), p50: lat(l1.assetgate, 'p50'), p99: lat(l1.assetgate, 'p99'), errors },
      baseline: { rps: rps(l1.baseline), p50: lat(l1.baseline, 'p50'), p99: lat(l1.baseline, 'p99') },
      floor: { rps: rps(l1.floor), p50: lat(l1.floor, 'p50'), p99: lat(l1.floor, 'p99') },
      cpuMicrosPerRequest: { assetgate: median(cpu.assetgate), baseline: median(cpu.baseline), runs: cpu },
    };
    row(
      'L1 list',
      `assets(first: 50) over ${SIZE.assets.toLocaleString('en')} assets, 16 connections`,
      `${fmt(rps(l1.assetgate), 0)} req/s, p50 ${lat(l1.assetgate, 'p50')} ms, p99 ${lat(l1.assetgate, 'p99')} ms; server CPU ${fmt(median(cpu.assetgate), 0)} µs/request`,
      `${fmt(rps(l1.baseline), 0)} req/s, p50 ${lat(l1.baseline, 'p50')} ms, p99 ${lat(l1.baseline, 'p99')} ms; ${fmt(median(cpu.baseline), 0)} µs/request (CPU ratio ${fmt(median(cpu.baseline) / median(cpu.assetgate), 2)})`,
      fmt(l1Ratio, 2),
      '≥ 0.7',
      l1Ratio >= 0.7 && errors === 0 ? 'met' : 'missed',
    );
    row(
      'L1 floor',
      '`{ __typename }` with a key: the same stack, no data',
      `${fmt(rps(l1.floor), 0)} req/s, p50 ${lat(l1.floor, 'p50')} ms`,
      `the list baseline above`,
      fmt(floorRatio, 2),
      '(reported)',
      'reported',
    );

    // O1: what the request log costs. The same list against a second gateway on the same data,
    // identical but for LOG_LEVEL=silent, interleaved with the first (which logs every request).
    const quietPort = port + 7;
    const quiet = await start(
      serverArgs(),
      {
        PORT: String(quietPort),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        PUBLIC_URL: `http://127.0.0.1:${quietPort}`,
        RATE_LIMIT: '0',
        JOB_CONCURRENCY: '0',
        SWEEP_INTERVAL: '0',
        LOG_LEVEL: 'silent',
      },
      quietPort,
    );
    procs.push(quiet);
    const o1 = { logged: [] as autocannon.Result[], silent: [] as autocannon.Result[] };
    for (let run = 0; run < RUNS; run++) {
      o1.logged.push(await gateway(listBody));
      o1.silent.push(
        await cannon(`http://127.0.0.1:${quietPort}/graphql`, {
          method: 'POST',
          headers: { ...listAuth, 'content-type': 'application/json' },
          body: listBody,
        }),
      );
    }
    await quiet.stop();
    const o1Ratio = rps(o1.logged) / rps(o1.silent);
    results.O1 = { logged: { rps: rps(o1.logged) }, silent: { rps: rps(o1.silent) } };
    row(
      'O1 request log',
      'L1 with a JSON log line per request (the default) against LOG_LEVEL=silent',
      `${fmt(rps(o1.logged), 0)} req/s`,
      `${fmt(rps(o1.silent), 0)} req/s (the same gateway, silent)`,
      fmt(o1Ratio, 2),
      '≥ 0.97',
      o1Ratio >= 0.97 ? 'met' : 'missed',
    );

    // L2: a page deep in the list, a searched one, and a filtered and searched one, against the first page.
    const deepRow = new SQLite(path.join(dataDir, 'assetgate.db'), { readonly: true })
      .prepare(
        `select id, created_at from assets where org_id = 'default' and mode = 'test' order by created_at desc, id desc limit 1 offset ?`,
      )
      .get(SIZE.deep) as { id: string; created_at: string };
    const cursor = Buffer.from(JSON.stringify(['created_at', 'desc', deepRow.created_at, deepRow.id])).toString(
      'base64url',
    );
    const page = (args: string) =>
      `{ assets(first: 50${args}) { edges { node { id title mimeType size width height createdAt tags } } } }`;
    // Request by request, A, B, C, A, B, C…: drift on a shared machine hits all three alike.
    const queries = {
      first: page(''),
      deep: page(`, after: "${cursor}"`),
      // Words of titles, each a prefix: "asset" is in every title, "12" starts 1,111 of them.
      searched: page(', filter: { search: "asset 12" }'),
      filtered: page(', filter: { tags: ["tag-3"], search: "asset 12" }'),
    };
    const names = ['first', 'deep', 'searched', 'filtered'] as const;
    const l2 = { first: [] as number[], deep: [] as number[], searched: [] as number[], filtered: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      const times = { first: [] as number[], deep: [] as number[], searched: [] as number[], filtered: [] as number[] };
      for (let i = 0; i < SIZE.latencyRuns; i++) {
        for (const name of names) times[name].push(await timed(() => gql(queries[name], {}, listAuth)));
      }
      for (const name of names) l2[name].push(median(times[name]));
    }
    const searchedCount = (await gql(`{ assets(filter: { search: "asset 12" }) { totalCount } }`, {}, listAuth)).data
      .assets.totalCount;
    if (searchedCount < 50) throw new Error(`the searched page matched ${searchedCount} assets, fewer than a page`);
    const deepRatio = median(l2.deep) / median(l2.first);
    const searchedRatio = median(l2.searched) / median(l2.first);
    const filteredRatio = median(l2.filtered) / median(l2.first);
    results.L2 = {
      medianMs: {
        first: median(l2.first),
        deep: median(l2.deep),
        searched: median(l2.searched),
        filtered: median(l2.filtered),
      },
      searchedCount,
      deepRatio,
      searchedRatio,
      filteredRatio,
    };
    row(
      'L2 deep page',
      `after a cursor ${SIZE.deep.toLocaleString('en')} deep`,
      `${fmt(median(l2.deep), 2)} ms`,
      `first page ${fmt(median(l2.first), 2)} ms`,
      `${fmt(deepRatio, 2)}×`,
      '≤ 1.2×',
      deepRatio <= 1.2 ? 'met' : 'missed',
    );
    row(
      'L2 searched',
      `full-text search matching ${searchedCount.toLocaleString('en')} of ${SIZE.assets.toLocaleString('en')}, newest first`,
      `${fmt(median(l2.searched), 2)} ms`,
      `first page ${fmt(median(l2.first), 2)} ms`,
      `${fmt(searchedRatio, 2)}×`,
      '≤ 2×',
      searchedRatio <= 2 ? 'met' : 'missed',
    );
    row(
      'L2 filtered + searched',
      'a tag and the same search',
      `${fmt(median(l2.filtered), 2)} ms`,
      `first page ${fmt(median(l2.first), 2)} ms`,
      `${fmt(filteredRatio, 2)}×`,
      '≤ 2×',
      filteredRatio <= 2 ? 'met' : 'missed',
    );
    const afterList = await memory(pid);

    // D1: the large file through a signed download URL.
    const signed = (await gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', { id: lastBig }))
      .data.createDownloadUrl.url;
    const fileBaseline = await startBaseline('download.ts', [big]);
    procs.push(fileBaseline);
    const d1 = { assetgate: [] as number[], baseline: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      d1.assetgate.push(SIZE.d1 / MiB / ((await timed(() => drain(signed))) / 1000));
      d1.baseline.push(SIZE.d1 / MiB / ((await timed(() => drain(`http://127.0.0.1:${fileBaseline.port}/`))) / 1000));
    }
    await fileBaseline.stop();
    const d1Ratio = median(d1.assetgate) / median(d1.baseline);
    results.D1 = { mbPerSecond: { assetgate: median(d1.assetgate), baseline: median(d1.baseline) }, runs: d1 };
    row(
      'D1 download',
      `${SIZE.d1 / MiB} MiB via a signed URL`,
      `${fmt(median(d1.assetgate))} MB/s`,
      `${fmt(median(d1.baseline))} MB/s (fs.createReadStream)`,
      fmt(d1Ratio, 2),
      '≥ 0.9',
      d1Ratio >= 0.9 ? 'met' : 'missed',
    );

    // R1–R3: image renditions of a 12 MP JPEG.
    const photo = path.join(work, 'photo.jpg');
    await noise(4000, 3000, 50).jpeg({ quality: 90 }).toFile(photo);
    const photoUpload = await send(`${url}/graphql`, 'POST', uploadOp(photo, 'photo.jpg'), {
      ...auth,
      'x-graphql-yoga-csrf': '1',
    });
    const photoId = JSON.parse(photoUpload.text).data.uploadAsset.asset.id;
    await settled();
    const renditionUrl = (quality: number) => `${url}/download/${photoId}?w=1024&format=webp&q=${quality}`;
    // R1: cold (a new rendition each time: another quality) against sharp doing the same resize in this process.
    const r1 = { assetgate: [] as number[], sharp: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      r1.assetgate.push(await timed(() => drain(renditionUrl(70 + run), auth)));
      r1.sharp.push(
        await timed(() =>
          sharp(photo)
            .rotate()
            .resize(1024, 1024, { fit: 'inside', withoutEnlargement: true })
            .webp({ quality: 70 + run })
            .toBuffer(),
        ),
      );
    }
    const r1Ratio = median(r1.assetgate) / median(r1.sharp);
    results.R1 = { medianMs: { assetgate: median(r1.assetgate), sharp: median(r1.sharp) }, runs: r1 };
    row(
      'R1 cold rendition',
      '12 MP JPEG → 1024 px WebP, first request',
      `${fmt(median(r1.assetgate))} ms`,
      `${fmt(median(r1.sharp))} ms (sharp alone, in process)`,
      `${fmt(r1Ratio, 2)}×`,
      '≤ 1.3×',
      r1Ratio <= 1.3 ? 'met' : 'missed',
    );
    // R2: warm (made already) against a plain download of a file of the same size.
    const warm = renditionUrl(70);
    const warmFile = path.join(work, 'rendition.webp');
    await writeFile(warmFile, Buffer.from(await (await fetch(warm, { headers: auth })).arrayBuffer()));
    const warmBaseline = await startBaseline('download.ts', [warmFile]);
    procs.push(warmBaseline);
    const r2 = { assetgate: [] as autocannon.Result[], baseline: [] as autocannon.Result[] };
    for (let run = 0; run < RUNS; run++) {
      r2.assetgate.push(await cannon(warm, { headers: auth }));
      r2.baseline.push(await cannon(`http://127.0.0.1:${warmBaseline.port}/`, {}));
    }
    await warmBaseline.stop();
    const r2Rates = {
      assetgate: median(r2.assetgate.map((r) => r.requests.average)),
      baseline: median(r2.baseline.map((r) => r.requests.average)),
    };
    const r2Ratio = r2Rates.assetgate / r2Rates.baseline;
    results.R2 = { requestsPerSecond: r2Rates, errors: r2.assetgate.map((r) => r.errors + r.non2xx) };
    row(
      'R2 warm rendition',
      'the same rendition again (kept in the store), 16 connections',
      `${fmt(r2Rates.assetgate, 0)} req/s`,
      `${fmt(r2Rates.baseline, 0)} req/s (fs.createReadStream of a file of the same size)`,
      fmt(r2Ratio, 2),
      '≥ 0.9',
      r2Ratio >= 0.9 ? 'met' : 'missed',
    );
    // R3: twenty first requests at once for one new rendition: one transform, so about one cold time.
    const r3: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      r3.push(await timed(() => Promise.all(Array.from({ length: 20 }, () => drain(renditionUrl(90 + run), auth)))));
    }
    const r3Ratio = median(r3) / median(r1.assetgate);
    results.R3 = { medianMs: median(r3), runs: r3, ofOneCold: r3Ratio };
    row(
      'R3 cold burst',
      '20 concurrent first requests for one rendition',
      `${fmt(median(r3))} ms for all 20`,
      `one cold request ${fmt(median(r1.assetgate))} ms (R1)`,
      `${fmt(r3Ratio, 2)}×`,
      '(one transform: about 1×)',
      'reported',
    );

    // P1, V1: cold previews of a PDF page and a video's poster frame; W1: the same again, warm.
    Object.assign(
      results,
      await previewRows({
        url,
        auth,
        work,
        runs: RUNS,
        seconds: SIZE.seconds,
        row,
        upload: async (file, name) => {
          const response = await send(`${url}/graphql`, 'POST', uploadOp(file, name), {
            ...auth,
            'x-graphql-yoga-csrf': '1',
          });
          await settled();
          return JSON.parse(response.text).data.uploadAsset.asset.id as string;
        },
      }),
    );

    results.M1 = { idleRss: idle.rss, afterSeedRss: seeded.rss, afterListRss: afterList.rss, u1PeakGrowth: u1Peak };
    row(
      'M1 memory',
      'server RSS',
      `idle ${fmt(idle.rss / MiB)} MiB; after ${SIZE.assets.toLocaleString('en')} assets and L1 ${fmt(afterList.rss / MiB)} MiB; U1 peak growth ${fmt(u1Peak / MiB)} MiB`,
      '',
      `${fmt(afterList.rss / MiB)} MiB after L1`,
      '≤ 300 MiB after L1',
      afterList.rss <= 300 * MiB ? 'met' : 'missed',
    );

    // The scale-out rows run on their own gateways: this one is done.
    await server.stop();
    Object.assign(
      results,
      await scaleOut({
        work,
        big,
        size: SIZE.u1,
        runs: RUNS,
        assets: quick ? 2000 : 10_000,
        seconds: SIZE.seconds,
        procs,
        row,
      }),
    );
  }

  // J1: the processing rate per extraction thread, by kind, on gateways of its own.
  if (want('J1')) results.J1 = await processingRows({ quick, row });

  const table = [
    '| workload | what | assetgate | raw baseline (same run) | ratio | target | |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((cells) => `| ${cells.join(' | ')} |`),
  ].join('\n');
  console.log(
    `\n${table}\n\n(${quick ? 'quick run' : 'full run'}${only ? ` of ${[...only].join(', ')} only` : ''}; ${os.cpus().length} cores; medians of ${RUNS} interleaved runs)`,
  );
  await mkdir(path.join(ROOT, 'bench/results'), { recursive: true });
  const out = path.join(ROOT, 'bench/results', `${quick ? 'quick' : 'full'}${only ? '-only' : ''}-latest.json`);
  await writeFile(out, `${JSON.stringify({ date: new Date().toISOString(), ...results, table }, null, 2)}\n`);
  console.log(`wrote ${path.relative(ROOT, out)}`);
}

try {
  await main();
} finally {
  for (const proc of procs) await proc.stop();
  await rm(work, { recursive: true, force: true });
}
