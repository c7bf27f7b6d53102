import { nowIso } from '../db/database.js';
import type { Repositories } from '../db/repositories.js';
import type { JobKind } from '../db/types.js';

/** A job to queue for an asset, `delayMs` from now. */
export interface QueuedJob {
  kind: JobKind;
  asset: { id: string; org_id: string };
  delayMs?: number;
}

/**
 * How services queue work: inside the transaction that writes the asset, so a row
 * is never stored without its job, then a nudge to the runner to start at once.
 */
export function createJobQueue(clock: () => number) {
  let nudge: () => void = () => undefined;
  return {
    /** Queues `job` with the repositories of the transaction that writes its asset. */
    async enqueue(tx: Repositories, { kind, asset, delayMs = 0 }: QueuedJob): Promise<void> {
      await tx.jobs.enqueue(kind, asset, { now: nowIso(clock), runAt: nowIso(() => clock() + delayMs) });
    },
    /** Tells the runner that work is waiting. */
    wake(): void {
      nudge();
    },
    /** Connects the runner (set once it exists). */
    onWake(fn: () => void): void {
      nudge = fn;
    },
  };
}

export type JobQueue = ReturnType<typeof createJobQueue>;
