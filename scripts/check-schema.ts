/** Fails when schema.graphql or the generated client differ from the code: `npm run schema:check`. */
import { fileURLToPath } from 'node:url';
import { findSchemaDrift } from './schema-drift.js';

const drifted = await findSchemaDrift(fileURLToPath(new URL('..', import.meta.url)));
if (drifted.length) {
  console.error(`out of date: ${drifted.join(', ')}; run npm run codegen and commit the result`);
  process.exit(1);
}
console.log('schema.graphql and the generated client are current');
