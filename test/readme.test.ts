import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CONFIG_VARIABLES } from '../src/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test('the README documents every configuration variable', () => {
  const missing = CONFIG_VARIABLES.filter((name) => !readme.includes(`| \`${name}\` |`));
  assert.deepEqual(missing, []);
});

test('the README gives the two set-up commands and curl for upload and download', () => {
  assert.match(readme, /npm install/);
  assert.match(readme, /npm start/);
  assert.match(readme, /curl[^\n]*\/graphql[\s\S]*-F 0=@/);
  assert.match(readme, /curl[^\n]*download\//);
});
