import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { AssetRow } from '../src/db/types.js';
import { BadUserInputError, PayloadTooLargeError } from '../src/errors.js';
import { type BatchFile, uploadBatch } from '../src/services/uploads/batch-upload.js';

/** A batch file whose bytes are `text`, opened when the batch asks for it (`opened` records the order). */
function file(name: string, text: string, opened: string[]) {
  return async (): Promise<BatchFile> => {
    opened.push(name);
    return { filename: name, stream: Readable.from([Buffer.from(text)]) };
  };
}

async function read(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk;
  return text;
}

const row = (id: string) => ({ id }) as AssetRow;

test('every file succeeds or fails on its own, with its code, in the order given', async () => {
  const opened: string[] = [];
  const result = await uploadBatch(
    [
      file('a.txt', 'a', opened),
      async () => {
        throw new BadUserInputError('file', 'File missing in the request.');
      },
      file('big.bin', 'too big', opened),
      file('c.txt', 'c', opened),
    ],
    async (f) => {
      const text = await read(f.stream);
      if (f.filename === 'big.bin') throw new PayloadTooLargeError(3);
      return row(text);
    },
  );
  assert.deepEqual(
    result.assets.map((a) => a.id),
    ['a', 'c'],
  );
  assert.deepEqual(
    result.failures.map(({ index, filename, code }) => ({ index, filename, code })),
    [
      { index: 1, filename: null, code: 'BAD_USER_INPUT' },
      { index: 2, filename: 'big.bin', code: 'PAYLOAD_TOO_LARGE' },
    ],
  );
});

test('the next file is opened once the bytes of the one before are read, while it is still being stored', async () => {
  const opened: string[] = [];
  let releaseFirst!: () => void;
  const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
  const batch = uploadBatch([file('1', 'one', opened), file('2', 'two', opened)], async (f) => {
    const text = await read(f.stream);
    if (text === 'one')
      await firstHeld; // held until the second store starts
    else releaseFirst();
    return row(text);
  });
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('stores ran one at a time')), 2000));
  const result = (await Promise.race([batch, timeout])) as Awaited<typeof batch>;
  assert.deepEqual(
    result.assets.map((a) => a.id),
    ['one', 'two'],
  );
});

test('at most `inFlight` files are stored at once', async () => {
  const opened: string[] = [];
  let running = 0;
  let most = 0;
  const files = Array.from({ length: 10 }, (_, i) => file(`${i}`, `${i}`, opened));
  const result = await uploadBatch(
    files,
    async (f) => {
      running++;
      most = Math.max(most, running);
      const text = await read(f.stream);
      await new Promise((r) => setTimeout(r, 5)); // a store that takes a while, so stores overlap if allowed to
      running--;
      return row(text);
    },
    3,
  );
  assert.equal(result.assets.length, 10);
  assert.equal(most, 3);
});

test('after an unexpected error no further file is taken, and the batch fails once the rest settled', async () => {
  const opened: string[] = [];
  let settled = 0;
  const files = Array.from({ length: 6 }, (_, i) => file(`${i}`, `${i}`, opened));
  const failure = new Error('disk on fire');
  await assert.rejects(
    uploadBatch(
      files,
      async (f) => {
        const text = await read(f.stream);
        // The first file settles last: the batch must wait for it after the failure.
        await new Promise((r) => setTimeout(r, text === '0' ? 30 : 1));
        settled++;
        if (text === '1') throw failure;
        return row(text);
      },
      2,
    ),
    (error) => error === failure,
  );
  assert.ok(opened.length < 6, `opened ${opened.join(',')}`);
  assert.equal(settled, opened.length, 'every file taken settled before the batch answered');
});

test('a file its store refused without reading is drained before the next is opened', async () => {
  const opened: string[] = [];
  const streams: Readable[] = [];
  const result = await uploadBatch(
    [
      async () => {
        opened.push('unread');
        const stream = Readable.from([Buffer.alloc(64 * 1024)]);
        streams.push(stream);
        return { filename: 'unread.bin', stream };
      },
      file('next', 'next', opened),
    ],
    async (f) => {
      if (f.filename === 'unread.bin') throw new BadUserInputError('file', 'refused before reading');
      return row(await read(f.stream));
    },
  );
  assert.equal(streams[0].readableEnded, true, 'the refused file was read to its end');
  assert.deepEqual(
    result.assets.map((a) => a.id),
    ['next'],
  );
  assert.equal(result.failures[0].code, 'BAD_USER_INPUT');
});
