/**
 * The soak's mixed load and the deployments it runs against. A deployment starts the
 * gateway process(es) on loopback and says which processes to sample; the load only ever
 * talks to 127.0.0.1 and every loop ends by a deadline and by a request count.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { drain, MiB, send, serverArgs, start, timed, withComment, type Proc } from './lib.js';
import { startStack } from './stack.js';

/** Gateways under test, where to reach them and which processes hold the memory. */
export interface Deployment {
  urls: string[];
  pids: number[];
  auth: Record<string, string>;
  /** The state behind the throughput at this moment (the scaled-out deployment reads it). */
  probe?(): Promise<Probe>;
  stop(): Promise<void>;
}

/** What a probe reads: the job backlog, the tables' row counts, CPU seconds used so far. */
export interface Probe {
  /** From /metrics: `assetgate_jobs{state="queued"}` and `assetgate_jobs_oldest_age_seconds`. */
  queued: number;
  oldestAgeSeconds: number;
  /** From pg_stat_user_tables: live and dead rows of the tables that churn. */
  tables: Record<string, { live: number; dead: number }>;
  /** CPU seconds (user + system) used so far, by process (PostgreSQL: the gateways' backends). */
  cpuSeconds: Record<string, number>;
  loadAverage: number;
}

/** One gateway on SQLite and the fs store, as `npm start` runs it. */
export async function singleGateway(clients: number): Promise<Deployment> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'assetgate-soak-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const url = `http://127.0.0.1:${port}`;
  const env = { PORT: String(port), HOST: '127.0.0.1', DATA_DIR: path.join(work, 'data'), PUBLIC_URL: url };
  // No rate limit or upload slot in the way of the load's own clients (plus the large upload).
  const server: Proc = await start(
    serverArgs(),
    { ...env, RATE_LIMIT: '0', UPLOAD_CONCURRENCY: String(clients + 1) },
    port,
  );
  const key = /\b(sk_live_default_[0-9a-f]{48})\b/.exec(server.output())![1];
  return {
    urls: [url],
    pids: [server.child.pid!],
    auth: { authorization: `Bearer ${key}` },
    stop: async () => {
      await server.stop();
      await rm(work, { recursive: true, force: true });
    },
  };
}

/** CPU seconds (user + system) a process has used, from /proc; 0 once it is gone. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return 0;
  // The fields after the command (which may hold spaces) in parentheses; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

/**
 * Two gateways (`ROLE=all`, defaults otherwise) on PostgreSQL (a fresh schema), S3 (s3rver)
 * and Redis, as docs/scaling.md runs them; the load goes to both in turn.
 */
export async function scaleGateways(clients: number): Promise<Deployment> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'assetgate-soak-scale-'));
  const stack = await startStack(work, 'soak');
  // Named so its tables can be looked at (EXPLAIN, pg_stat_user_tables) while the soak runs.
  console.error(`PostgreSQL schema ${stack.schema}`);
  const metricsToken = 'soak metrics token, loopback only';
  // The upload slots live in Redis, shared by both: enough for every client (plus the large upload).
  const env = { UPLOAD_CONCURRENCY: String(clients + 1), METRICS_TOKEN: metricsToken };
  const stop = async () => {
    await stack.stop();
    await rm(work, { recursive: true, force: true });
  };
  try {
    const a = await stack.gateway('gw-a', env);
    await stack.gateway('gw-b', env);
    const key = /\b(sk_live_default_[0-9a-f]{48})\b/.exec(a.proc.output())![1];
    // CPU of PostgreSQL backends that have gone (a pool's idle connections close) is kept.
    const backends = new Map<number, number>();
    let backendsGone = 0;
    const probe = async (): Promise<Probe> => {
      const metrics = await fetch(`${a.url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
      const text = await metrics.text();
      const gauge = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
      const tables = await stack.admin.query<{ table: string; live: string; dead: string }>(
        `select relname as table, n_live_tup as live, n_dead_tup as dead from pg_stat_user_tables
         where schemaname = $1 and relname in ('jobs', 'assets', 'blobs', 'asset_search', 'asset_events')`,
        [stack.schema],
      );
      const pids = await stack.admin.query<{ pid: number }>(
        'select pid from pg_stat_activity where application_name = $1',
        [stack.applicationName],
      );
      const seen = new Set<number>();
      for (const { pid } of pids.rows) {
        seen.add(pid);
        backends.set(pid, await cpuSeconds(pid));
      }
      for (const [pid, seconds] of backends) {
        if (seen.has(pid)) continue;
        backendsGone += seconds;
        backends.delete(pid);
      }
      return {
        queued: gauge(/^assetgate_jobs\{state="queued"\} (\S+)$/m),
        oldestAgeSeconds: gauge(/^assetgate_jobs_oldest_age_seconds (\S+)$/m),
        tables: Object.fromEntries(
          tables.rows.map((row) => [row.table, { live: Number(row.live), dead: Number(row.dead) }]),
        ),
        cpuSeconds: {
          'gateway a': await cpuSeconds(a.proc.child.pid!),
          'gateway b': await cpuSeconds(stack.gateways[1].proc.child.pid!),
          s3rver: await cpuSeconds(stack.s3.child.pid!),
          "postgres (the gateways' backends)": backendsGone + [...backends.values()].reduce((x, y) => x + y, 0),
          'load (this process)': (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
        },
        loadAverage: os.loadavg()[0],
      };
    };
    return {
      urls: stack.gateways.map((g) => g.url),
      pids: stack.gateways.map((g) => g.proc.child.pid!),
      auth: { authorization: `Bearer ${key}` },
      probe,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The deployments `--mode` can name. */
export const DEPLOYMENTS: Record<string, (clients: number) => Promise<Deployment>> = {
  single: singleGateway,
  scale: scaleGateways,
};

const UPLOAD = JSON.stringify({
  query: 'mutation($f: Upload!) { uploadAsset(input: { file: $f }) { asset { id url } } }',
  variables: { f: null },
});

/** A multipart upload of `chunks` (bytes made for this upload, so none is found already stored). */
function uploadBody(name: string, chunks: AsyncIterable<Buffer> | Buffer[], size: number) {
  const boundary = `----soak${Math.random().toString(16).slice(2)}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${UPLOAD}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.f"]}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const stream = Readable.from(
    (async function* () {
      yield head;
      yield* chunks;
      yield tail;
    })(),
  );
  return { stream, length: head.length + size + tail.length, contentType: `multipart/form-data; boundary=${boundary}` };
}

export type RequestKind = 'upload' | 'list' | 'search' | 'download' | 'large';

/** Latencies per kind of request, and failures. */
export interface LoadStats {
  latencies: Record<RequestKind, number[]>;
  errors: number;
  lastError: string;
}

/**
 * The mixed load: `clients` loops of small uploads (a 20 KB PNG, or 8–64 KiB of bytes), lists,
 * searches and downloads, and one large upload (`largeMiB`) a minute, until `until`. `record`,
 * when given, hears of every request that succeeded (its kind, when it started, how long it
 * took) and of every failure (kind `error`).
 */
export async function createLoad(
  target: Deployment,
  options: {
    clients: number;
    largeMiB: number;
    work: string;
    record?: (kind: RequestKind | 'error', startedAt: number, ms: number) => void;
  },
) {
  const record = options.record ?? (() => undefined);
  const png = await sharp({
    create: {
      width: 82,
      height: 82,
      channels: 3,
      background: '#808080',
      noise: { type: 'gaussian', mean: 128, sigma: 40 },
    },
  })
    .png({ compressionLevel: 0 })
    .toBuffer();
  const large = path.join(options.work, 'large.bin');
  await writeFile(large, Buffer.alloc(options.largeMiB * MiB, 7));
  const stats: LoadStats = {
    latencies: { upload: [], list: [], search: [], download: [], large: [] },
    errors: 0,
    lastError: '',
  };
  // The newest download URLs, a bounded ring.
  const downloads: string[] = [];
  let uploaded = 0;
  const headers = { ...target.auth, 'x-graphql-yoga-csrf': '1' };
  const url = (i: number) => target.urls[i % target.urls.length];

  const upload = async (i: number, body: ReturnType<typeof uploadBody>) => {
    const r = await send(`${url(i)}/graphql`, 'POST', body, headers);
    const asset = JSON.parse(r.text).data?.uploadAsset?.asset;
    if (r.status !== 200 || !asset) throw new Error(`upload ${r.status}: ${r.text.slice(0, 200)}`);
    downloads[uploaded++ % 1000] = asset.url.replace(/^http:\/\/[^/]+/, url(i));
  };
  const list = async (i: number, filter: string) => {
    const r = await fetch(`${url(i)}/graphql`, {
      method: 'POST',
      headers: { ...target.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ assets(first: 20${filter}) { edges { node { id title size tags } } } }` }),
      signal: AbortSignal.timeout(60_000),
    });
    const body = (await r.json()) as { data?: unknown };
    if (r.status !== 200 || !body.data) throw new Error(`list ${r.status}: ${JSON.stringify(body).slice(0, 200)}`);
  };
  const step = async (n: number, i: number) => {
    const kind = i % 8 === 0 ? 'upload' : i % 8 === 4 ? 'search' : i % 2 === 1 || uploaded === 0 ? 'list' : 'download';
    const startedAt = Date.now();
    const ms = await timed(async () => {
      if (kind === 'upload') {
        // One in sixteen an image (its thumbnail and placeholder made by a worker), the rest plain
        // bytes: at one in four, processing on two shared cores fell minutes behind the uploads.
        // Plain bytes of their own (a unique head): uploads of bytes already stored take another
        // path (kept once), and a load that repeats itself would change its mix as it runs.
        // 8–64 KiB: `i` is a multiple of 8 here, so the size steps with the upload's number.
        const plain = () => {
          const bytes = Buffer.alloc(8 * 1024 * (1 + ((i >> 3) % 8)), n + i);
          bytes.write(`soak ${n} ${i} ${Date.now()} ${Math.random()}\n`);
          return bytes;
        };
        const bytes = (n + i) % 16 === 0 ? withComment(png, `soak-${n}-${i}-${Math.random()}`) : plain();
        await upload(n, uploadBody(`soak-${n}-${i}.png`, [bytes], bytes.length));
      } else if (kind === 'list') await list(n, '');
      else if (kind === 'search') await list(n, ', filter: { search: "soak" }');
      else await drain(downloads[(n * 7 + i) % Math.min(uploaded, downloads.length)], target.auth);
    });
    stats.latencies[kind].push(ms);
    record(kind, startedAt, ms);
  };
  const guarded = async (work: () => Promise<void>) => {
    const startedAt = Date.now();
    try {
      await work();
    } catch (error) {
      stats.errors += 1; // counted and reported: the soak's result
      stats.lastError = String(error);
      record('error', startedAt, Date.now() - startedAt);
    }
  };

  return {
    stats,
    /**
     * Waits (polling once a second, at most `maxMs`) until no upload is waiting for or under
     * processing: the background work a load leaves behind is part of the load. Resolves
     * the milliseconds waited, or null when uploads were still processing at `maxMs`.
     */
    async settle(maxMs = 120_000): Promise<number | null> {
      const started = Date.now();
      while (Date.now() - started < maxMs) {
        const r = await fetch(`${url(0)}/graphql`, {
          method: 'POST',
          headers: { ...target.auth, 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ assets(filter: { status: [PROCESSING, WAITING] }) { totalCount } }' }),
        });
        const body = (await r.json()) as { data?: { assets: { totalCount: number } } };
        if (!body.data) throw new Error(`settle: ${JSON.stringify(body).slice(0, 200)}`);
        if (body.data.assets.totalCount === 0) return Date.now() - started;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      return null;
    },
    /** Runs the load until `until` (epoch ms); each loop also stops after `maxRequests`. */
    async run(until: number, maxRequests = 1_000_000) {
      const client = async (n: number) => {
        for (let i = 0; i < maxRequests && Date.now() < until; i++) await guarded(() => step(n, i));
      };
      const largeLoop = async () => {
        for (let minute = 0; minute < 60 && Date.now() < until; minute++) {
          const next = Date.now() + 60_000;
          await guarded(async () => {
            // A prefix of its own: the same bytes after it, a new file all the same.
            const prefix = Buffer.from(`soak large ${Date.now()} ${Math.random()}\n`);
            const size = prefix.length + options.largeMiB * MiB;
            const chunks = (async function* () {
              yield prefix;
              yield* createReadStream(large, { highWaterMark: MiB });
            })();
            const startedAt = Date.now();
            const ms = await timed(() => upload(0, uploadBody('large.bin', chunks, size)));
            stats.latencies.large.push(ms);
            record('large', startedAt, ms);
          });
          while (Date.now() < Math.min(next, until)) await new Promise((r) => setTimeout(r, 250));
        }
      };
      await Promise.all([...Array.from({ length: options.clients }, (_, n) => client(n)), largeLoop()]);
    },
  };
}
