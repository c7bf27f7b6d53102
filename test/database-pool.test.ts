/**
 * The PostgreSQL pool's two bounds (DATABASE_POOL, DATABASE_POOL_WAIT), pushed past as a
 * caller without a key would: with every connection held, a request waits for one, then
 * is answered 503 SERVICE_UNAVAILABLE; the gateway opens no more connections than its
 * pool, and serves again once they are free. SQLite has one connection and no pool.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { createTestApp, DIALECTS, listen, postgresSchema, type TestApp } from './helpers.js';

const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const POOL = 2;
const WAIT_MS = 500;
const READ = 'query($id: ID!) { asset(id: $id) { id title } }';
const ANONYMOUS = {};

for (const dialect of DIALECTS.filter((name) => name === 'postgres')) {
  describe(`${dialect}: the database pool`, () => {
    // Backends of this app alone carry this name in pg_stat_activity.
    const applicationName = `assetgate-pool-${randomBytes(4).toString('hex')}`;
    let schema: Awaited<ReturnType<typeof postgresSchema>>;
    let app: TestApp;
    let admin: pg.Client;
    let publicId: string;

    const backends = async () =>
      Number(
        (await admin.query('select count(*) as n from pg_stat_activity where application_name = $1', [applicationName]))
          .rows[0].n,
      );

    /** Holds one pooled connection in an open transaction until `released`; `done` settles when it ends. */
    const hold = async (released: Promise<void>): Promise<{ done: Promise<void> }> => {
      let ready!: () => void;
      const holding = new Promise<void>((resolve) => (ready = resolve));
      const done = app.db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx);
        ready();
        await released;
      });
      await holding;
      return { done };
    };

    before(async () => {
      schema = await postgresSchema();
      app = await createTestApp(
        {
          DATABASE_URL: `${schema.url}&application_name=${applicationName}`,
          DATABASE_POOL: String(POOL),
          DATABASE_POOL_WAIT: `${WAIT_MS}ms`,
          // No background work: only the requests of the test take connections.
          ROLE: 'api',
          SWEEP_INTERVAL: '0',
        },
        {},
        'postgres',
      );
      admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      const created = await app.gql(
        'mutation { createAsset(input: { title: "Open", type: LINK, externalUrl: "https://example.com/", isPublic: true }) { asset { id } } }',
      );
      publicId = created.data.createAsset.asset.id;
    });

    after(async () => {
      await admin?.end();
      await app?.dispose();
      await schema?.drop();
    });

    test('the configured size and wait reach the pool', () => {
      assert.equal(app.config.databasePool, POOL);
      assert.equal(app.config.databasePoolWait, WAIT_MS / 1000);
    });

    test('a caller without a key reads the public asset while connections are free', async () => {
      const answer = await app.gql(READ, { id: publicId }, ANONYMOUS);
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.data.asset, { id: publicId, title: 'Open' });
    });

    // The time limit turns a request that would hang (no bound on the wait) into a failure.
    test(
      'with every connection held, a request waits its bound, then is 503 SERVICE_UNAVAILABLE',
      { timeout: 60_000 },
      async () => {
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        let heldOpen = true;
        const holds = [(await hold(released)).done, (await hold(released)).done];
        void Promise.all(holds).then(() => (heldOpen = false));
        try {
          assert.equal(await backends(), POOL, 'both connections of the pool are open and held');

          const started = performance.now();
          const answer = await app.gql(READ, { id: publicId }, ANONYMOUS);
          const waited = performance.now() - started;

          assert.equal(heldOpen, true, 'the connections were still held when the answer came');
          assert.equal(answer.status, 503);
          assert.equal(answer.errors?.[0].extensions.code, 'SERVICE_UNAVAILABLE');
          assert.equal(answer.errors?.[0].extensions.retryAfter, 1);
          assert.equal(answer.headers.get('retry-after'), '1');
          assert.match(answer.errors![0].message, /database connection/);
          // A timer never fires early: the request queued for a connection rather than failing at once.
          assert.ok(waited >= WAIT_MS - 5, `answered after ${waited.toFixed(0)} ms, before the wait of ${WAIT_MS} ms`);
          assert.equal(await backends(), POOL, 'no connection beyond the pool was opened for the waiting request');
        } finally {
          release();
          await Promise.all(holds);
        }

        const again = await app.gql(READ, { id: publicId }, ANONYMOUS);
        assert.equal(again.status, 200, 'the gateway serves again once connections are free');
        assert.deepEqual(again.data.asset, { id: publicId, title: 'Open' });
      },
    );

    test(
      'with every connection held, a download and a tus upload are 503 SERVICE_UNAVAILABLE with Retry-After',
      { timeout: 60_000 },
      async () => {
        const server = await listen(app.handler);
        const TUS_CREATE = {
          ...app.authHeaders,
          'tus-resumable': '1.0.0',
          'upload-length': '5',
          'upload-metadata': `filename ${Buffer.from('notes.txt').toString('base64')}`,
        };
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        const holds: Promise<void>[] = [];
        try {
          // The key is read now, so the tus request below first needs a connection inside the tus server.
          const created = await fetch(`${server.url}/tus/`, {
            method: 'POST',
            headers: TUS_CREATE,
          });
          assert.equal(created.status, 201, await created.clone().text());
          holds.push((await hold(released)).done, (await hold(released)).done);

          const download = await fetch(`${server.url}/download/${publicId}`);
          assert.equal(download.status, 503);
          assert.equal(download.headers.get('retry-after'), '1');
          assert.equal(((await download.json()) as any).error.code, 'SERVICE_UNAVAILABLE');

          const tus = await fetch(`${server.url}/tus/`, {
            method: 'POST',
            headers: TUS_CREATE,
          });
          assert.equal(tus.status, 503);
          assert.equal(tus.headers.get('retry-after'), '1');
          assert.equal(((await tus.json()) as any).error.code, 'SERVICE_UNAVAILABLE');
        } finally {
          release();
          await Promise.all(holds);
          await server.close();
        }
      },
    );

    test('a burst larger than the pool is served through its connections, never more', async () => {
      const answers = await Promise.all(
        Array.from({ length: 4 * POOL }, () => app.gql(READ, { id: publicId }, ANONYMOUS)),
      );
      assert.deepEqual(
        answers.map((a) => a.status),
        answers.map(() => 200),
      );
      assert.ok(answers.every((a) => a.data.asset.id === publicId));
      const open = await backends();
      assert.ok(open >= 1 && open <= POOL, `${open} connections open, pool of ${POOL}`);
    });
  });
}
