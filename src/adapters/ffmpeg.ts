import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { createLimiter } from './limiter.js';

/** Stderr kept for the reason of a failure. */
const STDERR_KEPT = 2048;

/**
 * The ffmpeg to run: `configured` (FFMPEG_PATH) when given, else `ffmpeg` on the PATH, else
 * the binary shipped inside the optional npm package `@ffmpeg-installer/ffmpeg`; null when
 * there is none (video and audio previews are then off).
 */
export function findFfmpeg(configured: string | null, searchPath = process.env.PATH ?? ''): string | null {
  const runnable = (file: string) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false; // not there, or not runnable: look further
    }
  };
  if (configured) return runnable(configured) ? configured : null;
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    if (runnable(path.join(dir, 'ffmpeg'))) return path.join(dir, 'ffmpeg');
  }
  try {
    const shipped = (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;
    return runnable(shipped) ? shipped : null;
  } catch {
    return null; // the optional package is not installed on this platform
  }
}

/** An ffmpeg run that did not produce what it was asked for: its reason, from ffmpeg's own words. */
export class FfmpegFailure extends Error {}

export interface FfmpegOptions {
  /** The binary (see `findFfmpeg`). */
  path: string;
  /** Longest run; the process is killed past it (EXTRACT_TIMEOUT). */
  timeoutMs: number;
  /** Address space of the process, bytes (FFMPEG_MEMORY): a larger allocation fails inside ffmpeg. */
  memoryBytes: number;
  /** ffmpeg processes running at once (EXTRACT_THREADS); more runs wait their turn. */
  maxRunning: number;
}

/** Arguments every run starts with: quiet, no stdin, local files only (no network protocol). */
const COMMON = ['-nostdin', '-hide_banner', '-loglevel', 'error', '-threads', '2'];

/**
 * Runs ffmpeg on a local file with arguments from fixed lists (numbers and our own paths
 * are the only values put in), under a time limit and an address-space limit (`ulimit -v`
 * of the shell that then becomes ffmpeg). Only the `file` protocol is allowed for the input.
 */
export function createFfmpeg(options: FfmpegOptions) {
  const limiter = createLimiter(options.maxRunning);
  /** Runs `spawnOne` when fewer than `maxRunning` processes run; its time limit starts then. */
  const run = (args: string[], onStdout?: (stdout: Readable) => Promise<void>) =>
    limiter.run(() => spawnOne(args, onStdout));
  function spawnOne(args: string[], onStdout?: (stdout: Readable) => Promise<void>): Promise<void> {
    const kib = String(Math.max(1, Math.floor(options.memoryBytes / 1024)));
    const child = spawn(
      '/bin/sh',
      ['-c', 'ulimit -v "$1" || exit 125; shift; exec "$@"', 'ffmpeg', kib, options.path, ...COMMON, ...args],
      {
        stdio: ['ignore', onStdout ? 'pipe' : 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      if (stderr.length < STDERR_KEPT) stderr += chunk.toString('utf8');
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    const reading = onStdout ? onStdout(child.stdout!) : Promise.resolve();
    const exited = new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (timedOut) reject(new FfmpegFailure(`ffmpeg took longer than ${options.timeoutMs} ms`));
        else if (code !== 0) {
          const reason = stderr.trim().split('\n').slice(-2).join(' ').slice(0, 300);
          reject(new FfmpegFailure(`the file cannot be decoded (${reason || signal || `exit ${code}`})`));
        } else resolve();
      });
    });
    // Stop ffmpeg if the reader gives up (a bound it keeps was passed).
    reading.catch(() => child.kill('SIGKILL'));
    return Promise.all([exited, reading]).then(() => undefined);
  }
  return {
    path: options.path,
    /** ffmpeg processes running now, and runs waiting for a turn. */
    get load(): { running: number; waiting: number } {
      return limiter.load;
    },
    /**
     * Writes the frame at `seconds` of the video `input` to `out` (PNG), at most `maxSide`
     * pixels on each side. Seeking is by the container's index: a `moov` at the end is read
     * from disk, not memory.
     */
    async frame(input: string, out: string, { seconds, maxSide }: { seconds: number; maxSide: number }): Promise<void> {
      await run(frameArgs({ input, from: seconds, out, maxSide }));
      // A time past the last frame (a truncated file) ends without error and without a picture.
      if (!(await written(out))) throw new FfmpegFailure(`the video has no frame at ${seconds} s`);
    },
    /**
     * Writes the poster frame of `input` to `out`: the first frame from `from` seconds on that
     * is not black (less than POSTER_BLACK percent of its pixels dark, by ffmpeg's `blackframe`),
     * looking at most POSTER_SEARCH seconds further; when all of them are black, the frame at `from`.
     */
    async poster(input: string, out: string, options: { from: number; maxSide: number }): Promise<void> {
      await run(frameArgs({ input, out, ...options, search: POSTER_SEARCH }));
      if (await written(out)) return;
      await run(frameArgs({ input, out, ...options }));
      if (!(await written(out))) throw new FfmpegFailure(`the video has no frame at ${options.from} s`);
    },
    /** Streams the first audio stream of `input`, mono 16-bit little-endian at `rate` Hz, to `read`. */
    pcm(input: string, rate: number, read: (stdout: Readable) => Promise<void>): Promise<void> {
      return run(
        [
          '-protocol_whitelist',
          'file',
          '-i',
          `file:${input}`,
          '-map',
          '0:a:0',
          '-ac',
          '1',
          '-ar',
          String(rate),
          '-f',
          's16le',
          'pipe:1',
        ],
        read,
      );
    },
  };
}

export type Ffmpeg = ReturnType<typeof createFfmpeg>;

/** How far past its start the poster frame is looked for, seconds of video (decoded: this bounds the work). */
export const POSTER_SEARCH = 10;
/** A frame with at least this share (percent) of dark pixels is black: a fade or a title card on black. */
export const POSTER_BLACK = 95;
/** Luma (0–255) under which a pixel counts as dark, as `blackframe` measures it. */
const DARK = 32;

/** Whether ffmpeg wrote a picture to `file` (it ends without error and without one when no frame qualified). */
async function written(file: string): Promise<boolean> {
  return !!(await stat(file).catch(() => null))?.size;
}

/**
 * The arguments of one frame taken from `input` at `from` seconds, scaled to fit `maxSide`;
 * with `search`, the first frame within that many seconds that is not black (none: no picture).
 */
function frameArgs(options: { input: string; from: number; out: string; maxSide: number; search?: number }): string[] {
  const side = String(Math.floor(options.maxSide));
  const scale = `scale=w='min(iw,${side})':h='min(ih,${side})':force_original_aspect_ratio=decrease`;
  // `blackframe` with amount=0 tags every frame with its share of dark pixels; `metadata` lets the others through.
  const notBlack = `blackframe=amount=0:threshold=${DARK},metadata=mode=select:key=lavfi.blackframe.pblack:value=${POSTER_BLACK}:function=less`;
  return [
    ...['-protocol_whitelist', 'file', '-ss', options.from.toFixed(3)],
    ...(options.search ? ['-t', String(options.search)] : []),
    ...['-i', `file:${options.input}`, '-map', '0:v:0', '-frames:v', '1'],
    ...['-vf', options.search ? `${notBlack},${scale}` : scale],
    // Read once, right away, by the renderer: speed over size.
    ...['-f', 'image2', '-c:v', 'png', '-compression_level', '1', '-y', `file:${options.out}`],
  ];
}
