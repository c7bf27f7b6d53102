import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JobRepository } from '../src/db/job-repository.js';
import type { JobRow } from '../src/db/types.js';
import { createJobRunner } from '../src/jobs/job-runner.js';

test('stop() waits for a job claimed while it was stopping, and claims nothing after', async () => {
  const events: string[] = [];
  let answerClaim!: (job: JobRow | undefined) => void;
  let claimed!: () => void;
  const claimStarted = new Promise<void>((resolve) => (claimed = resolve));
  let claims = 0;
  const jobs = {
    claim: () => {
      claims += 1;
      claimed();
      return new Promise<JobRow | undefined>((resolve) => (answerClaim = resolve));
    },
    complete: async () => {
      events.push('complete');
    },
    fail: async () => {
      events.push('fail');
    },
    extendLease: async () => undefined,
    hasDue: async () => false,
  } as unknown as JobRepository;
  const runner = createJobRunner({
    jobs,
    handlers: {
      'direct-upload': async () => undefined,
      extract: async () => {
        await new Promise((resolve) => setTimeout(resolve, 20)); // a job under way when stop() is called
        events.push('handled');
      },
      import: async () => assert.fail('no import job'),
      preview: async () => assert.fail('no preview job'),
    },
    onGiveUp: async () => assert.fail('nothing gives up'),
    concurrency: 1,
    pollMs: 10,
    clock: Date.now,
    logError: (error) => assert.fail(String(error)),
  });
  runner.start();
  await claimStarted;
  const stopped = runner.stop().then(() => events.push('stopped'));
  answerClaim({ id: 'j1', kind: 'extract', attempts: 1 } as JobRow);
  await stopped;
  assert.deepEqual(events, ['handled', 'complete', 'stopped']);
  await new Promise((resolve) => setTimeout(resolve, 50)); // five polls (pollMs 10) of a runner that still polled
  assert.equal(claims, 1, 'a stopped runner claims nothing more');
});
