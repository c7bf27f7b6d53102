/**
 * Builds row objects from the value arrays SQLite returns in raw mode.
 *
 * better-sqlite3 builds each row object property by property, which for a page of wide
 * rows costs twice what reading them does. A function made once per statement with an
 * object literal of its columns lets V8 give every row the same shape from the start.
 * The source of that function holds only JSON-quoted column names and indexes, so no
 * column name can inject code.
 */
export type RowBuilder = (values: readonly unknown[]) => Record<string, unknown>;

/**
 * The builder for rows of columns `names`, in order; or `undefined` when the names cannot be
 * written as a literal (a column named `__proto__` would set the prototype), so that the
 * caller leaves such a statement to better-sqlite3. When a name occurs twice the later
 * column wins, as in better-sqlite3's own row objects.
 */
export function rowBuilder(names: readonly string[]): RowBuilder | undefined {
  if (names.includes('__proto__')) return undefined;
  const body = `return {${names.map((name, i) => `${JSON.stringify(name)}: r[${i}]`).join(', ')}};`;
  return new Function('r', body) as RowBuilder;
}
