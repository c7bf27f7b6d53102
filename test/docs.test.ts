import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  buildSchema,
  Kind,
  NoUnusedFragmentsRule,
  parse,
  specifiedRules,
  validate,
  type DefinitionNode,
  type GraphQLSchema,
} from 'graphql';
import { configVariableDocs, renderConfigurationDocs } from '../scripts/config-docs.js';
import { CONFIG_VARIABLES } from '../src/config.js';
import { ERROR_CODES } from '../src/errors.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

/** README.md and every page under docs/, by path from the root. */
const pages: [string, string][] = [
  ['README.md', read('README.md')],
  ...readdirSync(path.join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name): [string, string] => [`docs/${name}`, read(`docs/${name}`)]),
];

/** The fenced code blocks of a Markdown text in `language`, with the line each starts on. */
export function codeBlocks(markdown: string, language: string): { line: number; code: string }[] {
  const blocks: { line: number; code: string }[] = [];
  const fence = /^( *)```([\w-]*)[^\n]*\n([\s\S]*?)^\1```/gm;
  for (const match of markdown.matchAll(fence)) {
    if (match[2] === language) {
      blocks.push({ line: markdown.slice(0, match.index).split('\n').length, code: match[3] });
    }
  }
  return blocks;
}

/**
 * The errors of one example against the schema. A block may hold several operations
 * (each is checked with the block's fragments) or fragments alone.
 */
function exampleErrors(schema: GraphQLSchema, source: string): string[] {
  let document;
  try {
    document = parse(source);
  } catch (error) {
    return [(error as Error).message];
  }
  const fragments = document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  const rules = specifiedRules.filter((rule) => rule !== NoUnusedFragmentsRule);
  const units: DefinitionNode[][] = operations.length ? operations.map((op) => [op, ...fragments]) : [fragments];
  return units.flatMap((definitions) =>
    validate(schema, { kind: Kind.DOCUMENT, definitions }, rules).map((e) => e.message),
  );
}

test('every GraphQL example in the README and docs/ validates against schema.graphql', () => {
  const schema = buildSchema(read('schema.graphql'));
  const failures: string[] = [];
  let checked = 0;
  for (const [file, text] of pages) {
    for (const block of codeBlocks(text, 'graphql')) {
      checked++;
      for (const message of exampleErrors(schema, block.code)) failures.push(`${file}:${block.line}: ${message}`);
    }
    // The queries inside curl lines too: `"query":"…"` is a JSON string.
    for (const block of codeBlocks(text, 'sh')) {
      for (const match of block.code.matchAll(/"query":("(?:[^"\\]|\\.)*")/g)) {
        checked++;
        const query = JSON.parse(match[1]) as string;
        for (const message of exampleErrors(schema, query)) failures.push(`${file}:${block.line}: ${message}`);
      }
    }
  }
  assert.deepEqual(failures, []);
  assert.ok(checked >= 15, `only ${checked} examples found`);
});

test('the validation catches a field asked where it does not live', () => {
  const schema = buildSchema(read('schema.graphql'));
  assert.deepEqual(exampleErrors(schema, '{ asset(id: "x") { metadata { placeholder } } }'), []);
  assert.match(exampleErrors(schema, '{ asset(id: "x") { placeholder } }').join(), /Cannot query field "placeholder"/);
  assert.deepEqual(exampleErrors(schema, 'fragment F on Asset { id title }'), []);
});

test('docs/configuration.md is what npm run docs:config writes', () => {
  assert.equal(read('docs/configuration.md'), renderConfigurationDocs(), 'run npm run docs:config and commit it');
});

test('every configuration variable has a description in src/config.ts', () => {
  const undocumented = configVariableDocs()
    .filter((v) => !v.description)
    .map((v) => v.name);
  assert.deepEqual(undocumented, []);
  assert.equal(configVariableDocs().length, CONFIG_VARIABLES.length);
});

/** Variables the product reads outside config.ts: the CLI's own, and the test suite's. */
function variablesReadElsewhere(): Set<string> {
  const names = new Set<string>();
  const sources = [
    ...['src/cli.ts', 'src/cli-files.ts'].map((file) => [file, /\benv\.([A-Z][A-Z0-9_]+)/g] as const),
    ...readdirSync(path.join(root, 'test'))
      .filter((name) => name.endsWith('.ts'))
      .map((name) => [`test/${name}`, /process\.env\.([A-Z][A-Z0-9_]+)/g] as const),
  ];
  for (const [file, pattern] of sources) for (const match of read(file).matchAll(pattern)) names.add(match[1]);
  return names;
}

test('every environment variable the README and docs/ name exists', () => {
  const schema = buildSchema(read('schema.graphql'));
  const enumValues = new Set(
    Object.values(schema.getTypeMap()).flatMap((type) =>
      'getValues' in type ? type.getValues().map((v) => v.name) : [],
    ),
  );
  // Read by Node or the C library, not by assetgate: docs may name them as operators' knobs.
  const platform = ['NODE_OPTIONS', 'MALLOC_ARENA_MAX'];
  const known = new Set<string>([...CONFIG_VARIABLES, ...variablesReadElsewhere(), ...platform]);
  const unknown: string[] = [];
  for (const [file, text] of pages) {
    // `NAME_WITH_UNDERSCORES` in backticks, $NAME or ${NAME}, and NAME=value assignments.
    const named = [
      ...text.matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`/g),
      ...text.matchAll(/\$\{?([A-Z][A-Z0-9_]+)/g),
      ...text.matchAll(/(?<![\w-])([A-Z][A-Z0-9_]+)=/g),
    ].map((m) => m[1]);
    for (const name of new Set(named)) {
      if (known.has(name) || enumValues.has(name) || (ERROR_CODES as readonly string[]).includes(name)) continue;
      unknown.push(`${file}: ${name}`);
    }
  }
  assert.deepEqual(unknown, []);
});

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens. */
function anchorsOf(markdown: string): Set<string> {
  const headings = markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.+)$/gm);
  return new Set(
    [...headings].map((m) =>
      m[1]
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-'),
    ),
  );
}

test('the links between the README and docs/ lead to files and headings that exist', () => {
  const broken: string[] = [];
  for (const [file, text] of pages) {
    for (const match of text.matchAll(/\]\(([^)#\s]*)(?:#([^)\s]*))?\)/g)) {
      const [, target, anchor] = match;
      if (/^[a-z]+:/.test(target)) continue;
      const resolved = target ? path.join(path.dirname(file), target) : file;
      if (!existsSync(path.join(root, resolved))) broken.push(`${file}: ${target}`);
      else if (anchor && resolved.endsWith('.md') && !anchorsOf(read(resolved)).has(anchor)) {
        broken.push(`${file}: ${target}#${anchor}`);
      }
    }
  }
  assert.deepEqual(broken, []);
});
