import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { SCOPES, type Scope } from '../src/auth/scopes.js';
import { buildSchema } from '../src/schema/index.js';
import {
  createTestApp,
  listen,
  multipartForm,
  type Operation,
  sendOperation,
  type TestApp,
  forEachDialect,
} from './helpers.js';

forEachDialect(() => {
  const VIEWER = '{ viewer { org name scopes mode usage { assetCount bytesStored } apiKey { id lastUsedAt } } }';

  describe('API keys', () => {
    let now = Date.parse('2026-06-01T00:00:00Z');
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    before(async () => {
      app = await createTestApp({}, { clock: () => now });
      server = await listen(app.handler);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    test('a key is accepted as Bearer, X-API-Key or API-KEY', async () => {
      const styles: Record<string, string>[] = [
        { authorization: `Bearer ${app.key}` },
        { 'x-api-key': app.key },
        { 'api-key': app.key },
      ];
      for (const headers of styles) {
        const result = await app.gql(VIEWER, {}, headers);
        assert.equal(result.errors, undefined, JSON.stringify(headers));
        assert.equal(result.data.viewer.org, 'acme');
        assert.deepEqual(result.data.viewer.scopes, [...SCOPES]);
        assert.equal(result.data.viewer.mode, 'LIVE');
      }
    });

    test('keys look like sk_live_<org>_<random> with at least 128 random bits', async () => {
      assert.match(app.key, /^sk_live_acme_[0-9a-f]{48}$/);
      assert.match(await app.createKey('acme', ['read:assets'], 'test'), /^sk_test_acme_[0-9a-f]{48}$/);
    });

    test('missing, malformed, unknown, revoked and expired keys: 401 with one message', async () => {
      const revoked = await app.services.apiKeys.create({ orgId: 'acme', scopes: ['read:assets'] });
      await app.services.apiKeys.revoke(revoked.record.id);
      const expiring = await app.services.apiKeys.create({
        orgId: 'acme',
        scopes: ['read:assets'],
        expiresAt: new Date(now + 1000),
      });
      assert.equal((await app.gql(VIEWER, {}, { authorization: `Bearer ${expiring.key}` })).errors, undefined);
      now += 2000;
      const messages = new Set<string>();
      const cases: Record<string, string>[] = [
        {},
        { authorization: 'Bearer' },
        { authorization: 'Basic dXNlcjpwYXNz' },
        { authorization: 'Bearer sk_live_acme_nothex' },
        { authorization: `Bearer sk_live_acme_${'0'.repeat(48)}` },
        { 'x-api-key': `${app.key}x` },
        { authorization: `Bearer ${revoked.key}` },
        { authorization: `Bearer ${expiring.key}` },
      ];
      for (const headers of cases) {
        const result = await app.gql(VIEWER, {}, headers);
        assert.equal(result.status, 401, JSON.stringify(headers));
        assert.equal(result.errors?.[0].extensions.code, 'UNAUTHENTICATED');
        messages.add(result.errors![0].message);
      }
      assert.equal(messages.size, 1);
      // The download route answers the same way for a bad key.
      const response = await fetch(`${server.url}/download/x`, { headers: { authorization: `Bearer ${revoked.key}` } });
      assert.equal(response.status, 401);
    });

    test('a multipart upload with a bad key is refused before its body is read', async () => {
      const form = multipartForm(
        'mutation($f: Upload!) { uploadAsset(input: { file: $f }) { asset { id } } }',
        { f: null },
        [['variables.f', new Blob([new Uint8Array(1024 * 1024)]), 'big.bin']],
      );
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        body: form,
        headers: { authorization: 'Bearer nope', 'x-graphql-yoga-csrf': '1' },
      });
      assert.equal(response.status, 401);
      assert.equal(((await response.json()) as any).errors[0].extensions.code, 'UNAUTHENTICATED');
      assert.equal((await app.db.selectFrom('assets').select('id').execute()).length, 0);
    });

    test("lastUsedAt is recorded; viewer reports the usage of the key's org and mode", async () => {
      await app.services.assets.upload(
        { orgId: 'acme', mode: 'live' },
        { stream: Readable.from([Buffer.from('12345')]), filename: 'five.txt' },
      );
      const result = await app.gql(VIEWER);
      assert.deepEqual(result.data.viewer.usage, { assetCount: 1, bytesStored: 5 });
      // Recorded at first use, then at most once a minute.
      assert.equal(result.data.viewer.apiKey.lastUsedAt, '2026-06-01T00:00:00.000Z');
      const test = await app.gql(
        VIEWER,
        {},
        { authorization: `Bearer ${await app.createKey('acme', ['read:assets'], 'test')}` },
      );
      assert.deepEqual(test.data.viewer.usage, { assetCount: 0, bytesStored: 0 }, 'test mode sees its own data only');
    });

    test('createApiKey shows the secret once, never grants more than the caller has', async () => {
      const created = await app.gql(
        'mutation { createApiKey(input: { name: "ci", scopes: ["read:assets"] }) { key apiKey { id name scopes mode org } } }',
      );
      const { key, apiKey } = created.data.createApiKey;
      assert.match(key, /^sk_live_acme_/);
      assert.deepEqual(apiKey.scopes, ['read:assets']);
      const listed = await app.gql('{ apiKeys { id prefix } }');
      assert.ok(!JSON.stringify(listed).includes(key), 'lists never show the secret');
      assert.ok(listed.data.apiKeys.some((k: any) => k.id === apiKey.id && key.startsWith(k.prefix)));

      const limited = { authorization: `Bearer ${await app.createKey('acme', ['read:assets', 'admin:keys'])}` };
      const escalate = await app.gql(
        'mutation { createApiKey(input: { scopes: ["delete:assets"] }) { key } }',
        {},
        limited,
      );
      assert.equal(escalate.errors?.[0].extensions.code, 'FORBIDDEN');
      assert.match(escalate.errors![0].message, /delete:assets/);
      const testAdmin = { authorization: `Bearer ${await app.createKey('acme', [...SCOPES], 'test')}` };
      const toLive = await app.gql(
        'mutation { createApiKey(input: { scopes: ["read:assets"], mode: LIVE }) { key } }',
        {},
        testAdmin,
      );
      assert.equal(toLive.errors?.[0].extensions.code, 'FORBIDDEN');
      const badScope = await app.gql('mutation { createApiKey(input: { scopes: ["root"] }) { key } }');
      assert.equal(badScope.errors?.[0].extensions.code, 'BAD_USER_INPUT');

      const revoked = await app.gql(
        'mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } } }',
        {
          id: apiKey.id,
        },
      );
      assert.ok(revoked.data.revokeApiKey.apiKey.revokedAt);
      assert.equal((await app.gql(VIEWER, {}, { authorization: `Bearer ${key}` })).status, 401);
    });

    test('bootstraps racing on a fresh install (gateways starting together) make one key', async () => {
      const fresh = await createTestApp();
      try {
        await fresh.db.deleteFrom('api_keys').execute();
        const made = await Promise.all(Array.from({ length: 5 }, () => fresh.services.apiKeys.bootstrap()));
        assert.equal(made.filter(Boolean).length, 1);
        assert.equal((await fresh.db.selectFrom('api_keys').select('id').execute()).length, 1);
      } finally {
        await fresh.dispose();
      }
    });

    test('bootstrap makes org default and one full key on a fresh install only', async () => {
      const fresh = await createTestApp();
      try {
        // createTestApp already made a key, so there is nothing to bootstrap.
        assert.equal(await fresh.services.apiKeys.bootstrap(), null);
        await fresh.db.deleteFrom('api_keys').execute();
        const first = await fresh.services.apiKeys.bootstrap();
        assert.match(first!.key, /^sk_live_default_/);
        assert.deepEqual(first!.record.scopes.split(' '), [...SCOPES]);
        assert.equal(await fresh.services.apiKeys.bootstrap(), null);
        assert.notEqual(first!.record.key_hash, first!.key, 'stored hashed');
        assert.ok(!JSON.stringify(await fresh.db.selectFrom('api_keys').selectAll().execute()).includes(first!.key));
      } finally {
        await fresh.dispose();
      }
    });
  });

  describe('public assets', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    let shared: string;
    let hidden: string;
    before(async () => {
      app = await createTestApp();
      server = await listen(app.handler);
      const tenant = { orgId: 'acme', mode: 'live' as const };
      const one = await app.services.assets.upload(tenant, {
        stream: Readable.from([Buffer.from('public')]),
        filename: 'p.txt',
        isPublic: true,
      });
      const two = await app.services.assets.upload(tenant, {
        stream: Readable.from([Buffer.from('private')]),
        filename: 'q.txt',
      });
      shared = Buffer.from(`Asset:${one.id}`).toString('base64url');
      hidden = Buffer.from(`Asset:${two.id}`).toString('base64url');
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    test('are read and downloaded without a key; everything else is not', async () => {
      const read = await app.gql(
        'query($id: ID!) { asset(id: $id) { title isPublic directory { id } } }',
        { id: shared },
        {},
      );
      assert.deepEqual(read.data.asset, { title: 'p', isPublic: true, directory: null });
      const node = await app.gql('query($id: ID!) { node(id: $id) { id } }', { id: shared }, {});
      assert.equal(node.data.node.id, shared);
      const download = await fetch(`${server.url}/download/${shared}`);
      assert.equal(await download.text(), 'public');

      const secret = await app.gql('query($id: ID!) { asset(id: $id) { title } }', { id: hidden }, {});
      assert.equal(secret.errors?.[0].extensions.code, 'NOT_FOUND');
      assert.equal((await fetch(`${server.url}/download/${hidden}`)).status, 404);
      const list = await app.gql('{ assets { totalCount } }', {}, {});
      assert.equal(list.status, 401);
      assert.equal(list.errors?.[0].extensions.code, 'UNAUTHENTICATED');
    });

    test('another org reads a public asset but cannot change it', async () => {
      const other = { authorization: `Bearer ${await app.createKey('other')}` };
      assert.equal(
        (await app.gql('query($id: ID!) { asset(id: $id) { title } }', { id: shared }, other)).data.asset.title,
        'p',
      );
      const update = await app.gql(
        'mutation($id: ID!) { updateAsset(input: { id: $id, title: "x" }) { asset { id } } }',
        { id: shared },
        other,
      );
      assert.equal(update.errors?.[0].extensions.code, 'NOT_FOUND');
    });
  });

  /** The scope each operation needs; `null`: any valid key. Every operation must be listed. */
  const NEEDS: Record<string, Operation & { scope: Scope | null }> = {
    node: {
      scope: 'read:assets',
      query: 'query($id: ID!) { node(id: $id) { id } }',
      variables: { id: 'QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw' },
    },
    asset: {
      scope: 'read:assets',
      query: 'query($id: ID!) { asset(id: $id) { id } }',
      variables: { id: 'QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw' },
    },
    assets: { scope: 'read:assets', query: '{ assets { totalCount } }' },
    directories: { scope: 'read:assets', query: '{ directories { id } }' },
    viewer: { scope: null, query: '{ viewer { org } }' },
    apiKeys: { scope: 'admin:keys', query: '{ apiKeys { id } }' },
    uploadAsset: {
      scope: 'write:assets',
      query: 'mutation($f: Upload!) { uploadAsset(input: { file: $f }) { asset { id } } }',
      variables: { f: null },
      files: { 'variables.f': 'bytes' },
    },
    uploadAssets: {
      scope: 'write:assets',
      query: 'mutation($f: [Upload!]!) { uploadAssets(input: { files: $f }) { assets { id } } }',
      variables: { f: [null] },
      files: { 'variables.f.0': 'bytes' },
    },
    createAsset: {
      scope: 'write:assets',
      query:
        'mutation { createAsset(input: { title: "t", type: LINK, externalUrl: "https://e.com" }) { asset { id } } }',
    },
    updateAsset: {
      scope: 'write:assets',
      query:
        'mutation { updateAsset(input: { id: "QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw", title: "t" }) { asset { id } } }',
    },
    deleteAsset: {
      scope: 'delete:assets',
      query:
        'mutation { deleteAsset(input: { id: "QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw" }) { deletedId } }',
    },
    createDirectory: {
      scope: 'write:assets',
      query: 'mutation { createDirectory(input: { name: "d" }) { directory { id } } }',
    },
    deleteDirectory: {
      scope: 'delete:assets',
      query:
        'mutation { deleteDirectory(input: { id: "RGlyZWN0b3J5OjAwMDAwMDAwLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMA" }) { deletedId } }',
    },
    createApiKey: { scope: 'admin:keys', query: 'mutation { createApiKey(input: { scopes: [] }) { key } }' },
    createUploadUrl: {
      scope: 'write:assets',
      query: 'mutation { createUploadUrl(input: { filename: "f.txt" }) { uploadUrl } }',
    },
    createDownloadUrl: {
      scope: 'read:assets',
      query: 'mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }',
      variables: { id: 'QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw' },
    },
    reprocessAsset: {
      scope: 'write:assets',
      query: 'mutation($id: ID!) { reprocessAsset(input: { id: $id }) { asset { id } } }',
      variables: { id: 'QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw' },
    },
    importAssetFromUrl: {
      scope: 'write:assets',
      query: 'mutation { importAssetFromUrl(input: { url: "https://example.com/a.png" }) { asset { id } } }',
    },
    restoreAsset: {
      scope: 'delete:assets',
      query:
        'mutation { restoreAsset(input: { id: "QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw" }) { asset { id } } }',
    },
    replaceAssetFile: {
      scope: 'write:assets',
      query: 'mutation($id: ID!, $f: Upload!) { replaceAssetFile(input: { id: $id, file: $f }) { asset { id } } }',
      variables: { id: 'QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw', f: null },
      files: { 'variables.f': 'bytes' },
    },
    createReplaceUrl: {
      scope: 'write:assets',
      query: 'mutation($id: ID!) { createReplaceUrl(input: { id: $id }) { uploadUrl } }',
      variables: { id: 'QXNzZXQ6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw' },
    },
    webhooks: { scope: 'admin:webhooks', query: '{ webhooks { id } }' },
    webhookDeliveries: {
      scope: 'admin:webhooks',
      query: '{ webhookDeliveries(webhookId: "V2ViaG9vazowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDA") { id } }',
    },
    createWebhook: {
      scope: 'admin:webhooks',
      query:
        'mutation { createWebhook(input: { url: "https://example.com/hook", events: ["asset.ready"] }) { secret } }',
    },
    deleteWebhook: {
      scope: 'admin:webhooks',
      query:
        'mutation { deleteWebhook(input: { id: "V2ViaG9vazowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDA" }) { deletedId } }',
    },
    enableWebhook: {
      scope: 'admin:webhooks',
      query:
        'mutation { enableWebhook(input: { id: "V2ViaG9vazowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDA" }) { webhook { id } } }',
    },
    assetEvents: { scope: 'read:assets', query: '{ assetEvents(first: 1) { totalCount } }' },
    revokeApiKey: {
      scope: 'admin:keys',
      query:
        'mutation { revokeApiKey(input: { id: "QXBpS2V5OjAwMDAwMDAwLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMA" }) { apiKey { id } } }',
    },
  };

  describe('scope boundaries', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    before(async () => {
      app = await createTestApp();
      server = await listen(app.handler);
    });
    after(async () => {
      await server.close();
      await app.dispose();
    });

    test('every operation of the schema says which scope it needs', () => {
      const schema = buildSchema();
      const operations = [
        ...Object.keys(schema.getQueryType()!.getFields()),
        ...Object.keys(schema.getMutationType()!.getFields()),
      ];
      assert.deepEqual(
        operations.filter((name) => !(name in NEEDS)),
        [],
      );
    });

    test('each operation, with every scope but the one it needs, is FORBIDDEN naming that scope', async () => {
      for (const [name, { scope, ...operation }] of Object.entries(NEEDS)) {
        if (!scope) continue;
        const key = await app.createKey(
          'acme',
          SCOPES.filter((s) => s !== scope),
        );
        const result = await sendOperation(server.url, operation, { authorization: `Bearer ${key}` });
        assert.equal(result.errors?.[0].extensions.code, 'FORBIDDEN', `${name}: ${JSON.stringify(result)}`);
        assert.match(result.errors![0].message, new RegExp(scope), name);
      }
    });

    test('without a key, every operation but public reads is UNAUTHENTICATED', async () => {
      for (const [name, { scope: _scope, ...operation }] of Object.entries(NEEDS)) {
        if (name === 'node' || name === 'asset') continue;
        const result = await sendOperation(server.url, operation, {});
        assert.equal(result.errors?.[0].extensions.code, 'UNAUTHENTICATED', name);
        assert.equal(result.status, 401, name);
      }
    });
  });
});
