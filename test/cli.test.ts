import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { tempDir } from './helpers.js';

const BIN = path.join(fileURLToPath(new URL('..', import.meta.url)), 'bin/assetgate.js');
const run = promisify(execFile);

describe('the assetgate command (real process)', () => {
  const data = tempDir('assetgate-cli-');
  const env = { ...process.env, DATA_DIR: data.dir };
  after(data.remove);

  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  /** Asks the server, built on the same DATA_DIR, who a key is. */
  async function whoami(key: string) {
    // The CLI revokes from another process: with KEY_CACHE_TTL 0 this server reads a key's row on every request.
    const app = await createApp(loadConfig({ DATA_DIR: data.dir, KEY_CACHE_TTL: '0' }));
    try {
      const response = await app.yoga.fetch('http://x/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ query: '{ viewer { org scopes mode } }' }),
      });
      return (await response.json()) as any;
    } finally {
      await app.close();
    }
  }

  let created: { id: string; key: string; org: string; scopes: string[]; mode: string };
  before(async () => {
    // The server's first start makes the database; the CLI only opens one that exists.
    await (await createApp(loadConfig({ DATA_DIR: data.dir }))).close();
    const result = await cli(
      'keys',
      'create',
      '--org',
      'acme',
      '--scope',
      'read:assets',
      '--scope',
      'write:assets',
      '--name',
      'ci',
      '--json',
    );
    assert.equal(result.code, 0, result.stderr);
    created = JSON.parse(result.stdout);
  });

  test('keys create --json prints the key once, with id, org, scopes and mode', async () => {
    assert.deepEqual(Object.keys(created).sort(), ['id', 'key', 'mode', 'org', 'scopes']);
    assert.match(created.key, /^sk_live_acme_[0-9a-f]{48}$/);
    assert.deepEqual(created.scopes, ['read:assets', 'write:assets']);
    assert.equal(created.mode, 'live');
    const who = await whoami(created.key);
    assert.deepEqual(who.data.viewer, { org: 'acme', scopes: ['read:assets', 'write:assets'], mode: 'LIVE' });
  });

  test('--test makes a test key', async () => {
    const result = await cli('keys', 'create', '--org', 'acme', '--scope', 'read:assets', '--test', '--json');
    assert.match(JSON.parse(result.stdout).key, /^sk_test_acme_/);
  });

  test('keys list never shows a secret', async () => {
    const result = await cli('keys', 'list', '--org', 'acme', '--json');
    assert.equal(result.code, 0);
    const keys = JSON.parse(result.stdout);
    assert.ok(keys.some((k: any) => k.id === created.id && k.name === 'ci'));
    assert.ok(!result.stdout.includes(created.key));
    const text = await cli('keys', 'list');
    assert.match(text.stdout, new RegExp(created.id));
    assert.ok(!text.stdout.includes(created.key));
  });

  test('keys revoke ID stops the key at once', async () => {
    const result = await cli('keys', 'revoke', created.id);
    assert.equal(result.code, 0, result.stderr);
    const who = await whoami(created.key);
    assert.equal(who.errors[0].extensions.code, 'UNAUTHENTICATED');
  });

  test('bad input: exit 2 for usage, 1 for a refused request, 1 for bad configuration', async () => {
    assert.equal((await cli('keys', 'create', '--org', 'acme')).code, 2);
    const unknown = await cli('frobnicate');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^assetgate: unknown command "frobnicate"\n\nusage:/);
    const unknownKeys = await cli('keys', 'lst');
    assert.equal(unknownKeys.code, 2);
    assert.match(unknownKeys.stderr, /unknown command "keys lst"/);
    const badScope = await cli('keys', 'create', '--org', 'acme', '--scope', 'root');
    assert.equal(badScope.code, 1);
    assert.match(badScope.stderr, /Unknown scope "root"/);
    assert.equal((await cli('keys', 'create', '--org', 'Bad_Org', '--scope', 'read:assets')).code, 1);
    assert.equal((await cli('keys', 'revoke', '00000000-0000-4000-8000-000000000000')).code, 1);
    const { code, stderr } = await run(process.execPath, [BIN, 'keys', 'list'], { env: { ...env, PORT: 'x' } }).then(
      () => ({ code: 0, stderr: '' }),
      (e) => e,
    );
    assert.equal(code, 1);
    assert.match(stderr, /PORT/);
  });

  test('keys and fsck say which database they open, and refuse one that does not exist', async () => {
    const listed = await cli('keys', 'list');
    assert.equal(listed.code, 0);
    assert.match(listed.stderr, new RegExp(`database ${path.join(data.dir, 'assetgate.db')}`));
    // No DATA_DIR, in a folder with no data/: the default ./data/assetgate.db is not there.
    const elsewhere = tempDir('assetgate-cli-empty-');
    try {
      const bare = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'DATA_DIR'));
      for (const args of [['keys', 'list'], ['keys', 'revoke', 'key_1'], ['fsck']]) {
        const result = await run(process.execPath, [BIN, ...args], { env: bare, cwd: elsewhere.dir }).then(
          () => ({ code: 0, stdout: '', stderr: '' }),
          (e: { code: number; stdout: string; stderr: string }) => e,
        );
        // fsck's 3 is "could not finish" (docs/fsck.md); keys says 1 for a refused request.
        assert.equal(result.code, args[0] === 'fsck' ? 3 : 1, args.join(' '));
        assert.equal(result.stdout, '');
        assert.match(result.stderr, new RegExp(`no database at ${path.join(elsewhere.dir, 'data', 'assetgate.db')}`));
        assert.equal(existsSync(path.join(elsewhere.dir, 'data')), false, 'nothing was created');
      }
      // keys create may come before the first start (the contract lets it): it makes the database, says so, and the server then uses it.
      const created = await run(
        process.execPath,
        [BIN, 'keys', 'create', '--org', 'acme', '--scope', 'read:assets', '--json'],
        {
          env: bare,
          cwd: elsewhere.dir,
        },
      );
      const dbFile = path.join(elsewhere.dir, 'data', 'assetgate.db');
      assert.match(created.stderr, new RegExp(`database ${dbFile} \\(new\\)`));
      const made = JSON.parse(created.stdout);
      const listedAfter = await run(process.execPath, [BIN, 'keys', 'list', '--json'], {
        env: bare,
        cwd: elsewhere.dir,
      });
      assert.deepEqual(
        JSON.parse(listedAfter.stdout).map((k: { id: string }) => k.id),
        [made.id],
      );
    } finally {
      elsewhere.remove();
    }
  });
});
