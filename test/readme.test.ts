import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test('the README is a guide: at most 250 lines', () => {
  assert.ok(readme.split('\n').length <= 250, `README.md has ${readme.split('\n').length} lines`);
});

test('the README gives the two set-up commands, the Node CI tests, the test command and curl for upload and download', () => {
  assert.match(readme, /npm install/);
  assert.match(readme, /npm start/);
  assert.match(readme, /npm test/);
  assert.match(readme, /CI tests on Node \d+/);
  assert.match(readme, /curl[^\n]*\/graphql[\s\S]*-F 0=@/);
  assert.match(readme, /curl[^\n]*download\//);
});

test('the README holds one TypeScript example, on the client package and the two variables', () => {
  const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  assert.equal(blocks.length, 1);
  assert.match(blocks[0], /import \{ createClient \} from 'assetgate\/client';/);
  assert.match(blocks[0], /process\.env\.ASSETGATE_URL/);
  assert.match(blocks[0], /process\.env\.ASSETGATE_KEY/);
  assert.match(readme, /\.mts/);
});

test('the README links into docs/ for the reference', () => {
  for (const page of ['configuration', 'api', 'access', 'security', 'lifecycle', 'scaling', 'performance']) {
    assert.match(readme, new RegExp(`\\(docs/${page}\\.md\\)`), page);
  }
});
