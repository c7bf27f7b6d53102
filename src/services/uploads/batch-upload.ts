import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { AssetRow } from '../../db/types.js';
import { AppError } from '../../errors.js';

/** A file of a batch, opened: the name the client gave and its bytes. */
export interface BatchFile {
  filename: string | null;
  stream: Readable;
}

/** A file of a batch that was not stored; the others were. */
export interface UploadFailure {
  index: number;
  filename: string | null;
  code: string;
  message: string;
}

export interface BatchResult {
  assets: AssetRow[];
  failures: UploadFailure[];
}

type Outcome = { asset: AssetRow } | { failure: UploadFailure };

/** A file's expected failure (an error code of the contract) as a batch entry; anything else is rethrown. */
function failureOf(error: unknown, index: number, filename: string | null): Outcome {
  if (!(error instanceof AppError)) throw error;
  filename ??= (error as { filename?: string }).filename ?? null;
  return { failure: { index, filename, code: error.code, message: error.message } };
}

/** Resolves once `stream` has ended or failed: how it ended is the upload's business, reported there. */
function settledStream(stream: Readable): Promise<void> {
  return finished(stream).then(
    () => undefined,
    () => undefined,
  );
}

/**
 * Stores the files of one multipart request. They arrive one after another (the
 * parser hands over file i+1 once file i's bytes are read), so the next file is
 * opened as soon as a file's bytes are in, while up to `inFlight` files are still
 * being synced and recorded. Each file succeeds or fails on its own (a failure with
 * a contract code becomes an entry of `failures`); after an unexpected error no
 * further file is taken and the batch rejects with it, once every file taken has
 * settled. The result keeps the files' order.
 */
export async function uploadBatch(
  files: readonly (() => Promise<BatchFile>)[],
  store: (file: BatchFile) => Promise<AssetRow>,
  inFlight = 8,
): Promise<BatchResult> {
  const outcomes: Promise<Outcome>[] = [];
  const running = new Set<Promise<void>>();
  let broken = false;
  try {
    for (const [index, open] of files.entries()) {
      if (running.size >= inFlight) await Promise.race(running);
      if (broken) break;
      let file: BatchFile;
      try {
        file = await open();
      } catch (error) {
        outcomes.push(Promise.resolve(failureOf(error, index, null)));
        continue;
      }
      const outcome = store(file).then(
        (asset): Outcome => ({ asset }),
        (error: unknown) => failureOf(error, index, file.filename),
      );
      outcomes.push(outcome);
      const settled = outcome.then(
        () => undefined,
        () => {
          broken = true;
        },
      );
      running.add(settled);
      void settled.then(() => running.delete(settled));
      await Promise.race([settledStream(file.stream), settled]);
      if (!file.stream.readableEnded && !file.stream.destroyed) {
        file.stream.resume(); // its upload ended without reading it: drain it so the next file comes
        await settledStream(file.stream);
      }
    }
  } finally {
    // Nothing keeps running after the answer, whatever failed.
    await Promise.allSettled(outcomes);
  }
  const results = await Promise.all(outcomes);
  return {
    assets: results.flatMap((result) => ('asset' in result ? [result.asset] : [])),
    failures: results.flatMap((result) => ('failure' in result ? [result.failure] : [])),
  };
}
