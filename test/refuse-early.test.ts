import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { assertConsistent, blobFootprint, createTestApp, forEachSetup, listen, type TestApp } from './helpers.js';

/** The size of the forbidden upload: far more than the head the type is judged by (256 KiB). */
const TOTAL = 64 * 1024 * 1024;
const CHUNK = 64 * 1024;
/** What the client may have sent when the answer comes: the head, the buffers on the way, and a wide margin. */
const MOST_SENT_BEFORE_ANSWER = 8 * 1024 * 1024;

interface Answer {
  status: number;
  body: any;
  /** Bytes of the body the client had handed to the socket when the answer's head arrived. */
  sentBeforeAnswer: number;
}

/** The status and JSON body of a raw HTTP/1.1 answer (`Content-Length` or chunked). */
function parseAnswer(raw: Buffer): { status: number; body: any } {
  const split = raw.indexOf('\r\n\r\n');
  assert.ok(split > 0, `no answer: ${JSON.stringify(raw.toString())}`);
  const head = raw.subarray(0, split).toString();
  let body = raw.subarray(split + 4);
  const length = /^content-length:\s*(\d+)/im.exec(head)?.[1];
  if (length !== undefined) body = body.subarray(0, Number(length));
  else if (/^transfer-encoding:\s*chunked/im.test(head)) {
    const parts: Buffer[] = [];
    for (let at = 0; ;) {
      const eol = body.indexOf('\r\n', at);
      const size = Number.parseInt(body.subarray(at, eol).toString(), 16);
      if (!size) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  }
  return { status: Number(head.split(' ')[1]), body: body.length ? JSON.parse(body.toString()) : null };
}

/**
 * Sends `head`, then up to TOTAL zero bytes (a type no image policy takes) a chunk at a
 * time, a slow client (one chunk a millisecond, so the whole would take seconds), then
 * `tail`, over a raw socket: it stops sending as soon as the answer starts, tells how
 * much it had handed to the socket by then, and reads the answer even when the server
 * closes the connection on the rest of the body (a write then fails; that is expected).
 */
function sendSlowly(
  url: string,
  init: { method: string; headers: Record<string, string>; head?: Buffer; tail?: Buffer },
): Promise<Answer> {
  const { head = Buffer.alloc(0), tail = Buffer.alloc(0) } = init;
  const target = new URL(url);
  const headers = { ...init.headers, host: target.host, 'content-length': String(head.length + TOTAL + tail.length) };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return new Promise((resolve, reject) => {
    let sent = 0;
    let sentBeforeAnswer: number | undefined;
    let stopped = false;
    const received: Buffer[] = [];
    const socket = connect(Number(target.port), target.hostname);
    socket.on('data', (chunk: Buffer) => {
      sentBeforeAnswer ??= sent;
      received.push(chunk);
    });
    socket.on('error', () => {
      stopped = true; // the server closed on the rest of the body: what it answered is read below
    });
    socket.on('close', () => {
      stopped = true;
      try {
        resolve({ ...parseAnswer(Buffer.concat(received)), sentBeforeAnswer: sentBeforeAnswer ?? sent });
      } catch (error) {
        reject(error);
      }
    });
    const write = (chunk: Buffer) =>
      new Promise<void>((done) => {
        sent += chunk.length;
        if (socket.write(chunk)) done();
        else socket.once('drain', done).once('close', done);
      });
    void (async () => {
      await write(Buffer.from(`${init.method} ${target.pathname}${target.search} HTTP/1.1\r\n${lines.join('')}\r\n`));
      sent = 0; // the body is what is counted
      await write(head);
      const zeros = Buffer.alloc(CHUNK);
      for (let n = 0; n < TOTAL / CHUNK && sentBeforeAnswer === undefined && !stopped; n++) {
        await write(zeros);
        // The point of the test: a client slower than the server, so an answer that waits for the whole body shows.
        await new Promise((done) => setTimeout(done, 1));
        // Then past the poll phase, so an answer that has arrived is read before the next write: a write
        // into a connection the server closed fails, and the socket goes with whatever it had not read.
        await new Promise((done) => setImmediate(done));
      }
      if (sentBeforeAnswer === undefined && !stopped) await write(tail);
      // The answer is in (or the whole body sent): the client is done with this connection.
      const answered = () => (received.length > 0 ? socket.end() : setTimeout(answered, 5));
      answered();
    })();
  });
}

forEachSetup(() => {
  describe('a file of a refused type is refused when its head has arrived', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    before(async () => {
      app = await createTestApp({ ALLOWED_MEDIA_TYPES: 'image/*', MAX_FILE_SIZE: String(2 * TOTAL) });
      server = await listen(app.handler);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    /** Asserts nothing of the refused upload stayed: no blob, no temporary file, no quota charged or held. */
    async function assertNothingKept(before: Awaited<ReturnType<typeof blobFootprint>>) {
      assert.deepEqual(await blobFootprint(app), before);
      const usage = await app.repositories.orgs.usage('acme');
      assert.equal(usage.used, 0);
      assert.equal(usage.reserved, 0);
      await assertConsistent(app);
    }

    const snapshot = () => blobFootprint(app);

    test('GraphQL multipart', async (t) => {
      const before = await snapshot();
      const boundary = 'refuse-early-boundary';
      const operations = JSON.stringify({
        query: 'mutation($f: Upload!) { uploadAsset(input: { file: $f }) { asset { id } } }',
        variables: { f: null },
      });
      const head = Buffer.from(
        `--${boundary}\r\ncontent-disposition: form-data; name="operations"\r\n\r\n${operations}\r\n` +
          `--${boundary}\r\ncontent-disposition: form-data; name="map"\r\n\r\n{"0":["variables.f"]}\r\n` +
          `--${boundary}\r\ncontent-disposition: form-data; name="0"; filename="big.bin"\r\n` +
          'content-type: application/octet-stream\r\n\r\n',
      );
      const answer = await sendSlowly(`${server.url}/graphql`, {
        method: 'POST',
        headers: {
          ...app.authHeaders,
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'x-graphql-yoga-csrf': '1',
        },
        head,
        tail: Buffer.from(`\r\n--${boundary}--\r\n`),
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.errors[0].extensions.code, 'UNSUPPORTED_MEDIA_TYPE', JSON.stringify(answer.body));
      t.diagnostic(`answered after ${answer.sentBeforeAnswer} of ${TOTAL} bytes sent`);
      assert.ok(answer.sentBeforeAnswer < MOST_SENT_BEFORE_ANSWER, `sent ${answer.sentBeforeAnswer} bytes first`);
      assert.equal((await app.db.selectFrom('assets').select('id').execute()).length, 0, 'no row');
      await assertNothingKept(before);
    });

    test('signed PUT', async (t) => {
      const created = await app.gql(
        'mutation { createUploadUrl(input: { filename: "big.bin" }) { uploadUrl asset { id } } }',
      );
      assert.equal(created.errors, undefined, JSON.stringify(created.errors));
      const before = await snapshot();
      const url = new URL(created.data.createUploadUrl.uploadUrl);
      const answer = await sendSlowly(`${server.url}${url.pathname}${url.search}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
      });
      assert.equal(answer.status, 415);
      assert.equal(answer.body.error.code, 'UNSUPPORTED_MEDIA_TYPE', JSON.stringify(answer.body));
      t.diagnostic(`answered after ${answer.sentBeforeAnswer} of ${TOTAL} bytes sent`);
      assert.ok(answer.sentBeforeAnswer < MOST_SENT_BEFORE_ANSWER, `sent ${answer.sentBeforeAnswer} bytes first`);
      const asset = await app.gql('query($id: ID!) { asset(id: $id) { status size } }', {
        id: created.data.createUploadUrl.asset.id,
      });
      assert.notEqual(asset.data.asset?.status, 'READY');
      await assertNothingKept(before);
    });

    test('tus PATCH', async (t) => {
      const tus = { 'tus-resumable': '1.0.0', ...app.authHeaders };
      const createdUpload = await fetch(`${server.url}/tus/`, {
        method: 'POST',
        headers: {
          ...tus,
          'upload-length': String(TOTAL),
          'upload-metadata': `filename ${Buffer.from('big.bin').toString('base64')}`,
        },
      });
      assert.equal(createdUpload.status, 201, await createdUpload.clone().text());
      const location = new URL(createdUpload.headers.get('location')!);
      const before = await snapshot();
      const answer = await sendSlowly(`${server.url}${location.pathname}`, {
        method: 'PATCH',
        headers: { ...tus, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
      });
      assert.equal(answer.status, 415);
      assert.equal(answer.body.error.code, 'UNSUPPORTED_MEDIA_TYPE', JSON.stringify(answer.body));
      t.diagnostic(`answered after ${answer.sentBeforeAnswer} of ${TOTAL} bytes sent`);
      assert.ok(answer.sentBeforeAnswer < MOST_SENT_BEFORE_ANSWER, `sent ${answer.sentBeforeAnswer} bytes first`);
      const state = await fetch(`${server.url}${location.pathname}`, { method: 'HEAD', headers: tus });
      assert.equal(state.headers.get('upload-offset'), '0', 'no byte of it acknowledged');
      await assertNothingKept(before);
    });
  });
});
