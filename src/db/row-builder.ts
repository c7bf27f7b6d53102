import type SQLite from 'better-sqlite3';
import type { SqliteStatement } from 'kysely';

/**
 * A function that turns a row read as an array into the object better-sqlite3 would have
 * built, made once per statement: an object literal with the columns as its keys, so V8
 * gives every row one shape and builds it in one step (better-sqlite3 adds property after
 * property, which for a page of wide rows costs twice what reading them does).
 *
 * Returns null when a literal cannot stand in for better-sqlite3's object: a column named
 * `__proto__` would set the prototype instead of a property.
 */
export function createRowBuilder(names: readonly string[]): ((values: readonly unknown[]) => unknown) | null {
  if (names.includes('__proto__')) return null;
  // Later columns of the same name win, as in better-sqlite3's own row objects. The
  // source holds only JSON-quoted column names and array indexes, never a value.
  return new Function('r', `return {${names.map((name, i) => `${JSON.stringify(name)}: r[${i}]`).join(', ')}};`) as (
    values: readonly unknown[],
  ) => unknown;
}

/**
 * The statement Kysely's SQLite driver is given: readers fetch raw arrays and build rows
 * with `createRowBuilder`; writers (and statements it cannot serve) are left as they are.
 */
export function withRowBuilder(statement: SQLite.Statement): SqliteStatement {
  if (!statement.reader) return statement;
  const toRow = createRowBuilder(statement.columns().map((column) => column.name));
  if (!toRow) return statement;
  const rows = statement.raw(true);
  return {
    reader: true,
    all: (parameters) => (rows.all(parameters) as unknown[][]).map(toRow),
    run: (parameters) => statement.run(parameters),
    *iterate(parameters) {
      for (const values of rows.iterate(parameters) as IterableIterator<unknown[]>) yield toRow(values);
    },
  };
}
