/** Helpers shared by the benchmarks: processes, memory readings, streamed requests, statistics. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The server's command line, node flags included, as `npm start` runs it: its script
 * (scripts/start.js, which only builds when dist/ is stale and then loads dist/main.js in
 * the same process) or dist/main.js itself; the benchmarks build first, so dist/main.js.
 */
/** The gateway's node arguments, as `npm start` has them; with `prof_dir=<folder>` in the environment, CPU-profiled into it (`--cpu-prof`). */
export function serverArgs(): string[] {
  const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const command = /\bnode ((?:--\S+ )*)(?:dist\/main|scripts\/start)\.js/.exec(scripts.start);
  if (!command) throw new Error(`npm start runs neither dist/main.js nor scripts/start.js: ${scripts.start}`);
  return [
    ...(process.env.prof_dir ? ['--cpu-prof', `--cpu-prof-dir=${process.env.prof_dir}`] : []),
    ...command[1]!.trim().split(' ').filter(Boolean),
    path.join(ROOT, 'dist/main.js'),
  ];
}

export interface Proc {
  child: ChildProcess;
  port: number;
  output: () => string;
  stop: () => Promise<void>;
}

/** Whether something accepts connections on a loopback port. */
function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts a node program and waits for it to print its port (`listening <port>` or the
 * server's own line), or, when the port is given, for the port to accept connections
 * (a gateway with LOG_LEVEL=silent prints nothing).
 */
export async function start(args: string[], env: Record<string, string> = {}, port?: number): Promise<Proc> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  for (let i = 0; i < 300; i++) {
    const match = /listening (?:on (?:http:\/\/)?[^:\s]+:)?(\d+)/.exec(out);
    if (match || (port !== undefined && child.exitCode === null && (await accepting(port)))) {
      return {
        child,
        port: port ?? Number(match![1]),
        output: () => out,
        stop: () =>
          new Promise((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`did not start: ${args.join(' ')}\n${out}`);
}

/**
 * Writes every dirty page to disk (sync(1)) before a timed upload, so no run pays
 * for the write-back of the one before it.
 */
export function flushDisk(): void {
  execFileSync('sync');
}

/** Runs a TypeScript baseline program through tsx. */
export function startBaseline(file: string, args: string[]): Promise<Proc> {
  return start(['--import', 'tsx', path.join(ROOT, 'bench/baselines', file), ...args]);
}

/** Resident memory of a process from /proc: now (VmRSS) and its peak so far (VmHWM), bytes. */
export async function memory(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)![1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** CPU time a process has used so far, user and system, µs (/proc/<pid>/stat, in clock ticks of 10 ms). */
export async function cpuMicros(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at the state, field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime (14) + stime (15)
  return ticks * 10_000;
}

/** Resets a process's VmHWM to its current RSS (Linux: write 5 to clear_refs). */
export async function resetPeak(pid: number): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined);
}

/** Files up to this size are read once and sent from memory; larger ones are streamed. */
const SMALL_FILE = 1024 * 1024;
const smallFiles = new Map<string, Buffer>();

/**
 * A file's bytes as chunks: a small file from memory (read once), a large one streamed
 * in 1 MiB reads. (Streaming a 20 KB file with a 1 MiB read buffer made the client
 * allocate 1 MiB per upload; the garbage collection that caused took client CPU from
 * the server it was measuring, and more so the longer each request lived.)
 */
function fileChunks(file: string, size: number): AsyncIterable<Buffer> | Buffer[] {
  if (size > SMALL_FILE) return createReadStream(file, { highWaterMark: SMALL_FILE });
  let bytes = smallFiles.get(file);
  if (!bytes) smallFiles.set(file, (bytes = readFileSync(file)));
  return [bytes];
}

/** A multipart body from files on disk, with its exact length. */
export function multipartBody(
  fields: [string, string][],
  files: { field: string; path: string; name: string }[],
): { stream: Readable; length: number; contentType: string } {
  const boundary = `----bench${Math.random().toString(16).slice(2)}`;
  const parts: (Buffer | { path: string; size: number })[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  for (const file of files) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
    );
    parts.push({ path: file.path, size: statSync(file.path).size });
    parts.push(Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  const length = parts.reduce((sum, p) => sum + (Buffer.isBuffer(p) ? p.length : p.size), 0);
  const contentType = `multipart/form-data; boundary=${boundary}`;
  if (length <= SMALL_FILE) {
    // One write, as an HTTP client sends a small body, rather than one per part.
    const whole = Buffer.concat(
      parts.map((part) => (Buffer.isBuffer(part) ? part : (fileChunks(part.path, part.size) as Buffer[])[0])),
    );
    return { stream: Readable.from([whole]), length, contentType };
  }
  const stream = Readable.from(
    (async function* () {
      for (const part of parts) {
        if (Buffer.isBuffer(part)) yield part;
        else yield* fileChunks(part.path, part.size);
      }
    })(),
  );
  return { stream, length, contentType };
}

/** The multipart body of `uploadAsset` for `file`, sent as `name`, asking back `fields` of the asset. */
export function uploadAssetBody(file: string, name: string, fields = 'id size') {
  return multipartBody(
    [
      [
        'operations',
        JSON.stringify({
          query: `mutation($f: Upload!) { uploadAsset(input: { file: $f }) { asset { ${fields} } } }`,
          variables: { f: null },
        }),
      ],
      ['map', '{"0":["variables.f"]}'],
    ],
    [{ field: '0', path: file, name }],
  );
}

/** Sends a streamed body and resolves the response text. */
export function send(
  url: string,
  method: string,
  body: { stream: Readable; length: number; contentType?: string },
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method,
      headers: {
        ...headers,
        'content-length': String(body.length),
        ...(body.contentType && { 'content-type': body.contentType }),
      },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    body.stream.pipe(req);
  });
}

/** Downloads a URL, discarding the bytes; resolves the byte count. */
export function drain(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve(bytes));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Times `fn` in milliseconds. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Runs `fn` over `items` with at most `concurrency` at once. */
export async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

export const MiB = 1024 * 1024;

/**
 * `count` PNG files in `dir`, each the picture at `source` with a text chunk of its own:
 * the same work to store and process, different bytes, so no upload finds its bytes
 * already stored (identical uploads are stored once and are measured apart).
 */
export async function distinctPngs(source: string, dir: string, prefix: string, count: number): Promise<string[]> {
  const png = await readFile(source);
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `${prefix}-${i}.png`);
    await writeFile(file, withComment(png, `${prefix}-${i}`));
    files.push(file);
  }
  return files;
}

/** `png` with a text chunk (`Comment`) holding `text`: the same picture, other bytes. */
export function withComment(png: Buffer, text: string): Buffer {
  const iend = png.length - 12; // the IEND chunk closes every PNG
  const data = Buffer.concat([Buffer.from('Comment\0'), Buffer.from(text)]);
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write('tEXt', 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return Buffer.concat([png.subarray(0, iend), chunk, png.subarray(iend)]);
}
