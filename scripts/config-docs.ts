/**
 * The configuration reference, generated from `src/config.ts`: each variable of
 * `CONFIG_VARIABLES` is described by the JSDoc of the `Config` field it sets. A field
 * names its variables with `@env NAME` tags, or by convention: `maxFileSize` sets
 * `MAX_FILE_SIZE`, and a field of `S3Config` is prefixed `S3_`. `npm run docs:config`
 * writes docs/configuration.md; a test fails when the file differs or a variable has no
 * description.
 */
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { CONFIG_VARIABLES } from '../src/config.js';

/** What the reference says about one variable. */
export interface VariableDoc {
  name: string;
  description: string;
  default: string | null;
}

const SOURCE = new URL('../src/config.ts', import.meta.url);

function snake(field: string): string {
  return field.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

function jsDocOf(node: ts.Node): { text: string; tags: Map<string, string[]> } {
  const tags = new Map<string, string[]>();
  let text = '';
  for (const doc of ts.getJSDocCommentsAndTags(node)) {
    if (!ts.isJSDoc(doc)) continue;
    text += ts.getTextOfJSDocComment(doc.comment) ?? '';
    for (const tag of doc.tags ?? []) {
      const name = tag.tagName.text;
      tags.set(name, [...(tags.get(name) ?? []), (ts.getTextOfJSDocComment(tag.comment) ?? '').trim()]);
    }
  }
  return { text: text.replace(/\s+/g, ' ').trim(), tags };
}

/** Every variable `src/config.ts` documents, keyed by name (a field's own `@env` tags first). */
function documentedVariables(source: ts.SourceFile): Map<string, VariableDoc> {
  const interfaces = new Map<string, ts.InterfaceDeclaration>();
  source.forEachChild((node) => {
    if (ts.isInterfaceDeclaration(node)) interfaces.set(node.name.text, node);
  });
  const found = new Map<string, VariableDoc>();
  const visit = (members: ts.NodeArray<ts.TypeElement>, prefix: string) => {
    for (const member of members) {
      if (!ts.isPropertySignature(member) || !member.type) continue;
      const field = member.name.getText(source);
      const nested = ts.isTypeReferenceNode(member.type) ? interfaces.get(member.type.typeName.getText(source)) : null;
      if (nested) visit(nested.members, snake(field) + '_');
      else if (ts.isTypeLiteralNode(member.type) && !jsDocOf(member).tags.has('env')) visit(member.type.members, '');
      const { text, tags } = jsDocOf(member);
      const names = tags.get('env')?.flatMap((t) => t.split(/[\s,]+/).filter(Boolean)) ?? [prefix + snake(field)];
      for (const name of names) {
        if (!found.has(name)) found.set(name, { name, description: text, default: tags.get('default')?.[0] ?? null });
      }
    }
  };
  const config = interfaces.get('Config');
  if (!config) throw new Error('src/config.ts has no interface Config');
  visit(config.members, '');
  return found;
}

/** The documentation of each variable in `CONFIG_VARIABLES`, in its order; a missing one has an empty description. */
export function configVariableDocs(): VariableDoc[] {
  const source = ts.createSourceFile('config.ts', readFileSync(SOURCE, 'utf8'), ts.ScriptTarget.Latest, true);
  const documented = documentedVariables(source);
  return CONFIG_VARIABLES.map((name) => documented.get(name) ?? { name, description: '', default: null });
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function defaultCell(value: string | null): string {
  if (value === null || value === '' || value === 'null' || value === '[]') return 'unset';
  if (value.startsWith('`')) return value;
  // Values are quoted, numeric or one lowercase word in the JSDoc; anything else is prose.
  const literal = /^'(.*)'$/.exec(value)?.[1] ?? /^\[(.*)\]$/.exec(value)?.[1];
  if (literal !== undefined || /^(\d|[a-z]+$)/.test(value)) return `\`${literal ?? value}\``;
  return value;
}

/** docs/configuration.md as `npm run docs:config` writes it. */
export function renderConfigurationDocs(): string {
  const rows = configVariableDocs().map(
    (v) => `| \`${v.name}\` | ${cell(defaultCell(v.default))} | ${cell(v.description)} |`,
  );
  return `# Configuration

<!-- Generated from src/config.ts by \`npm run docs:config\`; edit the JSDoc there, not this file. -->

The server and the CLI's \`keys\` and \`fsck\` commands read these environment variables
(only \`src/main.ts\` and the CLI read the environment). A bad value stops start-up with a
message naming the variable. Sizes take bytes or a unit (\`KB\`, \`MB\`, \`GB\`, \`KiB\`,
\`MiB\`, \`GiB\`); durations take seconds or \`ms\`, \`s\`, \`m\`, \`h\`, \`d\`.

| variable | default | meaning |
| --- | --- | --- |
${rows.join('\n')}

## The CLI's file commands

\`upload\`, \`ls\`, \`get\`, \`rm\` and \`url\` talk to a running server and read two
variables of their own (the TypeScript examples read the same two):

| variable | default | meaning |
| --- | --- | --- |
| \`ASSETGATE_URL\` | \`http://localhost:4000\` | the server to talk to (\`--url\` overrides) |
| \`ASSETGATE_KEY\` | unset | the API key to send (\`--key\` overrides) |
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const missing = configVariableDocs().filter((v) => !v.description);
  if (missing.length) {
    console.error(`no description in src/config.ts for ${missing.map((v) => v.name).join(', ')}`);
    process.exit(1);
  }
  const { writeFileSync } = await import('node:fs');
  writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigurationDocs());
  console.log('wrote docs/configuration.md');
}
