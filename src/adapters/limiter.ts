/**
 * At most `max` tasks at once; the others wait their turn in order. A task's own clock
 * (its time limit) is started inside it, so a wait in line is never counted against it.
 * The line is as long as the callers make it: each caller is bounded itself (the job
 * runner by JOB_CONCURRENCY, renditions by RENDITION_QUEUE).
 */
export function createLimiter(max: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (running >= max) await new Promise<void>((resolve) => waiting.push(resolve));
      else running += 1;
      try {
        return await task();
      } finally {
        // The slot passes straight to the next in line, or is given back.
        const next = waiting.shift();
        if (next) next();
        else running -= 1;
      }
    },
    /** Tasks running now, and tasks waiting for a turn. */
    get load(): { running: number; waiting: number } {
      return { running, waiting: waiting.length };
    },
  };
}

export type Limiter = ReturnType<typeof createLimiter>;
