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
