/** Raw baseline for a download: bare node:http streaming one file with fs.createReadStream. Prints `listening <port>`. */
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';

const file = process.argv[2];
const server = createServer((_req, res) => {
  res.setHeader('content-length', String(statSync(file).size));
  res.setHeader('content-type', 'application/octet-stream');
  pipeline(createReadStream(file), res).catch(() => res.destroy());
});
server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as { port: number }).port}`));
