import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiKeyService } from '../src/auth/api-key-service.js';
import { ApiKeyRepository } from '../src/db/api-key-repository.js';
import { OrgRepository } from '../src/db/org-repository.js';
import { createTestApp, type TestApp } from './helpers.js';

describe('API keys checked once per KEY_CACHE_TTL, at most KEY_CACHE_MAX kept', () => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  let app: TestApp;
  /** Another gateway on the same database, or the CLI: it revokes without this gateway knowing. */
  let elsewhere: ApiKeyService;
  before(async () => {
    app = await createTestApp({ KEY_CACHE_TTL: '5s', KEY_CACHE_MAX: '3' }, { clock: () => now });
    elsewhere = new ApiKeyService({
      keys: new ApiKeyRepository(app.db),
      orgs: new OrgRepository(app.db),
      clock: () => now,
    });
  });
  after(() => app.dispose());

  const whoami = (key: string) => app.gql('{ viewer { org } }', {}, { authorization: `Bearer ${key}` });
  const refused = async (key: string, why: string) => {
    const answer = await whoami(key);
    assert.equal(answer.status, 401, why);
    assert.equal(answer.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED', why);
  };
  const accepted = async (key: string, why: string) => {
    const answer = await whoami(key);
    assert.equal(answer.status, 200, why);
    assert.equal(answer.data?.viewer?.org, 'acme', why);
  };
  const idOf = async (key: string) => (await elsewhere.authenticate(key)).keyId;

  test('a key revoked elsewhere works until the TTL is over, then is refused, however often it is used', async () => {
    const key = await app.createKey('acme', ['read:assets']);
    await accepted(key, 'checked and kept');
    await elsewhere.revoke(await idOf(key));
    now += 4000;
    await accepted(key, 'within the 5 s it was kept for');
    now += 1001;
    await refused(key, 'revoked, and the 5 s since its row was read are over');
  });

  test('a key revoked on this gateway stops at once', async () => {
    const key = await app.createKey('acme', ['read:assets']);
    await accepted(key, 'checked and kept');
    await app.services.apiKeys.revoke(await idOf(key));
    await refused(key, 'revoked here');
  });

  test('at most KEY_CACHE_MAX keys are kept: the least recently used is read again', async () => {
    const keys = await Promise.all([1, 2, 3, 4].map(() => app.createKey('acme', ['read:assets'])));
    for (const key of keys) await accepted(key, 'checked');
    // Keys 2–4 are the three kept; key 1 went when key 4 came.
    for (const key of keys) await elsewhere.revoke(await idOf(key));
    await refused(keys[0], 'no longer kept: its row is read, and it is revoked');
    for (const key of keys.slice(1)) await accepted(key, 'still kept, within its 5 s');
  });

  test('unknown keys are not kept: a caller presenting many does not push real keys out', async () => {
    const key = await app.createKey('acme', ['read:assets']);
    await accepted(key, 'checked and kept');
    for (let i = 0; i < 10; i++) await refused(`sk_live_acme_${String(i).padStart(48, '0')}`, 'unknown');
    await elsewhere.revoke(await idOf(key));
    await accepted(key, 'still kept: the unknown keys took no place');
  });
});
