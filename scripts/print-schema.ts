/** Writes `schema.graphql` from the Pothos schema: `npm run schema:print`. */
import { writeFileSync } from 'node:fs';
import { printSchemaSDL } from '../src/schema/print.js';

writeFileSync(new URL('../schema.graphql', import.meta.url), printSchemaSDL());
console.log('wrote schema.graphql');
