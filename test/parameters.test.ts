import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/*
 * No positional parameter list longer than three (STYLE.md): a longer one takes an options
 * object (or a small value type). GraphQL resolvers keep the four parameters Pothos calls
 * them with (parent, args, context, info).
 */

/** Callbacks whose four parameters graphql-js or Pothos fix: resolvers and the scope plugin's error hook. */
const FRAMEWORK = /^(resolve|subscribe|unauthorizedError)$/;

/** The property an anonymous function is given to: `{ resolve: fn }` or `field.resolve = fn`. */
function slotOf(parent: ts.Node, sf: ts.SourceFile): string {
  if (ts.isPropertyAssignment(parent)) return parent.name.getText(sf);
  if (ts.isBinaryExpression(parent) && ts.isPropertyAccessExpression(parent.left)) return parent.left.name.getText(sf);
  return '';
}

const root = fileURLToPath(new URL('..', import.meta.url));

/** Declarations of `source` with more than three parameters, as "file name (count)". Pothos resolvers excepted. */
export function longParameterLists(file: string, source: string): { key: string; count: number }[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const found: { key: string; count: number }[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && node.parameters.length > 3) {
      const named = (node as { name?: ts.Node }).name;
      const name = ts.isConstructorDeclaration(node) ? 'constructor' : named ? named.getText(sf) : undefined;
      const resolver = !name && node.parameters.length === 4 && FRAMEWORK.test(slotOf(node.parent, sf));
      if (!resolver)
        found.push({
          key: `${file} ${name ?? `<anonymous> line ${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}`}`,
          count: node.parameters.length,
        });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

const sources = (readdirSync(path.join(root, 'src'), { recursive: true }) as string[])
  .map((name) => `src/${name.split(path.sep).join('/')}`)
  .filter((file) => file.endsWith('.ts') && !file.startsWith('src/client/gql/'));

test('no declaration in src/ takes more than three positional parameters', () => {
  assert.ok(sources.length > 100, `only ${sources.length} files read`);
  const found = sources.flatMap((file) => longParameterLists(file, readFileSync(path.join(root, file), 'utf8')));
  assert.deepEqual(found, []);
});

test('the parameter rule catches what it forbids', () => {
  const planted = `
    export function four(a: number, b: number, c: number, d: number) {}
    export function three(a: number, b: number, c: number) {}
    class K { constructor(a: 1, b: 2, c: 3, d: 4) {} m(a: 1, b: 2, c: 3, d: 4, e: 5) {} }
    const f = (a: 1, b: 2, c: 3, d: 4) => 0;
    const field = { resolve: (parent: 1, args: 2, context: 3, info: 4) => 0 };
    field.resolve = (parent: 1, args: 2, context: 3, info: 4) => 0;
    const other = { handle: (a: 1, b: 2, c: 3, d: 4) => 0 };
  `;
  assert.deepEqual(longParameterLists('src/x.ts', planted), [
    { key: 'src/x.ts four', count: 4 },
    { key: 'src/x.ts constructor', count: 4 },
    { key: 'src/x.ts m', count: 5 },
    { key: 'src/x.ts <anonymous> line 5', count: 4 },
    { key: 'src/x.ts <anonymous> line 8', count: 4 },
  ]);
});

test('no source file of src/ runs over 450 lines (generated code excepted)', () => {
  const lines = (file: string) => readFileSync(path.join(root, file), 'utf8').split('\n').length - 1;
  assert.deepEqual(
    sources.filter((file) => lines(file) > 450),
    [],
  );
});
