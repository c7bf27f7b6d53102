import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { buildSchema } from '../src/schema/index.js';
import { createTestApp, listen, type Operation, sendOperation, type TestApp, forEachDialect } from './helpers.js';

forEachDialect(() => {
  /**
   * Every operation of the schema and every HTTP route, called by other tenants with
   * the victim's ids and cursors. The list of operations comes from the schema: an
   * operation without a case here fails the suite.
   */

  interface Ids {
    asset: string;
    directory: string;
    key: string;
    cursor: string;
    /** A resumable upload under way: its path under /tus/. */
    upload: string;
    webhook: string;
    /** A cursor of the victim's asset event feed. */
    eventCursor: string;
  }

  /** How an operation is called with the victim's ids, and what "as if it did not exist" means for it. */
  const CASES: Record<string, { call: (ids: Ids) => Operation; check: (result: any) => void }> = {
    node: {
      call: (ids) => ({ query: 'query($id: ID!) { node(id: $id) { id } }', variables: { id: ids.asset } }),
      check: notFound,
    },
    asset: {
      call: (ids) => ({ query: 'query($id: ID!) { asset(id: $id) { id title } }', variables: { id: ids.asset } }),
      check: notFound,
    },
    assets: {
      call: (ids) => ({
        query:
          'query($f: AssetFilter, $c: String) { assets(first: 10, after: $c, filter: $f) { totalCount edges { node { id } } } }',
        variables: { f: { ids: [ids.asset], directoryId: ids.directory }, c: ids.cursor },
      }),
      check: (result) => {
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        assert.deepEqual(result.data.assets, { totalCount: 0, edges: [] });
      },
    },
    directories: {
      call: (ids) => ({ query: 'query($p: ID) { directories(parentId: $p) { id } }', variables: { p: ids.directory } }),
      check: (result) => assert.deepEqual(result.data.directories, []),
    },
    viewer: {
      call: () => ({ query: '{ viewer { org usage { assetCount bytesStored } } }' }),
      check: (result) => {
        assert.notEqual(result.data.viewer.org === 'acme' && result.data.viewer.usage.assetCount > 0, true);
      },
    },
    apiKeys: {
      call: () => ({ query: '{ apiKeys { id org mode } }' }),
      check: (result) => assert.ok(result.data.apiKeys.every((k: any) => k.org !== 'acme' || k.mode === 'TEST')),
    },
    uploadAsset: {
      call: (ids) => ({
        query: 'mutation($input: UploadAssetInput!) { uploadAsset(input: $input) { asset { id } } }',
        variables: { input: { file: null, directoryId: ids.directory } },
        files: { 'variables.input.file': 'attacker bytes' },
      }),
      check: notFound,
    },
    uploadAssets: {
      call: (ids) => ({
        query: 'mutation($input: UploadAssetsInput!) { uploadAssets(input: $input) { assets { id } } }',
        variables: { input: { files: [null], directoryId: ids.directory } },
        files: { 'variables.input.files.0': 'attacker bytes' },
      }),
      check: notFound,
    },
    createAsset: {
      call: (ids) => ({
        query:
          'mutation($d: ID) { createAsset(input: { title: "x", type: LINK, externalUrl: "https://e.com", directoryId: $d }) { asset { id } } }',
        variables: { d: ids.directory },
      }),
      check: notFound,
    },
    updateAsset: {
      call: (ids) => ({
        query:
          'mutation($id: ID!) { updateAsset(input: { id: $id, title: "pwned", isPublic: true }) { asset { id } } }',
        variables: { id: ids.asset },
      }),
      check: notFound,
    },
    deleteAsset: {
      call: (ids) => ({
        query: 'mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }',
        variables: { id: ids.asset },
      }),
      check: notFound,
    },
    createDirectory: {
      call: (ids) => ({
        query: 'mutation($p: ID) { createDirectory(input: { name: "x", parentId: $p }) { directory { id } } }',
        variables: { p: ids.directory },
      }),
      check: notFound,
    },
    deleteDirectory: {
      call: (ids) => ({
        query: 'mutation($id: ID!) { deleteDirectory(input: { id: $id }) { deletedId } }',
        variables: { id: ids.directory },
      }),
      check: notFound,
    },
    createApiKey: {
      call: () => ({ query: 'mutation { createApiKey(input: { scopes: ["read:assets"] }) { apiKey { org mode } } }' }),
      // A key is made in the caller's own org and mode.
      check: (result) => {
        const { org, mode } = result.data.createApiKey.apiKey;
        assert.ok(org !== 'acme' || mode === 'TEST', JSON.stringify(result.data));
      },
    },
    createUploadUrl: {
      call: (ids) => ({
        query: 'mutation($d: ID) { createUploadUrl(input: { filename: "x.txt", directoryId: $d }) { uploadUrl } }',
        variables: { d: ids.directory },
      }),
      check: notFound,
    },
    createDownloadUrl: {
      call: (ids) => ({
        query: 'mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }',
        variables: { id: ids.asset },
      }),
      check: notFound,
    },
    reprocessAsset: {
      call: (ids) => ({
        query: 'mutation($id: ID!) { reprocessAsset(input: { id: $id }) { asset { id } } }',
        variables: { id: ids.asset },
      }),
      check: notFound,
    },
    importAssetFromUrl: {
      call: (ids) => ({
        query:
          'mutation($d: ID) { importAssetFromUrl(input: { url: "https://example.com/a.png", directoryId: $d }) { asset { id } } }',
        variables: { d: ids.directory },
      }),
      check: notFound,
    },
    assetUpdated: {
      call: (ids) => ({
        query: 'subscription($id: ID!) { assetUpdated(id: $id) { id title } }',
        variables: { id: ids.asset },
      }),
      check: notFound,
    },
    revokeApiKey: {
      call: (ids) => ({
        query: 'mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { id } } }',
        variables: { id: ids.key },
      }),
      check: notFound,
    },
    restoreAsset: {
      call: (ids) => ({
        query: 'mutation($id: ID!) { restoreAsset(input: { id: $id }) { asset { id } } }',
        variables: { id: ids.asset },
      }),
      check: notFound,
    },
    replaceAssetFile: {
      call: (ids) => ({
        query: 'mutation($id: ID!, $f: Upload!) { replaceAssetFile(input: { id: $id, file: $f }) { asset { id } } }',
        variables: { id: ids.asset, f: null },
        files: { 'variables.f': 'attacker bytes' },
      }),
      check: notFound,
    },
    createReplaceUrl: {
      call: (ids) => ({
        query: 'mutation($id: ID!) { createReplaceUrl(input: { id: $id }) { uploadUrl } }',
        variables: { id: ids.asset },
      }),
      check: notFound,
    },
    webhooks: {
      call: () => ({ query: '{ webhooks { id url } }' }),
      check: (result) => assert.deepEqual(result.data.webhooks, []),
    },
    webhookDeliveries: {
      call: (ids) => ({
        query: 'query($id: ID!) { webhookDeliveries(webhookId: $id) { id } }',
        variables: { id: ids.webhook },
      }),
      check: notFound,
    },
    createWebhook: {
      // The attacker's own webhook: it must hear nothing of the victim (checked by the webhook suite).
      call: () => ({
        query:
          'mutation { createWebhook(input: { url: "http://127.0.0.1:9/evil", events: ["asset.created"] }) { webhook { id } } }',
      }),
      check: (result) => assert.equal(result.errors, undefined, JSON.stringify(result.errors)),
    },
    deleteWebhook: {
      call: (ids) => ({
        query: 'mutation($id: ID!) { deleteWebhook(input: { id: $id }) { deletedId } }',
        variables: { id: ids.webhook },
      }),
      check: notFound,
    },
    enableWebhook: {
      call: (ids) => ({
        query: 'mutation($id: ID!) { enableWebhook(input: { id: $id }) { webhook { id } } }',
        variables: { id: ids.webhook },
      }),
      check: notFound,
    },
    assetEvents: {
      call: (ids) => ({
        query: 'query($c: String) { assetEvents(first: 100, after: $c) { edges { node { assetId asset { id } } } } }',
        variables: { c: ids.eventCursor },
      }),
      check: (result) => {
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        assert.deepEqual(result.data.assetEvents.edges, [], "none of the victim's events");
      },
    },
  };

  function notFound(result: any) {
    assert.equal(result.errors?.[0]?.extensions?.code, 'NOT_FOUND', JSON.stringify(result));
  }

  /** A token shaped like a signed URL's, for the victim's asset, signed by nobody. */
  function forged(ids: Ids, method: string): string {
    const assetId = Buffer.from(ids.asset, 'base64url').toString().split(':')[1];
    const claims = Buffer.from(JSON.stringify([method, assetId, 0, 4102444800, null, null, 'x'])).toString('base64url');
    return `v1.00000000.${claims}.${Buffer.alloc(32).toString('base64url')}`;
  }

  /** Plain HTTP routes, by prefix: how to ask for the victim's object, and the statuses that mean "no". */
  const ROUTES: Record<
    string,
    (ids: Ids) => { path: string; method: string; refused: number[]; headers?: Record<string, string> }
  > = {
    '/download/': (ids) => ({ path: `/download/${ids.asset}`, method: 'GET', refused: [404] }),
    '/dl/': (ids) => ({ path: `/dl/${forged(ids, 'GET')}/a.txt`, method: 'GET', refused: [403, 404] }),
    '/up/': (ids) => ({ path: `/up/${forged(ids, 'PUT')}`, method: 'PUT', refused: [403, 404] }),
    '/tus/': (ids) => ({ path: ids.upload, method: 'DELETE', refused: [404], headers: { 'tus-resumable': '1.0.0' } }),
  };

  describe('tenant isolation', () => {
    let app: TestApp;
    let server: Awaited<ReturnType<typeof listen>>;
    let victim: Ids;
    let victimKeyId: string;
    const attackers: { name: string; key: string; mode?: string }[] = [];

    const call = (key: string, operation: Operation) =>
      sendOperation(server.url, operation, { authorization: `Bearer ${key}` });

    /** Everything the victim owns, as the victim sees it. */
    async function victimState() {
      const result = await app.gql(
        'query($id: ID!) { asset(id: $id) { id title isPublic tags checksum version directory { id } } directories { id name } apiKeys { id revokedAt mode } assets { totalCount } webhooks { id url disabledAt } assetEvents(first: 100) { totalCount } }',
        { id: victim.asset },
      );
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      const download = await fetch(`${server.url}/download/${victim.asset}`, { headers: app.authHeaders });
      const upload = await fetch(server.url + victim.upload, {
        method: 'HEAD',
        headers: { ...app.authHeaders, 'tus-resumable': '1.0.0' },
      });
      // The org's test mode may make its own test keys: the victim is the live side.
      const liveKeys = result.data.apiKeys.filter((k: { mode: string }) => k.mode === 'LIVE');
      return {
        ...result.data,
        apiKeys: liveKeys,
        bytes: await download.text(),
        upload: [upload.status, upload.headers.get('upload-offset')],
      };
    }

    before(async () => {
      app = await createTestApp({ WEBHOOK_ALLOW: '127.0.0.1/32' });
      server = await listen(app.handler);
      const hook = await app.gql(
        'mutation { createWebhook(input: { url: "http://127.0.0.1:9/victim", events: ["asset.created"] }) { webhook { id } } }',
      );
      const folder = await app.gql('mutation { createDirectory(input: { name: "Secret" }) { directory { id } } }');
      const directory = folder.data.createDirectory.directory.id;
      const tenant = { orgId: 'acme', mode: 'live' as const };
      await app.services.assets.upload(tenant, {
        stream: Readable.from([Buffer.from('top secret')]),
        filename: 'a.txt',
      });
      const second = await app.services.assets.upload(tenant, {
        stream: Readable.from([Buffer.from('secret plans')]),
        filename: 'plans.txt',
        directoryId: Buffer.from(directory, 'base64url').toString().split(':')[1],
        tags: ['secret'],
      });
      const upload = await fetch(`${server.url}/tus/`, {
        method: 'POST',
        headers: {
          ...app.authHeaders,
          'tus-resumable': '1.0.0',
          'upload-length': '100',
          'upload-metadata': `filename ${Buffer.from('half.txt').toString('base64')}`,
          'content-type': 'application/offset+octet-stream',
        },
        body: 'half of it',
      });
      assert.equal(upload.status, 201);
      const page = await app.gql('{ assets(first: 1) { edges { cursor node { id } } } }');
      const keys = await app.gql('{ apiKeys { id } }');
      await app.jobs?.idle(); // the uploads are processed: their events are all in
      const events = await app.gql('{ assetEvents(first: 1) { edges { cursor } } }');
      victimKeyId = keys.data.apiKeys[0].id;
      victim = {
        asset: Buffer.from(`Asset:${second.id}`).toString('base64url'),
        directory,
        key: victimKeyId,
        cursor: page.data.assets.edges[0].cursor,
        upload: new URL(upload.headers.get('location')!).pathname,
        webhook: hook.data.createWebhook.webhook.id,
        eventCursor: events.data.assetEvents.edges[0].cursor,
      };
      attackers.push({ name: 'another org', key: await app.createKey('evil') });
      attackers.push({
        name: "the same org's test mode",
        key: await app.createKey('acme', undefined, 'test'),
        mode: 'test',
      });
    });

    after(async () => {
      await server.close();
      await app.dispose();
    });

    test('every query and mutation of the schema has an isolation case', () => {
      const schema = buildSchema();
      const operations = [
        ...Object.keys(schema.getQueryType()!.getFields()),
        ...Object.keys(schema.getMutationType()!.getFields()),
        ...Object.keys(schema.getSubscriptionType()?.getFields() ?? {}),
      ];
      const missing = operations.filter((name) => !(name in CASES));
      assert.deepEqual(missing, [], 'add a case for each new operation');
    });

    test('every HTTP route has an isolation case', () => {
      assert.deepEqual(
        app.routes.filter((prefix) => !(prefix in ROUTES)),
        [],
      );
    });

    test("other tenants see the victim's objects as missing, and change nothing", async () => {
      const before = await victimState();
      for (const attacker of attackers) {
        for (const [name, { call: make, check }] of Object.entries(CASES)) {
          const result = await call(attacker.key, make(victim));
          try {
            check({ ...result, mode: attacker.mode });
          } catch (error) {
            throw new Error(`${name} as ${attacker.name}: ${(error as Error).message}`);
          }
        }
        for (const [prefix, route] of Object.entries(ROUTES)) {
          const { path, method, refused, headers } = route(victim);
          const response = await fetch(server.url + path, {
            method,
            headers: { authorization: `Bearer ${attacker.key}`, ...headers },
            ...(method === 'PUT' && { body: 'overwrite' }),
          });
          assert.ok(refused.includes(response.status), `${prefix} as ${attacker.name}: ${response.status}`);
          assert.doesNotMatch(await response.text(), /secret/);
        }
      }
      assert.deepEqual(await victimState(), before);
    });

    test('a key of another org cannot use a cursor to learn about the victim', async () => {
      const attacker = attackers[0];
      const result = await call(attacker.key, {
        query: 'query($c: String) { assets(first: 10, after: $c) { totalCount edges { node { id } } } }',
        variables: { c: victim.cursor },
      });
      assert.equal(result.data.assets.totalCount, 0);
    });
  });
});
