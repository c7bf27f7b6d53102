import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startServer, tempDir, type ServerProcess } from './helpers.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');

/**
 * What the README's TypeScript block must do (until the guide holds one): import the
 * installed package, read the gateway's URL and key from the environment, await at top level.
 */
const CONTRACT_EXAMPLE = `import { createClient } from 'assetgate/client';

const client = createClient({ url: process.env.ASSETGATE_URL!, apiKey: process.env.ASSETGATE_KEY });
const asset = await client.upload(
  { blob: new Blob(['hello, assetgate\\n'], { type: 'text/plain' }), filename: 'hello.txt' },
  { tags: ['first'] },
);
const ready = await client.waitUntilProcessed(asset.id);
console.log(ready.status, ready.filename, ready.size, ready.url);
for await (const found of client.list({ filter: { tags: ['first'] } })) console.log(found.id, found.title);
`;

/** The README's one \`ts\` block that imports the package, or the contract's while the README has none. */
function readmeExample(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((match) => match[1]!);
  const installed = blocks.filter((block) => block.includes(`from 'assetgate/client'`));
  assert.ok(installed.length <= 1, 'the README holds one TypeScript block for the package');
  return installed[0] ?? CONTRACT_EXAMPLE;
}

const folder = tempDir('assetgate-app-');
const app = path.join(folder.dir, 'app');
let server: ServerProcess;
const data = tempDir();

before(async () => {
  // The product as it would be published: `npm pack`, then the tarball unpacked where
  // `npm install` puts it. The client's own dependencies come from this checkout; anything
  // else it imported (a server module) would be missing there and fail the run.
  await run('npm', ['pack', ROOT, '--ignore-scripts', '--pack-destination', folder.dir], { cwd: folder.dir });
  const tarball = readdirSync(folder.dir).find((name) => name.endsWith('.tgz'))!;
  const installed = path.join(app, 'node_modules/assetgate');
  mkdirSync(installed, { recursive: true });
  await run('tar', ['-xzf', path.join(folder.dir, tarball), '-C', installed, '--strip-components=1']);
  for (const dependency of ['graphql', '@graphql-typed-document-node/core']) {
    mkdirSync(path.dirname(path.join(app, 'node_modules', dependency)), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules', dependency), path.join(app, 'node_modules', dependency));
  }
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  writeFileSync(path.join(app, 'example.mts'), readmeExample());
  server = await startServer(data.dir);
});
after(() => {
  server?.child.kill();
  folder.remove();
  data.remove();
});

test('the packed tarball holds the client, its types, the CLI and the server, and no sources', () => {
  const files = readdirSync(path.join(app, 'node_modules/assetgate'), { recursive: true }) as string[];
  for (const file of ['dist/client/index.js', 'dist/client/index.d.ts', 'bin/assetgate.js', 'dist/main.js']) {
    assert.ok(files.includes(file), `${file} is in the tarball`);
  }
  assert.deepEqual(
    files.filter((file) => file.startsWith('src/') || file.startsWith('test/')),
    [],
  );
});

test("the README's TypeScript block type-checks against the installed package's declarations", async () => {
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext'];
  args.push('--target', 'es2022', '--lib', 'es2023,dom', '--types', 'node', '--skipLibCheck');
  args.push('--typeRoots', path.join(ROOT, 'node_modules/@types'), 'example.mts');
  await run(process.execPath, [TSC, ...args], { cwd: app });
});

test("the README's TypeScript block runs unchanged in an app outside the repository", async () => {
  const tsx = import.meta.resolve('tsx');
  const { stdout } = await run(process.execPath, ['--import', tsx, 'example.mts'], {
    cwd: app,
    env: { ...process.env, ASSETGATE_URL: server.url, ASSETGATE_KEY: server.key },
  });
  assert.notEqual(stdout.trim(), '', 'it prints what it did');
});

test('the codegen example generates its typed query from the packed schema and compiles with tsc', async () => {
  const example = path.join(folder.dir, 'codegen-app');
  cpSync(path.join(ROOT, 'examples/codegen-app'), example, {
    recursive: true,
    filter: (source) => !/[/\\](node_modules|dist|gql)$/.test(source),
  });
  mkdirSync(path.join(example, 'node_modules'));
  symlinkSync(path.join(app, 'node_modules/assetgate'), path.join(example, 'node_modules/assetgate'));
  // Its other dependencies are the ones this repository develops with.
  for (const dependency of ['graphql', '@graphql-codegen', '@graphql-typed-document-node', '@types']) {
    symlinkSync(path.join(ROOT, 'node_modules', dependency), path.join(example, 'node_modules', dependency));
  }
  await run(
    process.execPath,
    [path.join(ROOT, 'node_modules/@graphql-codegen/cli/cjs/bin.js'), '--config', 'codegen.ts'],
    {
      cwd: example,
    },
  );
  const generated = readFileSync(path.join(example, 'src/gql/graphql.ts'), 'utf8');
  assert.match(generated, /export type RecentAssetsQuery = /);
  await run(process.execPath, [TSC, '-p', 'tsconfig.json', '--noEmit'], { cwd: example });
});
