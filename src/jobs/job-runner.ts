import { randomUUID } from 'node:crypto';
import { nowIso } from '../db/database.js';
import type { JobRepository } from '../db/job-repository.js';
import type { JobKind, JobRow } from '../db/types.js';
import type { Logger } from '../observability/logger.js';

/** Options of `createJobRunner`. */
export interface JobRunnerOptions {
  jobs: JobRepository;
  /** A handler may answer `{ retryAt }`: not yet (nothing failed); the job runs again then, no attempt spent. */
  handlers: Record<JobKind, (job: JobRow) => Promise<void | { retryAt: number }>>;
  /** Called when a job's retries are spent, with its last error. */
  onGiveUp: (job: JobRow, error: unknown) => Promise<void>;
  /** Jobs run at once by this process. @default 2 */
  concurrency: number;
  /** Attempts before giving up. @default 5 */
  maxAttempts?: number;
  /** First retry delay; doubles per attempt, at most 10 minutes. @default 1000 */
  backoffMs?: number;
  /** How long a claim holds without a heartbeat; a dead worker's job is taken again after it. @default 60000 */
  leaseMs?: number;
  /** How often the queue is looked at when nothing woke the runner. @default 500 */
  pollMs?: number;
  clock: () => number;
  logError: (error: unknown) => void;
  /** Where each job's start, end and failure are logged, with its asset id. */
  logger?: Logger;
  /** Hears each job run: its outcome and how long it took. */
  observe?: (job: JobRow, outcome: JobOutcome, seconds: number) => void;
}

/** How one run of a job ended: done, not yet (deferred), failed and to be tried again, or failed for good. */
export type JobOutcome = 'done' | 'deferred' | 'retry' | 'failed';

/**
 * Runs durable jobs from the database: claims due jobs (or jobs whose worker died),
 * runs their handler with a heartbeat on the lease, retries failures with
 * exponential backoff, and gives up after `maxAttempts`. Handlers are idempotent:
 * a job may run again after a crash.
 */
export function createJobRunner(options: JobRunnerOptions) {
  const { jobs, handlers, clock, logError } = options;
  const maxAttempts = options.maxAttempts ?? 5;
  const backoffMs = options.backoffMs ?? 1000;
  const leaseMs = options.leaseMs ?? 60_000;
  const worker = `worker-${randomUUID().slice(0, 8)}`;
  let active = 0;
  let running = false;
  // The tick under way: stop() waits for it, since it may be about to start a job it claimed.
  let ticking: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const inFlight = new Set<Promise<void>>();

  const iso = (ms: number) => nowIso(() => ms);

  async function run(job: JobRow): Promise<void> {
    const heartbeat = setInterval(() => {
      jobs.extendLease(job.id, worker, iso(clock() + leaseMs)).catch(logError);
    }, leaseMs / 3).unref();
    const started = performance.now();
    const about = { jobId: job.id, kind: job.kind, assetId: job.asset_id, attempt: job.attempts };
    const ended = (outcome: JobOutcome, extra: Record<string, unknown> = {}) => {
      const seconds = (performance.now() - started) / 1000;
      options.observe?.(job, outcome, seconds);
      const line = { ...about, outcome, ms: Math.round(seconds * 1000), ...extra };
      if (outcome === 'retry' || outcome === 'failed') options.logger?.warn(line, 'job failed');
      else options.logger?.info(line, 'job ended');
    };
    options.logger?.debug(about, 'job started');
    try {
      const outcome = await handlers[job.kind](job);
      if (outcome) await jobs.defer(job.id, iso(outcome.retryAt), iso(clock()));
      else await jobs.complete(job.id, iso(clock()));
      ended(outcome ? 'deferred' : 'done');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (job.attempts >= maxAttempts) {
        await jobs.fail(job.id, { error: message, retryAt: null, now: iso(clock()) });
        await options.onGiveUp(job, error);
        ended('failed', { error: message });
      } else {
        const delay = Math.min(backoffMs * 2 ** (job.attempts - 1), 600_000);
        await jobs.fail(job.id, { error: message, retryAt: iso(clock() + delay), now: iso(clock()) });
        ended('retry', { error: message, retryInMs: delay });
      }
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** Claims and starts due jobs until the concurrency is used or nothing is due; one tick at a time. */
  function tick(): Promise<void> {
    if (!running) return Promise.resolve();
    ticking ??= claimAndStart().finally(() => {
      ticking = undefined;
    });
    return ticking;
  }

  async function claimAndStart(): Promise<void> {
    try {
      while (running && active < options.concurrency) {
        const now = clock();
        const job = await jobs.claim(worker, iso(now), iso(now + leaseMs));
        if (!job) break;
        active += 1;
        const promise = run(job)
          .catch(logError)
          .finally(() => {
            active -= 1;
            inFlight.delete(promise);
            void tick();
          });
        inFlight.add(promise);
      }
    } catch (error) {
      logError(error);
    }
  }

  return {
    start(): void {
      if (running) return;
      running = true;
      timer = setInterval(() => void tick(), options.pollMs ?? 500).unref();
      void tick();
    },
    /** Looks at the queue now: call after enqueueing. */
    wake(): void {
      void tick();
    },
    /**
     * Stops claiming and waits for running jobs to finish, a job claimed just now included;
     * with `deadlineMs`, at most that long: the leases of jobs still running then go back
     * to the queue, due at once, for another worker (or this one, restarted) to take.
     */
    async stop(deadlineMs?: number): Promise<void> {
      running = false;
      clearInterval(timer);
      await ticking;
      if (deadlineMs === undefined) {
        await Promise.all(inFlight);
        return;
      }
      let timeout: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        Promise.all(inFlight).then(() => true),
        new Promise<false>((resolve) => (timeout = setTimeout(() => resolve(false), deadlineMs))),
      ]);
      clearTimeout(timeout);
      if (!finished) {
        const released = await jobs.releaseAll(worker, iso(clock()));
        options.logger?.warn({ released }, 'jobs still running at shutdown went back to the queue');
      }
    },
    /** Resolves once no job is running and none is due now. For tests and shutdown. */
    async idle(timeoutMs = 30_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        await tick();
        await Promise.all(inFlight);
        // A tick may be between claiming a job and starting it: not idle yet.
        if (ticking === undefined && active === 0 && !(await jobs.hasDue(iso(clock())))) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error('jobs did not finish in time');
    },
  };
}

export type JobRunner = ReturnType<typeof createJobRunner>;
