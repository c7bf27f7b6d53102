/**
 * The line new renditions wait in past RENDITION_QUEUE (RENDITION_QUEUE_WAIT), driven step by
 * step: each transform and each lookup of a kept rendition ends when the test says so. A
 * place freed goes to the first in line, whatever that request does with it; never more than
 * RENDITION_QUEUE transforms run, a request arriving later waiting behind the line; a request
 * whose caller went away leaves it.
 */
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import { describe, test } from 'node:test';
import type { Readable } from 'node:stream';
import type { AssetRow, RenditionRow } from '../src/db/types.js';
import type { RenderRequest } from '../src/jobs/extract-types.js';
import { RenditionService, type Variant } from '../src/services/delivery/renditions.js';

/** A promise and its resolver. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

const ASSET = {
  id: '0d3f5a9e-4c1b-4e8a-9f2d-6b7c8a9e0f1a',
  org_id: 'acme',
  blob_key: 'photo-original',
  checksum: 'sha256:0123456789abcdef',
} as AssetRow;

const variant = (width: number): Variant => ({
  width,
  height: null,
  fit: 'inside',
  format: 'png',
  quality: 100,
  focal: null,
  preview: null,
});

/**
 * A rendition service over fakes: `finish(width)` ends that width's transform, `holdFind(width)`
 * makes the next lookup of that width wait until the returned function is called.
 */
function line({ queueLimit, queueWaitMs }: { queueLimit: number; queueWaitMs: number }) {
  const kept = new Map<string, RenditionRow>();
  const transforms = new Map<number, ReturnType<typeof deferred<void>>>();
  const heldFinds = new Map<number, { entered: () => void; released: Promise<void> }>();
  const started: number[] = [];
  let running = 0;
  let mostRunning = 0;
  const widthOf = (name: string) => Number(name.split('x')[0]);
  const service = new RenditionService({
    renditions: {
      async find(_assetId: string, name: string) {
        const held = heldFinds.get(widthOf(name));
        if (held) {
          heldFinds.delete(widthOf(name));
          held.entered();
          await held.released;
        }
        return kept.get(name);
      },
      async insert(row: RenditionRow) {
        if (!kept.has(row.variant)) kept.set(row.variant, row);
        return kept.get(row.variant);
      },
      async remove() {
        return [];
      },
    } as never,
    blobs: {
      localPath: () => '/dev/null',
      async put(_key: string, body: Readable) {
        for await (const _ of body);
        return { size: 0 };
      },
      async delete() {
        return true;
      },
      async head() {
        return null;
      },
    } as never,
    pool: {
      async render(request: RenderRequest) {
        const width = request.width!;
        started.push(width);
        running += 1;
        mostRunning = Math.max(mostRunning, running);
        const done = deferred();
        transforms.set(width, done);
        await done.promise;
        running -= 1;
        await fsp.writeFile(request.out, 'png');
        return { width, height: width, animated: false, frames: 1 };
      },
    } as never,
    cache: { admit: async () => {}, used: async () => {}, evict: async () => {} } as never,
    widths: [64, 128, 256, 512, 1024],
    queueLimit,
    queueWaitMs,
    maxImagePixels: 1e8,
    clock: () => Date.now(),
  });
  return {
    service,
    started,
    get mostRunning() {
      return mostRunning;
    },
    get: (width: number, signal?: AbortSignal) => service.get(ASSET, variant(width), { signal }),
    /** Ends the transform of `width` once it has started (within 5 s). */
    async finish(width: number) {
      const deadline = performance.now() + 5000;
      while (!transforms.has(width)) {
        if (performance.now() > deadline) throw new Error(`the transform of ${width} never started`);
        await tick();
      }
      transforms.get(width)!.resolve();
      transforms.delete(width);
    },
    /** Holds the next lookup of `width`: `entered` settles when it is made, `release` ends it. */
    holdFind(width: number): { entered: Promise<void>; release: () => void } {
      const entered = deferred();
      const release = deferred();
      heldFinds.set(width, { entered: entered.resolve, released: release.promise });
      return { entered: entered.promise, release: release.resolve };
    },
    async untilWaiting(n: number) {
      const deadline = performance.now() + 5000;
      while (service.waiting < n) {
        if (performance.now() > deadline) throw new Error(`${service.waiting} waiting, not ${n}`);
        await tick();
      }
    },
  };
}

/** What a request came to: its rendition's width, or its error's code. */
const outcome = (request: Promise<RenditionRow>) =>
  request.then(
    (row) => row.width,
    (error: { code?: string }) => error.code ?? error,
  );

describe('the rendition line', () => {
  test('a waiter that finds its rendition made meanwhile hands its place to the next in line', async () => {
    const l = line({ queueLimit: 1, queueWaitMs: 3000 });
    const first = outcome(l.get(1024));
    while (l.service.inFlight === 0) await tick();
    // Two requests for one new rendition wait in line (it is not being made yet), then one for another.
    const same = [outcome(l.get(64))];
    await l.untilWaiting(1);
    same.push(outcome(l.get(64)));
    await l.untilWaiting(2);
    const other = outcome(l.get(128));
    await l.untilWaiting(3);
    await l.finish(1024);
    await l.finish(64);
    // The second request for 64 finds it kept and needs no place: 128 gets it, long before its wait ends.
    const started = performance.now();
    await l.finish(128);
    assert.deepEqual(await Promise.all([first, ...same, other]), [1024, 64, 64, 128]);
    assert.ok(performance.now() - started < 1000, 'the request for 128 was not left waiting out its bound');
    assert.deepEqual(l.started, [1024, 64, 128]);
    assert.equal(l.service.waiting, 0);
  });

  test('never more transforms than RENDITION_QUEUE, even while a woken request looks for a kept rendition', async () => {
    const l = line({ queueLimit: 1, queueWaitMs: 3000 });
    const first = outcome(l.get(1024));
    while (l.service.inFlight === 0) await tick();
    const waiter = outcome(l.get(64));
    await l.untilWaiting(1);
    // Woken, the waiter looks for a kept 64 first; that lookup is slow.
    const find = l.holdFind(64);
    await l.finish(1024);
    await find.entered;
    // A new request meanwhile finds no place: the one freed is the waiter's.
    const late = outcome(l.get(128));
    await tick();
    find.release();
    await l.finish(64);
    await l.finish(128);
    assert.deepEqual(await Promise.all([first, waiter, late]), [1024, 64, 128]);
    assert.equal(l.mostRunning, 1, 'one transform at a time with RENDITION_QUEUE=1');
    assert.deepEqual(l.started, [1024, 64, 128]);
  });

  test('a waiter whose caller went away leaves the line, and its place goes to the next', async () => {
    const l = line({ queueLimit: 1, queueWaitMs: 3000 });
    const first = outcome(l.get(1024));
    while (l.service.inFlight === 0) await tick();
    const gone = new AbortController();
    const abandoned = outcome(l.get(64, gone.signal));
    await l.untilWaiting(1);
    const waiter = outcome(l.get(128));
    await l.untilWaiting(2);
    gone.abort();
    await tick();
    assert.equal(l.service.waiting, 1, 'the request whose caller went away left the line at once');
    assert.equal(await abandoned, 'SERVICE_UNAVAILABLE');
    await l.finish(1024);
    await l.finish(128);
    assert.deepEqual(await Promise.all([first, waiter]), [1024, 128]);
    assert.deepEqual(l.started, [1024, 128], 'nothing is made for a caller that went away');
  });

  test('past the line, and past the wait, a new rendition is refused with SERVICE_UNAVAILABLE', async () => {
    const l = line({ queueLimit: 1, queueWaitMs: 100 });
    const first = outcome(l.get(1024));
    while (l.service.inFlight === 0) await tick();
    const waiting = [64, 128, 256, 512].map((w) => outcome(l.get(w)));
    await l.untilWaiting(4);
    assert.equal(await outcome(l.get(1023)), 'SERVICE_UNAVAILABLE', 'the line is full');
    assert.deepEqual(
      await Promise.all(waiting),
      [4, 4, 4, 4].map(() => 'SERVICE_UNAVAILABLE'),
    );
    assert.equal(l.service.waiting, 0);
    await l.finish(1024);
    assert.equal(await first, 1024);
    // The place is free again: a new rendition starts at once.
    const again = outcome(l.get(64));
    await l.finish(64);
    assert.equal(await again, 64);
    assert.deepEqual(l.started, [1024, 64]);
  });
});
