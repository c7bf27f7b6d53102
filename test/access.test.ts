import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getNamedType, getNullableType, type GraphQLObjectType, isLeafType, isListType, isNonNullType } from 'graphql';
import { buildSchema } from '../src/schema/index.js';
import { createTestApp, forEachDialect, listen, type TestApp, waitFor } from './helpers.js';

/**
 * The one access rule on every path that hands out an asset: subscription events
 * (checked at each event), mutation payloads, and signed URLs (only as good as the
 * key that made them).
 */

const CREATE = `mutation($public: Boolean) {
  createAsset(input: { title: "Secret plan", type: LINK, externalUrl: "https://example.com/x", isPublic: $public }) {
    asset { id }
  }
}`;
const UPDATE =
  'mutation($id: ID!, $title: String, $public: Boolean) { updateAsset(input: { id: $id, title: $title, isPublic: $public }) { asset { id } } }';

/** An SSE subscription over a real port: the events' data as they come, and whether the server ended the stream. */
async function subscribe(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string>,
) {
  const controller = new AbortController();
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    signal: controller.signal,
    headers: { ...headers, accept: 'text/event-stream', 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const events: any[] = [];
  let completed = false;
  const done = (async () => {
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += Buffer.from(chunk).toString();
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (/^event: complete/m.test(block)) completed = true;
          const data = block.split('\n').find((line) => line.startsWith('data:'));
          if (data && data.length > 5) events.push(JSON.parse(data.slice(5)));
        }
      }
    } catch (error) {
      if ((error as Error).name !== 'AbortError') throw error;
    }
  })();
  await new Promise((r) => setTimeout(r, 300)); // subscribed (through Redis, a round trip more)
  return {
    status: response.status,
    events,
    /** Resolves true when the server ended the stream within `ms`. */
    ended: async (ms = 2000) => {
      const ended = await Promise.race([done.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);
      controller.abort();
      await done;
      return ended && completed;
    },
  };
}

forEachDialect(() => {
  describe('access on every path', () => {
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

    const create = async (isPublic: boolean) => (await app.gql(CREATE, { public: isPublic })).data.createAsset.asset.id;

    test('the README example: an inline id reaches the subscription (graphql-jit is not used for subscriptions)', async () => {
      const id = await create(false);
      const stream = await subscribe(
        server.url,
        `subscription { assetUpdated(id: "${id}") { title } }`,
        {},
        app.authHeaders,
      );
      assert.equal(stream.status, 200);
      await app.gql(UPDATE, { id, title: 'Renamed' });
      await waitFor(
        async () => stream.events.length,
        (n) => n > 0,
      );
      assert.deepEqual(stream.events, [{ data: { assetUpdated: { title: 'Renamed' } } }]);
      await stream.ended(0);
    });

    test('a subscription to an id that is not an asset is NOT_FOUND with a 4xx, not a 500', async () => {
      const directory = Buffer.from('Directory:00000000-0000-0000-0000-000000000000').toString('base64url');
      const stream = await subscribe(
        server.url,
        'subscription($id: ID!) { assetUpdated(id: $id) { status } }',
        { id: directory },
        app.authHeaders,
      );
      assert.equal(stream.status, 404);
      assert.equal(await stream.ended(), true);
      assert.equal(stream.events[0].errors[0].extensions.code, 'NOT_FOUND');
    });

    test('an anonymous stream on a public asset ends when the asset is made private, and shows nothing after', async () => {
      const id = await create(true);
      const stream = await subscribe(
        server.url,
        'subscription($id: ID!) { assetUpdated(id: $id) { title } }',
        { id },
        {},
      );
      assert.equal(stream.status, 200);
      await app.gql(UPDATE, { id, title: 'Still public' });
      await app.gql(UPDATE, { id, title: 'Going private', public: false });
      await app.gql(UPDATE, { id, title: 'Private title' });
      assert.equal(await stream.ended(), true, 'the server ended the stream');
      assert.deepEqual(
        stream.events.map((e) => e.data?.assetUpdated.title),
        ['Still public'],
      );
    });

    test('a stream opened with a key ends when the key is revoked', async () => {
      const id = await create(false);
      const reader = await key(['read:assets']);
      const stream = await subscribe(
        server.url,
        'subscription($id: ID!) { assetUpdated(id: $id) { title } }',
        { id },
        reader.auth,
      );
      await app.gql(UPDATE, { id, title: 'Seen' });
      // Events may travel through Redis: revoke only once this one has arrived.
      await waitFor(
        async () => stream.events.length,
        (n) => n > 0,
      );
      await app.services.apiKeys.revoke(reader.id);
      await app.gql(UPDATE, { id, title: 'Not seen' });
      assert.equal(await stream.ended(), true);
      assert.deepEqual(
        stream.events.map((e) => e.data?.assetUpdated.title),
        ['Seen'],
      );
    });

    /** An asset with stored bytes, through a signed PUT; its global id. */
    async function stored(body: string, auth = app.authHeaders) {
      const created = await app.gql(
        'mutation { createUploadUrl(input: { filename: "plan.txt", description: "d" }) { asset { id } uploadUrl } }',
        {},
        auth,
      );
      const { asset, uploadUrl } = created.data.createUploadUrl;
      assert.equal((await fetch(server.url + new URL(uploadUrl).pathname, { method: 'PUT', body })).status, 200);
      return asset.id as string;
    }

    /** A key of org acme with `scopes`, and its record id. */
    async function key(scopes: ('read:assets' | 'write:assets')[]) {
      const { key, record } = await app.services.apiKeys.create({ orgId: 'acme', scopes });
      return { auth: { authorization: `Bearer ${key}` }, id: record.id };
    }

    test('a key with only write:assets learns an id from a payload, nothing more, and cannot make an asset public', async () => {
      const id = await stored('secret bytes');
      const writer = (await key(['write:assets'])).auth;
      const ok = await app.gql(UPDATE, { id, title: 'Changed' }, writer);
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.data.updateAsset.asset, { id });
      for (const field of ['title', 'filename', 'checksum', 'url', 'isPublic', 'description', 'size']) {
        const query = `mutation($id: ID!) { updateAsset(input: { id: $id, title: "Again" }) { asset { id ${field} } } }`;
        const owner = await app.gql(query, { id });
        assert.notEqual(owner.data.updateAsset.asset[field], null, `${field} has a value to leak`);
        const leak = await app.gql(query, { id }, writer);
        assert.equal(leak.status, 200, field);
        assert.equal(leak.data?.updateAsset?.asset?.[field] ?? null, null, field);
        assert.equal(leak.errors?.[0].extensions.code, 'FORBIDDEN', field);
      }
      const publish = await app.gql(UPDATE, { id, public: true }, writer);
      assert.equal(publish.errors?.[0].extensions.code, 'FORBIDDEN');
      assert.match(publish.errors![0].message, /read:assets/);
      const asset = (await app.gql('query($id: ID!) { asset(id: $id) { title isPublic } }', { id })).data.asset;
      assert.deepEqual(asset, { title: 'Again', isPublic: false }, 'the refused change was not made');
      assert.equal((await fetch(`${server.url}/download/${id}`)).status, 404, 'no anonymous download');
    });

    test('every Asset field of the schema but id is refused to a key without read:assets', async () => {
      const id = await stored('every field');
      const writer = (await key(['write:assets'])).auth;
      const type = buildSchema().getType('Asset') as GraphQLObjectType;
      const fields = Object.values(type.getFields()).filter((f) => f.name !== 'id');
      assert.ok(fields.length > 20, 'the schema was read');
      for (const field of fields) {
        // Required arguments get a plain value of their type, so the field runs.
        const required = field.args.filter((arg) => isNonNullType(arg.type));
        const values: Record<string, string> = { Int: '64', Float: '1', String: '"x"', Boolean: 'true' };
        const args = required.length
          ? `(${required.map((arg) => `${arg.name}: ${isListType(getNullableType(arg.type)) ? `[${values[getNamedType(arg.type).name]}]` : values[getNamedType(arg.type).name]}`).join(', ')})`
          : '';
        const selection = isLeafType(getNamedType(field.type))
          ? `${field.name}${args}`
          : `${field.name}${args} { __typename }`;
        const query = `mutation($id: ID!) { updateAsset(input: { id: $id }) { asset { id ${selection} } } }`;
        const leak = await app.gql(query, { id }, writer);
        const refused = leak.errors?.find((e) => e.path?.at(-1) === field.name);
        assert.equal(refused?.extensions.code, 'FORBIDDEN', `${field.name}: ${JSON.stringify(leak)}`);
        assert.equal(leak.data?.updateAsset?.asset?.[field.name] ?? null, null, field.name);
      }
    });

    test('revoking a key ends the download and upload URLs it made', async () => {
      const { auth, id: keyId } = await key(['read:assets', 'write:assets']);
      const created = await app.gql(
        'mutation { createUploadUrl(input: { filename: "a.txt" }) { asset { id } uploadUrl } }',
        {},
        auth,
      );
      const { asset, uploadUrl } = created.data.createUploadUrl;
      const second = (
        await app.gql('mutation { createUploadUrl(input: { filename: "b.txt" }) { uploadUrl } }', {}, auth)
      ).data.createUploadUrl.uploadUrl;
      const path = (u: string) => new URL(u).pathname;
      assert.equal((await fetch(server.url + path(uploadUrl), { method: 'PUT', body: 'bytes' })).status, 200);
      const download = (
        await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', { id: asset.id }, auth)
      ).data.createDownloadUrl.url;
      assert.equal((await fetch(server.url + path(download))).status, 200, 'works while the key lives');

      await app.services.apiKeys.revoke(keyId);
      const get = await fetch(server.url + path(download));
      assert.equal(get.status, 403);
      assert.equal(((await get.json()) as any).error.code, 'FORBIDDEN');
      assert.equal((await fetch(server.url + path(download), { method: 'HEAD' })).status, 403);
      const put = await fetch(server.url + path(second), { method: 'PUT', body: 'late bytes' });
      assert.equal(put.status, 403);
      assert.equal(((await put.json()) as any).error.code, 'FORBIDDEN');
    });

    test('HEAD on a used-up counted URL is 404, as GET is', async () => {
      const created = await app.gql(
        'mutation { createUploadUrl(input: { filename: "c.txt" }) { asset { id } uploadUrl } }',
      );
      const { asset, uploadUrl } = created.data.createUploadUrl;
      await fetch(server.url + new URL(uploadUrl).pathname, { method: 'PUT', body: 'counted' });
      const url = (
        await app.gql('mutation($id: ID!) { createDownloadUrl(input: { id: $id, maxFetches: 1 }) { url } }', {
          id: asset.id,
        })
      ).data.createDownloadUrl.url;
      const path = new URL(url).pathname;
      assert.equal((await fetch(server.url + path, { method: 'HEAD' })).status, 200, 'HEAD does not count');
      assert.equal(await (await fetch(server.url + path)).text(), 'counted');
      assert.equal((await fetch(server.url + path)).status, 404);
      assert.equal((await fetch(server.url + path, { method: 'HEAD' })).status, 404);
    });
  });
});
