import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The dependency rule (ARCHITECTURE.md): every file of src/ belongs to a layer, imports
 * only from its own layer or those below, and no imports form a circle. Type-only
 * imports count: a type that reaches up couples the layers all the same.
 */

const root = fileURLToPath(new URL('..', import.meta.url));

/** Layers from the bottom up: a file may import files of its own rank or lower. First match wins. */
export const LAYERS: readonly { rank: number; name: string; paths: readonly string[] }[] = [
  {
    rank: 0,
    name: 'base',
    paths: ['src/errors.ts', 'src/global-id.ts', 'src/config.ts', 'src/config-values.ts', 'src/config-sections.ts'],
  },
  {
    rank: 1,
    name: 'stores and adapters',
    paths: ['src/db/', 'src/blob/', 'src/adapters/', 'src/observability/', 'src/client/'],
  },
  { rank: 2, name: 'auth', paths: ['src/auth/'] },
  { rank: 3, name: 'jobs', paths: ['src/jobs/'] },
  { rank: 4, name: 'services', paths: ['src/services/'] },
  { rank: 5, name: 'schema', paths: ['src/schema/'] },
  { rank: 6, name: 'http', paths: ['src/http/'] },
  {
    rank: 7,
    name: 'composition',
    paths: ['src/features/', 'src/app.ts', 'src/main.ts', 'src/cli.ts', 'src/cli-files.ts'],
  },
];

function layerOf(file: string) {
  return LAYERS.find((layer) => layer.paths.some((p) => (p.endsWith('/') ? file.startsWith(p) : file === p)));
}

/** Relative import specifiers of a source text: static, re-exports and dynamic. */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)) {
    found.push(match[1]);
  }
  return found;
}

/** The import graph of `files` (paths from the root), edges to files of the graph. */
function graphOf(files: readonly string[], read: (file: string) => string): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const targets = importsOf(read(file)).map((spec) =>
      path.posix.join(path.posix.dirname(file), spec.replace(/\.js$/, '.ts')),
    );
    graph.set(
      file,
      targets.filter((target) => known.has(target)),
    );
  }
  return graph;
}

/** Imports that reach a higher layer, and files outside every layer. */
export function upwardImports(graph: Map<string, string[]>): string[] {
  const problems: string[] = [];
  for (const [file, targets] of graph) {
    const from = layerOf(file);
    if (!from) {
      problems.push(`${file}: in no layer`);
      continue;
    }
    for (const target of targets) {
      const to = layerOf(target);
      if (to && to.rank > from.rank) problems.push(`${file} (${from.name}) imports ${target} (${to.name})`);
    }
  }
  return problems;
}

/** The circles of the graph: its strongly connected components of more than one file, or a file importing itself. */
export function circles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (file: string) => {
    index.set(file, next);
    low.set(file, next++);
    stack.push(file);
    onStack.add(file);
    for (const target of graph.get(file) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (onStack.has(target)) low.set(file, Math.min(low.get(file)!, index.get(target)!));
    }
    if (low.get(file) === index.get(file)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      if (component.length > 1 || graph.get(file)?.includes(file)) found.push(component.sort());
    }
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return found;
}

const sources = (readdirSync(path.join(root, 'src'), { recursive: true }) as string[])
  .map((name) => `src/${name.split(path.sep).join('/')}`)
  .filter((file) => file.endsWith('.ts'));
const graph = graphOf(sources, (file) => readFileSync(path.join(root, file), 'utf8'));

test('no file of src/ imports from a layer above its own', () => {
  assert.ok(graph.size > 100, `only ${graph.size} files read`);
  const edges = [...graph.values()].reduce((n, targets) => n + targets.length, 0);
  assert.ok(edges > 300, `only ${edges} imports found`);
  assert.deepEqual(upwardImports(graph), []);
});

test('no imports of src/ form a circle', () => {
  assert.deepEqual(circles(graph), []);
});

test('resolvers and routes reach the database through services: schema/ and http/ import no repository', () => {
  const reaching = [...graph].flatMap(([file, targets]) =>
    /^src\/(schema|http)\//.test(file)
      ? targets
          .filter((target) => /^src\/db\/(.*-repository|repositories)\.ts$/.test(target))
          .map((t) => `${file} imports ${t}`)
      : [],
  );
  assert.deepEqual(reaching, []);
});

test('the rule catches what it forbids', () => {
  const planted = graphOf(
    ['src/db/a.ts', 'src/services/b.ts', 'src/services/c.ts', 'src/stray.ts'],
    (file) =>
      ({
        'src/db/a.ts': "import { b } from '../services/b.js';",
        'src/services/b.ts': "import type { C } from './c.js';\nexport const x = await import('./c.js');",
        'src/services/c.ts': "export { b } from './b.js';",
        'src/stray.ts': '',
      })[file]!,
  );
  assert.deepEqual(upwardImports(planted), [
    'src/db/a.ts (stores and adapters) imports src/services/b.ts (services)',
    'src/stray.ts: in no layer',
  ]);
  assert.deepEqual(circles(planted), [['src/services/b.ts', 'src/services/c.ts']]);
});
