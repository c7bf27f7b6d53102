/**
 * `npm run bench:load [-- --quick]`: many concurrent clients mixing uploads, lists
 * and downloads against the production build for a minute (10 s with --quick).
 * Reports errors, latency percentiles per operation, and the server's memory.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { drain, memory, MiB, multipartBody, percentile, ROOT, send, serverArgs, start, timed } from './lib.js';

const quick = process.argv.includes('--quick');
const SECONDS = quick ? 10 : 60;
const CLIENTS = 32;

const work = await mkdtemp(path.join(os.tmpdir(), 'assetgate-load-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const url = `http://127.0.0.1:${port}`;
const server = await start(
  serverArgs(),
  {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: path.join(work, 'data'),
    PUBLIC_URL: url,
    RATE_LIMIT: '0',
    UPLOAD_CONCURRENCY: String(CLIENTS),
  },
  port,
);
try {
  const key = /\b(sk_live_default_[0-9a-f]{48})\b/.exec(server.output())![1];
  const auth = { authorization: `Bearer ${key}` };
  const files = await Promise.all(
    [1, 64, 1024].map(async (kib) => {
      const file = path.join(work, `f${kib}.bin`);
      await writeFile(file, Buffer.alloc(kib * 1024, kib % 251));
      return file;
    }),
  );
  const upload = (file: string) =>
    multipartBody(
      [
        [
          'operations',
          JSON.stringify({
            query: 'mutation($f: Upload!) { uploadAsset(input: { file: $f }) { asset { id url } } }',
            variables: { f: null },
          }),
        ],
        ['map', '{"0":["variables.f"]}'],
      ],
      [{ field: '0', path: file, name: path.basename(file) }],
    );
  const urls: string[] = [];
  const latencies: Record<string, number[]> = { upload: [], list: [], download: [] };
  let errors = 0;
  let peak = 0;
  const sampler = setInterval(() => {
    memory(server.child.pid!).then(
      (m) => (peak = Math.max(peak, m.rss)),
      () => undefined,
    );
  }, 200);
  const deadline = Date.now() + SECONDS * 1000;
  const client = async (n: number) => {
    for (let i = 0; Date.now() < deadline; i++) {
      const kind = i % 4 === 0 ? 'upload' : i % 4 === 1 || urls.length === 0 ? 'list' : 'download';
      try {
        latencies[kind].push(
          await timed(async () => {
            if (kind === 'upload') {
              const r = await send(`${url}/graphql`, 'POST', upload(files[(n + i) % files.length]), {
                ...auth,
                'x-graphql-yoga-csrf': '1',
              });
              const asset = JSON.parse(r.text).data?.uploadAsset?.asset;
              if (!asset) throw new Error(r.text);
              urls.push(asset.url);
            } else if (kind === 'list') {
              const r = await fetch(`${url}/graphql`, {
                method: 'POST',
                headers: { ...auth, 'content-type': 'application/json' },
                body: JSON.stringify({
                  query: '{ assets(first: 20) { totalCount edges { node { id title size tags } } } }',
                }),
              });
              if (!((await r.json()) as any).data) throw new Error('list failed');
            } else {
              await drain(urls[(n * 7 + i) % urls.length].replace(/^http:\/\/[^/]+/, url), auth);
            }
          }),
        );
      } catch {
        errors += 1; // counted and reported below: the load test's result
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));
  clearInterval(sampler);
  const lines = ['| operation | count | p50 ms | p95 ms | p99 ms |', '| --- | --- | --- | --- | --- |'];
  for (const [kind, values] of Object.entries(latencies)) {
    lines.push(
      `| ${kind} | ${values.length} | ${percentile(values, 50).toFixed(1)} | ${percentile(values, 95).toFixed(1)} | ${percentile(values, 99).toFixed(1)} |`,
    );
  }
  console.log(
    `\n${CLIENTS} clients for ${SECONDS} s: ${errors} errors; server peak RSS ${(peak / MiB).toFixed(0)} MiB\n\n${lines.join('\n')}`,
  );
  if (errors > 0) process.exitCode = 1;
} finally {
  await server.stop();
  await rm(work, { recursive: true, force: true });
}
