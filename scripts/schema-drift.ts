import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { generate } from '@graphql-codegen/cli';
import { printSchemaSDL } from '../src/schema/print.js';

/**
 * Files that are generated from the code and committed, which differ from what
 * the code generates now. Empty when `schema.graphql` and the client are current.
 */
export async function findSchemaDrift(root: string): Promise<string[]> {
  const drifted: string[] = [];
  const committed = await readFile(path.join(root, 'schema.graphql'), 'utf8').catch(() => '');
  if (committed !== printSchemaSDL()) drifted.push('schema.graphql');
  const { default: config } = await import(path.join(root, 'codegen.ts'));
  const outputs = (await generate(
    { ...config, cwd: root, silent: true, schema: path.join(root, 'schema.graphql') },
    false,
  )) as {
    filename: string;
    content: string;
  }[];
  for (const output of outputs) {
    const file = path.resolve(root, output.filename);
    const current = await readFile(file, 'utf8').catch(() => '');
    if (current !== output.content) drifted.push(path.relative(root, file));
  }
  return drifted;
}
