import type { JobRepository } from '../db/job-repository.js';
import { nowIso } from '../db/database.js';
import type { Tenant } from '../db/types.js';

/** How far behind processing is, as `/metrics`, `/readyz` and `viewer.processing` report it. */
export interface BacklogFigures {
  /** Jobs waiting to run (due now or later: retries wait for their time). */
  queued: number;
  /** Jobs running now, on every gateway. */
  running: number;
  /** Seconds the longest-waiting due job has waited; 0 when none is due. */
  oldestAgeSeconds: number;
}

/**
 * Reads the backlog of the shared queue, for every org or for one tenant. One query: the
 * same figures for every gateway, whichever runs the jobs.
 */
export function createBacklog(jobs: JobRepository, clock: () => number) {
  return async (tenant?: Tenant): Promise<BacklogFigures> => {
    const now = clock();
    const backlog = await jobs.backlog(
      nowIso(() => now),
      tenant,
    );
    const oldest = backlog.oldestDueAt === null ? now : Date.parse(backlog.oldestDueAt);
    return {
      queued: backlog.queued,
      running: backlog.running,
      oldestAgeSeconds: Math.max(0, Math.round((now - oldest) / 100) / 10),
    };
  };
}

/** Reads the backlog figures; see `createBacklog`. */
export type Backlog = ReturnType<typeof createBacklog>;
