/**
 * `npm run bench:soak -- --scale [--minutes N]`: throughput over a long mixed load on the
 * scaled-out deployment: two gateways on PostgreSQL (a fresh schema), S3 (s3rver) and Redis,
 * the soak's 32 clients spread over both, for 10 minutes by default. Every request is counted
 * in the minute it started; per minute the soak records operations (every request that
 * succeeded), small uploads, and the p99 of each kind, and probes the deployment (the job
 * backlog from /metrics, live and dead rows from pg_stat_user_tables, CPU seconds by process:
 * where a decay would come from). The checks, against minute 2 (minute 1 warms up):
 *
 * - throughput holds: from minute 3 on, operations and uploads per minute are each at least
 *   85% of minute 2's (within 15%; a minute faster than minute 2 is no decay);
 * - latency holds: from minute 3 on, the p99 of uploads, lists, searches and downloads is each
 *   at most 1.5× minute 2's (the one large upload a minute is shown, not checked: one sample
 *   has no p99);
 * - no request failed.
 *
 * After the load it waits (at most SETTLE_MS) for the uploads to be processed and says how
 * long that took. Prints a table and writes bench/results/soak-scale-latest.json; the exit
 * code is 1 when a check is missed.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { memory, MiB, percentile, ROOT } from './lib.js';
import { createLoad, scaleGateways, type Probe, type RequestKind } from './soak-load.js';

/** The kinds whose p99 is checked minute by minute. */
const CHECKED = ['upload', 'list', 'search', 'download'] as const;
const THROUGHPUT_FLOOR = 0.85;
const P99_CEILING = 1.5;
/** The longest wait for the uploads' processing after the load: the run stays under 12 minutes. */
const SETTLE_MS = 30_000;

interface Minute {
  minute: number;
  operations: number;
  uploads: number;
  errors: number;
  p50: Partial<Record<RequestKind, number>>;
  p99: Partial<Record<RequestKind, number>>;
  /** The probe at the minute's end, and the CPU seconds each process used during the minute. */
  probe: Probe;
  cpuSeconds: Record<string, number>;
  rssMiB: number;
}

export async function soakScale({ minutes, clients }: { minutes: number; clients: number }): Promise<number> {
  const began = Date.now();
  const work = await mkdtemp(path.join(os.tmpdir(), 'assetgate-soak-client-'));
  const target = await scaleGateways(clients);
  const started = Date.now() - began;
  const buckets = Array.from({ length: minutes }, () => ({
    latencies: { upload: [], list: [], search: [], download: [], large: [] } as Record<RequestKind, number[]>,
    errors: 0,
  }));
  let t0 = 0;
  const record = (kind: RequestKind | 'error', at: number, ms: number) => {
    const bucket = buckets[Math.min(minutes - 1, Math.max(0, Math.floor((at - t0) / 60_000)))];
    if (kind === 'error') bucket.errors += 1;
    else bucket.latencies[kind].push(ms);
  };
  const probes: Probe[] = [];
  const rss: number[] = [];
  const sample = async () => {
    probes.push(await target.probe!());
    rss.push((await Promise.all(target.pids.map(async (pid) => (await memory(pid)).rss))).reduce((a, b) => a + b, 0));
    const p = probes.at(-1)!;
    console.error(
      `minute ${probes.length - 1}: queued ${p.queued}, oldest ${p.oldestAgeSeconds} s, ` +
        `jobs ${p.tables.jobs?.live ?? 0} live / ${p.tables.jobs?.dead ?? 0} dead, load average ${p.loadAverage.toFixed(1)}`,
    );
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const load = await createLoad(target, { clients, largeMiB: 64, work, record });
    await sample();
    t0 = Date.now();
    timer = setInterval(() => sample().catch((error) => console.error('probe:', error)), 60_000);
    await load.run(t0 + minutes * 60_000);
    clearInterval(timer);
    // The interval's last probe may have come a moment before the load's end, or not at all.
    while (probes.length < minutes + 1) await sample();
    const settled = await load.settle(SETTLE_MS);
    const after = await target.probe!();

    const table: Minute[] = buckets.map((bucket, i) => {
      const { latencies } = bucket;
      const [p50, p99]: Minute['p99'][] = [{}, {}];
      for (const [kind, values] of Object.entries(latencies) as [RequestKind, number[]][]) {
        if (values.length === 0) continue;
        p50[kind] = percentile(values, 50);
        p99[kind] = percentile(values, 99);
      }
      const probe = probes[i + 1];
      const cpuSeconds = Object.fromEntries(
        Object.entries(probe.cpuSeconds).map(([name, seconds]) => [name, seconds - (probes[i].cpuSeconds[name] ?? 0)]),
      );
      return {
        minute: i + 1,
        operations: Object.values(latencies).reduce((n, values) => n + values.length, 0),
        uploads: latencies.upload.length,
        errors: bucket.errors,
        p50,
        p99,
        probe,
        cpuSeconds,
        rssMiB: rss[i + 1] / MiB,
      };
    });
    const base = table[1] ?? table[0];
    const misses: string[] = [];
    for (const m of table.slice(2)) {
      if (m.operations < base.operations * THROUGHPUT_FLOOR) misses.push(`minute ${m.minute}: operations`);
      if (m.uploads < base.uploads * THROUGHPUT_FLOOR) misses.push(`minute ${m.minute}: uploads`);
      for (const kind of CHECKED) {
        if ((m.p99[kind] ?? Infinity) > (base.p99[kind] ?? 0) * P99_CEILING)
          misses.push(`minute ${m.minute}: ${kind} p99`);
      }
    }
    const errors = table.reduce((n, m) => n + m.errors, 0);
    const checked = minutes >= 3;
    const throughputOk = checked && !misses.some((miss) => /operations|uploads/.test(miss));
    const latencyOk = checked && !misses.some((miss) => /p99/.test(miss));

    const fmt = (n: number | undefined, digits = 0) => (n === undefined ? '–' : n.toFixed(digits));
    const ratio = (n: number, of: number) => (of > 0 ? (n / of).toFixed(2) : '–');
    const lines = [
      '| minute | operations | ÷ minute 2 | uploads | ÷ minute 2 | p99 upload ms | p99 list ms | p99 search ms | p99 download ms | large upload s | errors |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...table.map(
        (m) =>
          `| ${m.minute} | ${m.operations} | ${ratio(m.operations, base.operations)} | ${m.uploads} | ${ratio(m.uploads, base.uploads)} | ` +
          `${CHECKED.map((kind) => fmt(m.p99[kind])).join(' | ')} | ${fmt(m.p99.large === undefined ? undefined : m.p99.large / 1000, 1)} | ${m.errors} |`,
      ),
    ];
    const names = Object.keys(table[0].cpuSeconds);
    // What the deployment (gateways, PostgreSQL, s3rver; not the load) spent per request: the
    // cost of an operation whatever share of the shared cores the stack was given that minute.
    const stackCpuMs = (m: Minute) =>
      (Object.entries(m.cpuSeconds)
        .filter(([name]) => !name.startsWith('load'))
        .reduce((sum, [, seconds]) => sum + seconds, 0) *
        1000) /
      Math.max(1, m.operations);
    const behind = [
      `| minute | jobs queued | oldest job s | jobs live / dead rows | assets dead rows | ${names.map((n) => `CPU s ${n}`).join(' | ')} | stack CPU ms per operation | RSS MiB (both) | load average |`,
      `| --- | --- | --- | --- | --- | ${names.map(() => '---').join(' | ')} | --- | --- | --- |`,
      ...table.map(
        (m) =>
          `| ${m.minute} | ${m.probe.queued} | ${fmt(m.probe.oldestAgeSeconds)} | ${m.probe.tables.jobs?.live ?? 0} / ${m.probe.tables.jobs?.dead ?? 0} | ` +
          `${m.probe.tables.assets?.dead ?? 0} | ${names.map((n) => fmt(m.cpuSeconds[n], 1)).join(' | ')} | ${fmt(stackCpuMs(m))} | ${fmt(m.rssMiB)} | ${fmt(m.probe.loadAverage, 1)} |`,
      ),
    ];
    const wholeSeconds = (Date.now() - began) / 1000;
    const summary = [
      `${clients} clients over two gateways on PostgreSQL + S3 (s3rver) + Redis, ${minutes} min of load: ${errors} errors` +
        `; uploads processed ${settled === null ? `not within ${SETTLE_MS / 1000} s` : `${(settled / 1000).toFixed(0)} s`} after the load` +
        ` (${after.queued} jobs queued then)`,
      checked
        ? `throughput: every minute from the 3rd at least ${THROUGHPUT_FLOOR} of minute 2 (operations and uploads): ${throughputOk ? 'met' : 'missed'}`
        : 'throughput: not checked (fewer than 3 minutes)',
      checked
        ? `p99: every minute from the 3rd within ${P99_CEILING}× of minute 2 (${CHECKED.join(', ')}): ${latencyOk ? 'met' : 'missed'}`
        : 'p99: not checked (fewer than 3 minutes)',
      ...(misses.length ? [`missed: ${misses.join('; ')}`] : []),
      `the whole soak took ${(wholeSeconds / 60).toFixed(1)} min (starting the deployment ${(started / 1000).toFixed(0)} s)`,
    ];
    console.log(`\n${lines.join('\n')}\n\n${behind.join('\n')}\n\n${summary.join('\n')}`);
    await mkdir(path.join(ROOT, 'bench/results'), { recursive: true });
    await writeFile(
      path.join(ROOT, 'bench/results/soak-scale-latest.json'),
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          mode: 'scale',
          minutes,
          clients,
          machine: { cpus: os.cpus().length, memory: os.totalmem(), node: process.version },
          minutesTable: table,
          before: probes[0],
          afterSettle: after,
          checks: {
            throughput: { floor: THROUGHPUT_FLOOR, met: throughputOk },
            p99: { ceiling: P99_CEILING, kinds: CHECKED, met: latencyOk },
            misses,
          },
          errors,
          settledSeconds: settled === null ? null : settled / 1000,
          wholeSeconds,
        },
        null,
        2,
      )}\n`,
    );
    return errors > 0 || !throughputOk || !latencyOk ? 1 : 0;
  } finally {
    clearInterval(timer);
    await target.stop();
    await rm(work, { recursive: true, force: true });
  }
}
