/**
 * Raw baselines for uploads: bare node:http with no GraphQL, no database.
 * `multipart`: busboy parses the body and pipes each file part to disk.
 * `raw`: the request body is piped straight to a file (the ceiling).
 * `multipart-fsync`: as `multipart`, and each file is fsynced before the answer, as the
 * product does: the same bytes, made durable.
 * Prints `listening <port>` once ready.
 */
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';

const [mode, dir] = process.argv.slice(2);
let n = 0;

const server = createServer((req, res) => {
  if (mode === 'raw') {
    pipeline(req, createWriteStream(path.join(dir, `raw-${n++}`))).then(
      () => res.end('{"ok":true}'),
      () => res.destroy(),
    );
    return;
  }
  const parser = busboy({ headers: req.headers });
  let files = 0;
  const writes: Promise<void>[] = [];
  parser.on('file', (_name, stream) => {
    files += 1;
    const file = path.join(dir, `part-${n++}`);
    writes.push(
      pipeline(stream, createWriteStream(file)).then(() => (mode === 'multipart-fsync' ? fsync(file) : undefined)),
    );
  });
  parser.on('close', () => {
    Promise.all(writes).then(
      () => res.end(JSON.stringify({ files })),
      () => res.destroy(),
    );
  });
  req.pipe(parser);
});
async function fsync(file: string): Promise<void> {
  const handle = await open(file, 'r');
  await handle.sync().finally(() => handle.close());
}

server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as { port: number }).port}`));
