import type { BlobStore } from '../blob/index.js';
import type { Config } from '../config.js';
import type { UnitOfWork } from '../db/repositories.js';
import { createJobRunner, type JobRunner } from '../jobs/job-runner.js';
import { createSweeper, type Sweeper } from '../services/lifecycle/sweeper.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Services } from '../schema/context.js';
import type { Feature } from './feature.js';
import { jobHandlersOf } from './services.js';

/** Background work: jobs and webhook deliveries (on gateways that run jobs), and the sweep. */
export interface BackgroundFeature extends Feature {
  /** Background jobs of this process; null when it runs none. */
  jobs: JobRunner | null;
  /** Housekeeping, run every SWEEP_INTERVAL; callable directly. */
  sweeper: Sweeper;
}

/** What the background work is built from. */
export interface BackgroundOptions {
  config: Config;
  services: Services;
  repos: UnitOfWork;
  blobs: BlobStore;
  metrics: Metrics;
  logger: Logger;
  logError: (error: unknown) => void;
  clock: () => number;
  /** Run background jobs here. @default true when JOB_CONCURRENCY > 0 */
  runJobs?: boolean;
}

/** Builds the job runner and the sweeper; `start` sets them going, `close` waits for them. */
export function createBackground(options: BackgroundOptions): BackgroundFeature {
  const { config, services, repos, blobs, metrics, logger, logError, clock } = options;
  const jobs =
    (options.runJobs ?? config.jobConcurrency > 0)
      ? createJobRunner({
          jobs: repos.jobs,
          handlers: jobHandlersOf(services),
          onGiveUp: (job, error) => services.processing.giveUp(job, error),
          concurrency: Math.max(1, config.jobConcurrency),
          clock,
          logError,
          logger,
          observe: (job, outcome, seconds) => metrics.job(job.kind, outcome, seconds),
        })
      : null;
  const sweeper = createSweeper({
    repos,
    blobs,
    grace: config.uploadSweepGrace,
    trashRetention: config.trashRetention,
    clock,
  });
  // Every sweep is quick; the one at start (what a crash left) and every 60th after it also check the store deeply.
  let sweeps = 0;
  let sweeping: Promise<unknown> = Promise.resolve();
  let sweepTimer: NodeJS.Timeout | undefined;
  const sweep = () => {
    sweeping = sweeper.sweep({ deep: sweeps++ % 60 === 0 }).catch(logError);
  };
  return {
    jobs,
    sweeper,
    start() {
      if (jobs) {
        services.queue.onWake(() => jobs.wake());
        jobs.start();
        // Webhook deliveries are background work too: sent by the gateways that run jobs.
        services.webhooks.start();
      }
      if (config.sweepInterval > 0) {
        sweep();
        sweepTimer = setInterval(sweep, config.sweepInterval * 1000).unref();
      }
    },
    async close({ jobDeadlineMs, requestsDone } = {}) {
      clearInterval(sweepTimer);
      await sweeping;
      // Jobs and webhook attempts share the deadline; what is still under way then goes back to be
      // retried. The requests under way finish meanwhile: what closes after this needs them done.
      await Promise.all([jobs?.stop(jobDeadlineMs), services.webhooks.stop(jobDeadlineMs), requestsDone]);
    },
  };
}
