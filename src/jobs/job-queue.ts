import type { Alongside } from '../db/asset-repository.js';
import { nowIso } from '../db/database.js';
import type { JobRepository } from '../db/job-repository.js';
import type { JobKind } from '../db/types.js';

/**
 * How services queue work: inside the transaction that writes the asset, so a row
 * is never stored without its job, then a nudge to the runner to start at once.
 */
export function createJobQueue(jobs: JobRepository, clock: () => number) {
  let nudge: () => void = () => undefined;
  return {
    /** A write that queues `kind` for the asset in the asset's own transaction (`delayMs` from now). */
    alongside(kind: JobKind, delayMs = 0): Alongside {
      return async (trx, asset) => {
        await jobs.enqueue(
          kind,
          asset,
          nowIso(clock),
          trx,
          nowIso(() => clock() + delayMs),
        );
      };
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
