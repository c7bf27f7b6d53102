import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { createDatabase } from '../src/db/database.js';
import { DIALECTS, postgresSchema, tempDir, waitFor } from './helpers.js';
import pg from 'pg';

const folder = tempDir('assetgate-db-');
after(folder.remove);
const file = path.join(folder.dir, 'rows.db');
const db = createDatabase({ url: `sqlite:${file}` });
after(() => db.destroy());

test('sqlite: rows read through the statement cache equal better-sqlite3 row objects', async () => {
  await sql`create table t (id integer primary key, name text, size bigint, ratio real, data blob, note text)`.execute(
    db,
  );
  await sql`insert into t (name, size, ratio, data, note) values ('a', 9007199254740991, 0.5, x'00ff', null), ('b', 2, -1.25, null, 'n')`.execute(
    db,
  );
  const reference = new SQLite(file, { readonly: true });
  after(() => reference.close());
  const queries = [
    'select * from t order by id',
    'select count(*), sum(size) as total from t',
    // The same name twice: the later column wins, as in better-sqlite3.
    'select a.id, a.name, b.name as name, b.id from t a join t b on b.id <> a.id order by a.id',
    'select 1 as "__proto__", \'x\' as "constructor"',
  ];
  for (const query of queries) {
    for (let i = 0; i < 2; i++) {
      // The second round comes from the cache.
      const { rows } = await sql.raw(query).execute(db);
      assert.deepEqual(rows, reference.prepare(query).all(), query);
    }
  }
  const streamed = [];
  for await (const row of db
    .selectFrom('t' as never)
    .selectAll()
    .stream())
    streamed.push(row);
  assert.deepEqual(streamed, reference.prepare('select * from t').all());

  const inserted = await sql<{
    id: number;
    name: string;
  }>`insert into t (name) values ('c') returning id, name`.execute(db);
  assert.deepEqual(inserted.rows, [{ id: 3, name: 'c' }]);
  const updated = await sql`update t set note = 'm' where id > 1`.execute(db);
  assert.equal(updated.numAffectedRows, 2n);
});

test('sqlite: commits reach the database file from the checkpoint thread, not the serving connection', async () => {
  const walFile = path.join(folder.dir, 'wal.db');
  const errors: unknown[] = [];
  const wal = createDatabase({ url: `sqlite:${walFile}`, onBackgroundError: (error) => errors.push(error) });
  try {
    await sql`create table w (id integer primary key, payload text)`.execute(wal);
    const before = fs.statSync(walFile).size;
    // About 250 pages: far below the serving connection's own threshold, so only the thread moves them.
    for (let i = 0; i < 250; i++) await sql`insert into w (payload) values (${'x'.repeat(3000)})`.execute(wal);
    const size = await waitFor(
      async () => fs.statSync(walFile).size,
      (now) => now >= before + 250 * 3000,
    );
    assert.ok(size >= before + 250 * 3000, `the database file grew from ${before} to ${size} bytes`);
    assert.deepEqual(errors, []);
  } finally {
    await wal.destroy();
  }
});

test("importing the database module leaves pg's global type parsers as they were", () => {
  // A process of its own: this file has imported the module already.
  const script = `
    import pg from 'pg';
    const before = pg.types.getTypeParser(20, 'text');
    await import(${JSON.stringify(new URL('../src/db/database.ts', import.meta.url).href)});
    const after = pg.types.getTypeParser(20, 'text');
    process.stdout.write(JSON.stringify({ same: before === after, parsed: after('9007199254740993') }));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(out), { same: true, parsed: '9007199254740993' });
});

test(
  'postgres: bigint columns come back as numbers through the pool, and only through it',
  {
    skip: !DIALECTS.includes('postgres') && 'TEST_DIALECTS has no postgres',
  },
  async () => {
    const schema = await postgresSchema();
    after(schema.drop);
    const pgDb = createDatabase({ url: schema.url });
    after(() => pgDb.destroy());
    await sql`create table sizes (id bigserial primary key, size bigint not null)`.execute(pgDb);
    await sql`insert into sizes (size) values (9007199254740991), (3)`.execute(pgDb);
    const { rows } = await sql<{ id: unknown; size: unknown; n: unknown; total: unknown }>`
    select id, size, count(*) over () as n, sum(size) over () as total from sizes order by id`.execute(pgDb);
    assert.deepEqual(rows, [
      { id: 1, size: 9007199254740991, n: 2, total: '9007199254740994' },
      { id: 2, size: 3, n: 2, total: '9007199254740994' },
    ]);
    // numeric (sum of bigints) is not int8: it stays a string, as pg gives it.
    const plain = new pg.Client({ connectionString: schema.url });
    await plain.connect();
    try {
      const { rows: raw } = await plain.query('select size from sizes order by id');
      assert.deepEqual(raw, [{ size: '9007199254740991' }, { size: '3' }]);
    } finally {
      await plain.end();
    }
  },
);
