import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLimiter } from '../src/adapters/limiter.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a limiter runs at most max tasks at once, in order, and a task’s time limit starts when it runs', async () => {
  const limiter = createLimiter(2);
  let now = 0;
  let most = 0;
  const started: number[] = [];
  // Ten tasks of 60 ms, two at a time: 300 ms in all. Each must end within 250 ms of its own
  // start, which a clock started when it was queued would break for the last ones.
  const tasks = Array.from({ length: 10 }, (_, i) =>
    limiter.run(async () => {
      started.push(i);
      most = Math.max(most, ++now);
      const deadline = AbortSignal.timeout(250);
      await sleep(60);
      now -= 1;
      if (deadline.aborted) throw new Error(`task ${i} passed its limit`);
      return i;
    }),
  );
  assert.deepEqual(limiter.load, { running: 2, waiting: 8 });
  assert.deepEqual(await Promise.all(tasks), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(most, 2);
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(limiter.load, { running: 0, waiting: 0 });
});

test('a failing task gives its slot back', async () => {
  const limiter = createLimiter(1);
  await assert.rejects(
    limiter.run(() => Promise.reject(new Error('broken'))),
    /broken/,
  );
  assert.equal(await limiter.run(async () => 'next'), 'next');
  assert.deepEqual(limiter.load, { running: 0, waiting: 0 });
});
