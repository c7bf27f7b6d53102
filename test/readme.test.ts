import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CONFIG_VARIABLES } from '../src/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
// The reference moves from the README to docs/: a variable documented in either counts.
const docsDir = new URL('../docs/', import.meta.url);
const reference = [
  readme,
  ...readdirSync(docsDir)
    .filter((name) => name.endsWith('.md'))
    .map((name) => readFileSync(new URL(name, docsDir), 'utf8')),
].join('\n');

test('the README and docs/ document every configuration variable', () => {
  const missing = CONFIG_VARIABLES.filter((name) => !reference.includes(`| \`${name}\` |`));
  assert.deepEqual(missing, []);
});

test('the README gives the two set-up commands and curl for upload and download', () => {
  assert.match(readme, /npm install/);
  assert.match(readme, /npm start/);
  assert.match(readme, /curl[^\n]*\/graphql[\s\S]*-F 0=@/);
  assert.match(readme, /curl[^\n]*download\//);
});
