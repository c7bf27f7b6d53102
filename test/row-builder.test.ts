import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rowBuilder } from '../src/db/row-builder.js';

test('a row builder makes an object of the columns in order, the later of two same names winning', () => {
  const build = rowBuilder(['id', 'name', 'size', 'name'])!;
  assert.deepEqual(build([1, 'a', 10, 'b']), { id: 1, name: 'b', size: 10 });
  assert.deepEqual(Object.keys(build([2, 'c', 20, 'd'])), ['id', 'name', 'size']);
  assert.deepEqual(rowBuilder([])!([]), {});
});

test('a row builder keeps every value as it is, missing ones undefined', () => {
  const blob = Buffer.from([0, 255]);
  const row = rowBuilder(['n', 'big', 'blob', 'none', 'absent'])!([0.5, 9007199254740993n, blob, null]);
  assert.equal(row.n, 0.5);
  assert.equal(row.big, 9007199254740993n);
  assert.equal(row.blob, blob);
  assert.equal(row.none, null);
  assert.ok('absent' in row);
  assert.equal(row.absent, undefined);
});

test('column names are data, never code: quotes, backslashes, newlines and keywords come out as written', () => {
  const names = ['a"b', "c'd", 'e\\f', 'g\nh', '}; throw new Error("x"); ({', 'constructor', 'r', '0', ''];
  const row = rowBuilder(names)!(names.map((_, i) => i));
  assert.deepEqual(Object.keys(row).sort(), [...names].sort());
  names.forEach((name, i) => assert.equal(row[name], i, JSON.stringify(name)));
  assert.equal(Object.getPrototypeOf(row), Object.prototype);
});

test('a column named __proto__ gets no builder (a literal would set the prototype)', () => {
  assert.equal(rowBuilder(['id', '__proto__']), undefined);
});

test('SQLite keeps at most SQLITE_STATEMENT_CACHE statements prepared, dropping the oldest first', async () => {
  const { default: SQLite } = await import('better-sqlite3');
  const { withStatementCache } = await import('../src/db/database.js');
  const raw = new SQLite(':memory:');
  const db = withStatementCache(raw, { limit: 4 });
  try {
    // Six distinct texts, as six lengths of an `ids` list would make.
    const texts = Array.from({ length: 6 }, (_, i) => `select ${Array.from({ length: i + 1 }, () => '?').join(', ')}`);
    const first = texts.map((text) => db.prepare(text));
    // The two oldest were dropped: asking again prepares them anew.
    assert.notEqual(db.prepare(texts[0]), first[0]);
    assert.notEqual(db.prepare(texts[1]), first[1]);
    // The newest four were kept... but the two just prepared again pushed out texts[2] and texts[3].
    assert.equal(db.prepare(texts[5]), first[5]);
    assert.equal(db.prepare(texts[4]), first[4]);
    assert.notEqual(db.prepare(texts[2]), first[2]);
    // A statement prepared again runs as the first did.
    assert.deepEqual(Object.values(db.prepare(texts[0]).all([7])[0] as object), [7]);
  } finally {
    raw.close();
  }
});
