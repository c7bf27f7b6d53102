/**
 * Moves a SQLite database's write-ahead log into the database file from a worker
 * thread, off the event loop. A checkpoint copies pages and, with synchronous=NORMAL,
 * fsyncs the file: run by the connection that commits (SQLite's default), it stalls
 * every request for as long as that takes (about 11 ms here, every few dozen uploads).
 * PASSIVE checkpoints never wait for readers or writers; the serving connection keeps a
 * large automatic threshold of its own only as a safety net, should the thread stop.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** WAL pages (4 KiB) after which the serving connection checkpoints by itself. */
export const FALLBACK_AUTOCHECKPOINT = 16384;

/** How often the thread checkpoints. */
const INTERVAL_MS = 200;

// Plain CommonJS, evaluated as the thread's script: the same from the build and from source.
const THREAD = `
const { workerData } = require('node:worker_threads');
const SQLite = require(workerData.driver);
const db = new SQLite(workerData.file);
db.pragma('busy_timeout = 1000');
setInterval(() => db.pragma('wal_checkpoint(PASSIVE)'), workerData.intervalMs);
`;

/**
 * Starts the checkpointing thread for `file`. `stop()` ends it without waiting (a closing
 * database must not wait on it): a checkpoint under way completes, and the thread's
 * connection closes as the thread ends. A thread that fails reports to `onError` and
 * ends; the safety net above takes over.
 */
export function startCheckpointer(file: string, onError: (error: unknown) => void): { stop: () => void } {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(THREAD, { eval: true, workerData: { file, driver, intervalMs: INTERVAL_MS } });
  worker.unref();
  let stopped = false;
  // Once stopped, what the thread meets (its database already closed and perhaps removed) is moot.
  worker.on('error', (error) => {
    if (!stopped) onError(error);
  });
  return {
    stop: () => {
      stopped = true;
      void worker.terminate();
    },
  };
}
