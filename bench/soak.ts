/**
 * `npm run bench:soak [-- --minutes N]`: memory over a long mixed load (`--scale`: throughput
 * on two gateways on PostgreSQL + S3 + Redis instead, see bench/soak-scale.ts). 32 clients upload
 * small files (images to process and plain bytes), list, search and download, with one
 * large upload a minute, for 10 minutes, against the production build on loopback. The
 * server's RSS (VmRSS from /proc) is sampled every 10 s, printed as a table and written to
 * bench/results/soak-latest.json.
 *
 * The load runs in two parts: a warm-up (the first fifth: 2 of 10 minutes) and the rest.
 * After each, the soak waits for the uploads to be processed (the background work a load
 * leaves is part of it; at most 20 s after the warm-up, after the load what WAITS_MS leaves),
 * then 25 s without requests. The two checks:
 *
 * - steady: over the last half of the load (the last 5 minutes) RSS grows by under 5%
 *   (the median of the window's last three samples against its first three, so one sample
 *   caught in a collection decides nothing);
 * - returns: after the load, quiet, RSS is within 15% of the quiet RSS after the warm-up.
 *   That baseline is the honest one: the process has by then loaded its code, compiled its
 *   hot paths and filled its bounded caches, as any server soon after start; what the
 *   check asks is that the eight minutes after leave nothing behind. The RSS before any
 *   load is printed beside it.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { memory, median, MiB, percentile, ROOT } from './lib.js';
import { createLoad, DEPLOYMENTS } from './soak-load.js';

const CLIENTS = 32;
const SAMPLE_MS = 10_000;
/**
 * Quiet after each part, once its uploads are processed: longer than EXTRACT_IDLE_TIMEOUT
 * and than twice IDLE_GC_DELAY (their defaults), so idle workers have exited and a
 * collection has run.
 */
const PAUSE_MS = 25_000;
/**
 * All the waits outside the load (both settles and both pauses) share this, so the whole
 * soak stays under 12 minutes: 10 of load, this, and the start and stop. A settle cut
 * short leaves work in the quiet sample, which can only make the checks harder to pass.
 */
const WAITS_MS = 105_000;

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}
const minutes = Number(flag('minutes') ?? 10);
if (!(minutes > 0 && minutes <= 60)) {
  console.error(`--minutes takes a number of minutes up to 60, not ${flag('minutes')}`);
  process.exit(2);
}
const mode = process.argv.includes('--scale') ? 'scale' : (flag('mode') ?? 'single');
const deploy = DEPLOYMENTS[mode];
if (!deploy) {
  console.error(`--mode: one of ${Object.keys(DEPLOYMENTS).join(', ')}`);
  process.exit(2);
}
if (mode === 'scale') {
  // Its own run and checks (throughput and p99 minute by minute): bench/soak-scale.ts.
  const { soakScale } = await import('./soak-scale.js');
  process.exit(await soakScale({ minutes, clients: CLIENTS }));
}

/** How long the uploads took to be processed; null: not within the wait. */
const settledText = (ms: number | null) => (ms === null ? 'not yet (its wait ran out)' : `${(ms / 1000).toFixed(0)} s`);

interface Sample {
  seconds: number;
  phase: string;
  rssMiB: number;
  /** Jobs waiting or running (`viewer { processing }`): a quiet sample is only quiet at 0. */
  backlog: number;
}

const work = await mkdtemp(path.join(os.tmpdir(), 'assetgate-soak-client-'));
const target = await deploy(CLIENTS);
const samples: Sample[] = [];
const t0 = Date.now();
let phase = 'idle';
const backlog = async (): Promise<number> => {
  const r = await fetch(`${target.urls[0]}/graphql`, {
    method: 'POST',
    headers: { ...target.auth, 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ viewer { processing { queued running } } }' }),
  });
  const body = (await r.json()) as { data?: { viewer: { processing: { queued: number; running: number } } } };
  if (!body.data) throw new Error(`backlog: ${JSON.stringify(body).slice(0, 200)}`);
  return body.data.viewer.processing.queued + body.data.viewer.processing.running;
};
const sample = async () => {
  const rss = await Promise.all(target.pids.map(async (pid) => (await memory(pid)).rss));
  const taken = {
    seconds: Math.round((Date.now() - t0) / 1000),
    phase,
    rssMiB: rss.reduce((a, b) => a + b, 0) / MiB,
    backlog: await backlog(),
  };
  samples.push(taken);
  // Progress on stderr; the table comes at the end.
  console.error(`${taken.seconds} s ${taken.phase}: ${taken.rssMiB.toFixed(0)} MiB, backlog ${taken.backlog}`);
};
let timer: NodeJS.Timeout | undefined;
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
try {
  const load = await createLoad(target, { clients: CLIENTS, largeMiB: 64, work });
  await wait(1000);
  await sample();
  timer = setInterval(() => sample().catch((error) => console.error('sample:', error)), SAMPLE_MS);
  const loadMs = minutes * 60_000;
  const warmupMs = loadMs / 5;
  phase = 'warm-up';
  await load.run(Date.now() + warmupMs);
  phase = 'pause';
  const waitStarted = Date.now();
  const settledWarmup = await load.settle(20_000);
  await wait(PAUSE_MS);
  await sample();
  const warm = samples.at(-1)!;
  const warmedAt = Date.now();
  phase = 'load';
  const windowStart = Date.now() + (loadMs - warmupMs) - loadMs / 2;
  await load.run(Date.now() + loadMs - warmupMs);
  await sample();
  const loadEnd = samples.at(-1)!;
  phase = 'after';
  // What the warm-up's settle and pause left of the waits, less the pause to come.
  const warmupWaits = warmedAt - waitStarted;
  const settledLoad = await load.settle(Math.max(0, WAITS_MS - warmupWaits - PAUSE_MS));
  await wait(PAUSE_MS);
  clearInterval(timer);
  await sample();
  const end = samples.at(-1)!;

  const window = samples.filter((s) => s.phase === 'load' && t0 + s.seconds * 1000 >= windowStart);
  const head = median(window.slice(0, 3).map((s) => s.rssMiB));
  const tail = median(window.slice(-3).map((s) => s.rssMiB));
  const growth = tail / head - 1;
  const returned = end.rssMiB / warm.rssMiB - 1;
  const steadyOk = window.length >= 2 && growth < 0.05;
  // Quiet means no request and no job: a sample taken while the backlog is still processed
  // measures the processing, not what the load left behind.
  const quiet = warm.backlog === 0 && end.backlog === 0;
  const returnsOk = quiet && returned <= 0.15;
  const { stats } = load;

  const lines = ['| s | phase | RSS MiB | backlog |', '| --- | --- | --- | --- |'];
  for (const s of samples) lines.push(`| ${s.seconds} | ${s.phase} | ${s.rssMiB.toFixed(0)} | ${s.backlog} |`);
  const ops = ['| operation | count | p50 ms | p99 ms |', '| --- | --- | --- | --- |'];
  for (const [kind, values] of Object.entries(stats.latencies)) {
    if (values.length === 0) continue;
    ops.push(
      `| ${kind} | ${values.length} | ${percentile(values, 50).toFixed(1)} | ${percentile(values, 99).toFixed(1)} |`,
    );
  }
  const fmt = (n: number) => n.toFixed(0);
  const summary = [
    `${CLIENTS} clients, ${minutes} min of load (${mode}): ${stats.errors} errors${stats.errors ? ` (last: ${stats.lastError})` : ''}; ` +
      `uploads processed ${settledText(settledWarmup)} after the warm-up, ${settledText(settledLoad)} after the load`,
    `RSS before any load ${fmt(samples[0].rssMiB)} MiB; quiet after the warm-up ${fmt(warm.rssMiB)} MiB; ` +
      `peak ${fmt(Math.max(...samples.map((s) => s.rssMiB)))} MiB; at the end of the load ${fmt(loadEnd.rssMiB)} MiB; ` +
      `quiet after it ${fmt(end.rssMiB)} MiB; jobs left then: ${warm.backlog} after the warm-up, ${end.backlog} after the load`,
    `steady: the last half of the load grew ${(growth * 100).toFixed(1)}% (${fmt(head)} → ${fmt(tail)} MiB; under 5%): ${steadyOk ? 'met' : 'missed'}`,
    `returns: quiet after the load ${(returned * 100).toFixed(1)}% from quiet after the warm-up (within 15%, no job left in either): ${returnsOk ? 'met' : 'missed'}` +
      ` (${((end.rssMiB / samples[0].rssMiB - 1) * 100).toFixed(1)}% from before any load)`,
  ];
  console.log(`\n${lines.join('\n')}\n\n${ops.join('\n')}\n\n${summary.join('\n')}`);
  await mkdir(path.join(ROOT, 'bench/results'), { recursive: true });
  await writeFile(
    path.join(ROOT, 'bench/results/soak-latest.json'),
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        mode,
        minutes,
        clients: CLIENTS,
        machine: { cpus: os.cpus().length, memory: os.totalmem(), node: process.version },
        samples,
        rssMiB: {
          beforeLoad: samples[0].rssMiB,
          afterWarmup: warm.rssMiB,
          endOfLoad: loadEnd.rssMiB,
          after: end.rssMiB,
        },
        steady: { windowHeadMiB: head, windowTailMiB: tail, growth, met: steadyOk },
        returns: { fromWarmup: returned, met: returnsOk },
        requests: Object.fromEntries(
          Object.entries(stats.latencies).map(([k, v]) => [
            k,
            { count: v.length, p50: percentile(v, 50), p99: percentile(v, 99) },
          ]),
        ),
        errors: stats.errors,
        settledSeconds: {
          afterWarmup: settledWarmup === null ? null : settledWarmup / 1000,
          afterLoad: settledLoad === null ? null : settledLoad / 1000,
        },
      },
      null,
      2,
    )}\n`,
  );
  if (stats.errors > 0 || !steadyOk || !returnsOk) process.exitCode = 1;
} finally {
  clearInterval(timer);
  await target.stop();
  await rm(work, { recursive: true, force: true });
}
