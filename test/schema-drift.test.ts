import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { findSchemaDrift } from '../scripts/schema-drift.js';

test('schema.graphql and the generated client match the code', async () => {
  const drifted = await findSchemaDrift(fileURLToPath(new URL('..', import.meta.url)));
  assert.deepEqual(drifted, [], 'run `npm run codegen` and commit the result');
});
