import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { sql } from 'kysely';
import { createDatabase } from '../src/db/database.js';
import { createRowBuilder, withRowBuilder } from '../src/db/row-builder.js';
import { DIALECTS } from './helpers.js';

test('a row builder makes the object better-sqlite3 would, whatever the column names', () => {
  const hostile = ['id', 'a"b', "c'd", 'e\\f', 'g}; throw new Error("x"); //', '${x}', 'ü 名', ''];
  const build = createRowBuilder(hostile)!;
  const values = hostile.map((_, i) => i);
  const row = build(values) as Record<string, unknown>;
  assert.deepEqual(Object.keys(row), hostile);
  assert.deepEqual(Object.values(row), values);
  // The same name twice: the later column wins, as in better-sqlite3.
  assert.deepEqual(createRowBuilder(['a', 'b', 'a'])!([1, 2, 3]), { a: 3, b: 2 });
  // A literal would set the prototype: no builder, better-sqlite3 builds those rows.
  assert.equal(createRowBuilder(['x', '__proto__']), null);
});

test('a statement with the row builder answers as better-sqlite3 does; writers are left alone', () => {
  const db = new SQLite(':memory:');
  after(() => db.close());
  db.exec(`create table t ("a""b" text, "c}d" integer, n integer); insert into t values ('x', 1, null), ('y', 2, 3)`);
  const query = 'select *, n as "__n", "c}d" as n from t order by 2';
  const statement = withRowBuilder(db.prepare(query));
  assert.deepEqual(statement.all([]), db.prepare(query).all());
  assert.deepEqual([...statement.iterate([])], db.prepare(query).all());
  const proto = db.prepare('select 1 as "__proto__"');
  assert.equal(withRowBuilder(proto), proto, 'served by better-sqlite3 itself');
  const insert = db.prepare('insert into t values (?, ?, ?)');
  assert.equal(withRowBuilder(insert), insert);
});

if (DIALECTS.includes('postgres')) {
  test('postgres: BIGINT comes back as a number through the pool, and importing the module changed no global parser', async () => {
    const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    // Node's pg turns int8 into a string by default; the product's pool passes its own parser.
    assert.equal(pg.types.getTypeParser(20)('9007199254740991'), '9007199254740991');
    const db = createDatabase({ url });
    after(() => db.destroy());
    const { rows } = await sql<{ n: number; m: string }>`select 9007199254740991::int8 as n, 12::numeric as m`.execute(db);
    assert.deepEqual(rows, [{ n: 9007199254740991, m: '12' }]);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    after(() => client.end());
    assert.deepEqual((await client.query('select 5::int8 as n')).rows, [{ n: '5' }], "another pool's client is untouched");
  });
}
