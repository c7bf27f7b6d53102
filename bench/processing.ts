/**
 * J1: the processing rate per extraction thread, by kind of file. For each kind, an `api`
 * gateway (no jobs) takes N uploads; then a `worker` gateway with EXTRACT_THREADS=1 starts
 * on the same data and its queue is timed until empty (`assetgate_jobs` from /metrics):
 * extraction, and the background preview of PDFs, videos and audio. Its CPU (the process,
 * its threads and its ffmpeg children) gives the rate per CPU second, the figure an operator
 * sizes workers with. The baseline, run side by side on the same files: the extraction code
 * alone (src/jobs/extract-worker.ts `extract`, one file after another in this process), which
 * has no database, no store, no queue and makes no preview. Both are compared per CPU second:
 * on shared cores a wall-clock rate says how busy the machine was.
 *
 * `node --import tsx bench/processing.ts [--quick] [--kinds PNG,PDF]` on its own, or `npm run bench -- --only J1`.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import extract from '../src/jobs/extract-worker.js';
import type { AssetType } from '../src/adapters/media-type.js';
import { pdfWithText, wav } from '../test/samples.js';
import { pool, type Proc, send, serverArgs, start, uploadAssetBody, withComment } from './lib.js';

const run = promisify(execFile);
const FFMPEG = process.env.FFMPEG_PATH || 'ffmpeg';
const METRICS_TOKEN = 'bench-metrics-token-0123';

interface Kind {
  name: string;
  type: AssetType;
  mimeType: string;
  /** Files of this kind, each with bytes of its own. */
  make: (dir: string, count: number) => Promise<string[]>;
  count: { quick: number; full: number };
}

/** `count` copies of `bytes` made distinct by `vary(bytes, i)`, written to `dir`. */
async function copies(
  dir: string,
  options: { count: number; name: (i: number) => string; bytes: Buffer; vary: (bytes: Buffer, i: number) => Buffer },
): Promise<string[]> {
  const files: string[] = [];
  for (let i = 0; i < options.count; i++) {
    const file = path.join(dir, options.name(i));
    await writeFile(file, options.vary(options.bytes, i));
    files.push(file);
  }
  return files;
}

/** A JPEG with a comment segment (COM) holding `text` right after its start marker: the same picture, other bytes. */
function jpegWithComment(jpeg: Buffer, text: string): Buffer {
  const data = Buffer.from(text);
  const segment = Buffer.alloc(4 + data.length);
  segment.writeUInt16BE(0xfffe, 0);
  segment.writeUInt16BE(2 + data.length, 2);
  data.copy(segment, 4);
  return Buffer.concat([jpeg.subarray(0, 2), segment, jpeg.subarray(2)]);
}

const noise = (width: number, height: number) =>
  sharp({
    create: { width, height, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } },
  });

const KINDS: Kind[] = [
  {
    name: 'small PNG (82×82, 20 KB)',
    type: 'IMAGE',
    mimeType: 'image/png',
    count: { quick: 100, full: 400 },
    make: async (dir, count) =>
      copies(dir, {
        count,
        name: (i) => `small-${i}.png`,
        bytes: await noise(82, 82).png({ compressionLevel: 0 }).toBuffer(),
        vary: (png, i) => withComment(png, `j1-${i}`),
      }),
  },
  {
    name: 'photo (JPEG, 12 MP)',
    type: 'IMAGE',
    mimeType: 'image/jpeg',
    count: { quick: 8, full: 24 },
    make: async (dir, count) =>
      copies(dir, {
        count,
        name: (i) => `photo-${i}.jpg`,
        bytes: await noise(4000, 3000).jpeg({ quality: 85 }).toBuffer(),
        vary: (jpeg, i) => jpegWithComment(jpeg, `j1-${i}`),
      }),
  },
  {
    name: 'PDF (10 pages of text)',
    type: 'PDF',
    mimeType: 'application/pdf',
    count: { quick: 20, full: 60 },
    make: (dir, count) =>
      copies(dir, {
        count,
        name: (i) => `doc-${i}.pdf`,
        bytes: pdfWithText(10),
        // The same length, so the cross-reference offsets stay right.
        vary: (pdf, i) =>
          Buffer.from(
            pdf.toString('latin1').replace('Quarterly Report', `Quarterly R${String(i).padStart(5, '0')}`),
            'latin1',
          ),
      }),
  },
  {
    name: 'video (10 s 720p H.264)',
    type: 'VIDEO',
    mimeType: 'video/mp4',
    count: { quick: 4, full: 12 },
    make: async (dir, count) => {
      const base = path.join(dir, 'base.mp4');
      await run(FFMPEG, [
        ...['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=duration=10:size=1280x720:rate=25'],
        ...['-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'veryfast', '-y', base],
      ]);
      const files: string[] = [];
      for (let i = 0; i < count; i++) {
        const file = path.join(dir, `clip-${i}.mp4`);
        await run(FFMPEG, [
          '-hide_banner',
          '-loglevel',
          'error',
          '-i',
          base,
          '-c',
          'copy',
          '-metadata',
          `comment=j1-${i}`,
          '-y',
          file,
        ]);
        files.push(file);
      }
      return files;
    },
  },
  {
    name: 'audio (60 s WAV, 16 kHz)',
    type: 'AUDIO',
    mimeType: 'audio/wav',
    count: { quick: 8, full: 24 },
    make: (dir, count) =>
      copies(dir, {
        count,
        name: (i) => `tone-${i}.wav`,
        bytes: wav(60, 16000, 0.5),
        vary: (bytes, i) => {
          const copy = Buffer.from(bytes);
          copy.writeUInt16LE(i, 44); // the first sample
          return copy;
        },
      }),
  },
  {
    name: 'CSV (64 KB)',
    type: 'DATA',
    mimeType: 'text/csv',
    count: { quick: 100, full: 400 },
    make: (dir, count) =>
      copies(dir, {
        count,
        name: (i) => `table-${i}.csv`,
        bytes: Buffer.from(
          Array.from({ length: 1600 }, (_, r) => `${r},alpha beta gamma,${(r * 7) % 101},delta epsilon zeta`).join(
            '\n',
          ),
        ),
        vary: (csv, i) => Buffer.concat([Buffer.from(`id ${i},name,score,notes\n`), csv]),
      }),
  },
];

/** CPU seconds of a process, its threads and the children it waited for (ffmpeg), from /proc. */
async function cpuSecondsWithChildren(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime, cutime, cstime: fields 14–17, in ticks of 10 ms.
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
}

/** Jobs queued and running, from the gateway's /metrics. */
async function jobsLeft(url: string): Promise<number> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}: ${text.slice(0, 200)}`);
  let left = 0;
  for (const state of ['queued', 'running']) {
    const match = new RegExp(`^assetgate_jobs\\{state="${state}"\\} (\\d+)`, 'm').exec(text);
    if (!match) throw new Error(`/metrics has no assetgate_jobs{state="${state}"}`);
    left += Number(match[1]);
  }
  return left;
}

export interface KindFigures {
  files: number;
  seconds: number;
  perSecond: number;
  cpuSeconds: number;
  perCpuSecond: number;
  alonePerSecond: number;
  alonePerCpuSecond: number;
  /** Files per CPU second, the gateway's ÷ the extraction code's alone. */
  ratio: number;
  ready: number;
}

/** Uploads `files` through an `api` gateway, then times a one-thread `worker` processing them. */
async function measureKind(
  kind: Kind,
  files: string[],
  work: string,
): Promise<Omit<KindFigures, 'alonePerSecond' | 'alonePerCpuSecond' | 'ratio'>> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const url = `http://127.0.0.1:${port}`;
  const env = {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: path.join(work, 'data'),
    PUBLIC_URL: url,
    RATE_LIMIT: '0',
    UPLOAD_CONCURRENCY: '64',
    LOG_LEVEL: 'warn',
    METRICS_TOKEN,
  };
  let server: Proc | undefined;
  let key: string;
  try {
    server = await start(serverArgs(), { ...env, ROLE: 'api', LOG_LEVEL: 'info' }, port);
    key = /\b(sk_live_default_[0-9a-f]{48})\b/.exec(server.output())![1];
    const auth = { authorization: `Bearer ${key}`, 'x-graphql-yoga-csrf': '1' };
    await pool(files, 8, async (file) => {
      const response = await send(`${url}/graphql`, 'POST', uploadAssetBody(file, path.basename(file), 'id'), auth);
      if (response.status !== 200 || !JSON.parse(response.text).data?.uploadAsset) {
        throw new Error(`upload of ${file}: ${response.status} ${response.text.slice(0, 200)}`);
      }
    });
    const queued = await jobsLeft(url);
    if (queued < files.length) throw new Error(`${files.length} uploads left ${queued} jobs: the api role ran some`);
    await server.stop();
    server = undefined;

    server = await start(serverArgs(), { ...env, ROLE: 'worker', EXTRACT_THREADS: '1' }, port);
    // From the moment it listens (its start-up is not processing; the few jobs it took meanwhile are).
    const t0 = performance.now();
    const cpu0 = await cpuSecondsWithChildren(server.child.pid!);
    // Looked at five times a second: each look costs the worker two small queries.
    while ((await jobsLeft(url)) > 0) await new Promise((resolve) => setTimeout(resolve, 200));
    const seconds = (performance.now() - t0) / 1000;
    const cpuSeconds = (await cpuSecondsWithChildren(server.child.pid!)) - cpu0;
    await server.stop();
    server = undefined;

    // Every file processed: READY, none FAILED (a failure would make the rate meaningless).
    server = await start(serverArgs(), { ...env, ROLE: 'api' }, port);
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ ready: assets(first: 1, filter: { status: [READY] }) { totalCount } }' }),
    });
    const body = (await response.json()) as { data?: { ready: { totalCount: number } } };
    if (!body.data) throw new Error(`counting READY assets: ${JSON.stringify(body).slice(0, 300)}`);
    const ready = body.data.ready.totalCount;
    if (ready !== files.length) throw new Error(`${kind.name}: ${ready} of ${files.length} READY after processing`);
    return {
      files: files.length,
      seconds,
      perSecond: files.length / seconds,
      cpuSeconds,
      perCpuSecond: files.length / cpuSeconds,
      ready,
    };
  } finally {
    await server?.stop();
  }
}

/** The extraction code alone on `files`, one after another in this process: files per second and per CPU second. */
async function extractAlone(kind: Kind, files: string[]): Promise<{ perSecond: number; perCpuSecond: number }> {
  const t0 = performance.now();
  const cpu0 = await cpuSecondsWithChildren(process.pid);
  for (const file of files) {
    await extract({
      path: file,
      mimeType: kind.mimeType,
      type: kind.type,
      maxImagePixels: 268_402_689,
      maxPdfPagesForWords: 2000,
    });
  }
  const cpu = (await cpuSecondsWithChildren(process.pid)) - cpu0;
  return { perSecond: files.length / ((performance.now() - t0) / 1000), perCpuSecond: files.length / cpu };
}

/** J1 for every kind; `row` receives the table's rows. */
export async function processingRows(options: {
  quick: boolean;
  /** Only the kinds whose name holds one of these words (`--kinds PNG,PDF`). */
  kinds?: string[];
  row: (...cells: (string | number)[]) => void;
}): Promise<Record<string, KindFigures>> {
  const results: Record<string, KindFigures> = {};
  for (const kind of KINDS.filter((k) => !options.kinds || options.kinds.some((word) => k.name.includes(word)))) {
    const work = await mkdtemp(path.join(os.tmpdir(), 'assetgate-bench-j1-'));
    try {
      const dir = path.join(work, 'files');
      await mkdir(dir);
      const files = await kind.make(dir, options.quick ? kind.count.quick : kind.count.full);
      const measured = await measureKind(kind, files, work);
      const alone = await extractAlone(kind, files);
      // Per CPU second on both sides: on shared cores, wall-clock rates follow the other load.
      const figures = {
        ...measured,
        alonePerSecond: alone.perSecond,
        alonePerCpuSecond: alone.perCpuSecond,
        ratio: measured.perCpuSecond / alone.perCpuSecond,
      };
      results[kind.name] = figures;
      options.row(
        `J1 processing, ${kind.name}`,
        `${figures.files} files, one extraction thread (\`ROLE=worker EXTRACT_THREADS=1\`)${kind.type === 'IMAGE' || kind.type === 'DATA' ? '' : ', its preview included'}`,
        `${figures.perCpuSecond.toFixed(1)} files per CPU s (${figures.perSecond.toFixed(1)}/s)`,
        `${alone.perCpuSecond.toFixed(1)} files per CPU s (${alone.perSecond.toFixed(1)}/s): the extraction code alone`,
        figures.ratio.toFixed(2),
        'reported',
        '',
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  return results;
}

async function standalone(): Promise<void> {
  const rows: string[][] = [];
  const at = process.argv.indexOf('--kinds');
  const results = await processingRows({
    quick: process.argv.includes('--quick'),
    kinds: at === -1 ? undefined : process.argv[at + 1]?.split(','),
    row: (...cells) => rows.push(cells.map(String)),
  });
  console.log(rows.map((cells) => `| ${cells.join(' | ')} |`).join('\n'));
  console.log(JSON.stringify({ J1: results, loadAverage: os.loadavg() }));
}

if (import.meta.url === `file://${process.argv[1]}`) await standalone();
