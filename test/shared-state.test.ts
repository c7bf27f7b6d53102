import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisRateLimiter } from '../src/adapters/redis-rate-limiter.js';
import { RedisUploadSlots } from '../src/adapters/redis-upload-slots.js';
import { createTestApp, freePort, REDIS_URL, waitFor } from './helpers.js';

/**
 * What gateways share through Redis: one rate-limit bucket and one count of upload
 * slots per key, whatever gateway asks, and what happens when Redis goes away.
 */

const fresh = () => `test-${Math.random().toString(36).slice(2)}`;

describe('shared state in Redis', () => {
  const clients: Redis[] = [];
  const client = () => {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    clients.push(redis);
    return redis;
  };
  after(() => {
    for (const redis of clients) redis.disconnect();
  });

  test('two limiters on two connections (two gateways) take from one bucket', async () => {
    const key = fresh();
    const a = new RedisRateLimiter(client(), 10);
    const b = new RedisRateLimiter(client(), 10);
    const verdicts = [];
    for (let i = 0; i < 12; i++) verdicts.push(await (i % 2 ? a : b).take(key, 1));
    assert.equal(verdicts.filter((v) => v.ok).length, 10);
    const refused = verdicts.at(-1)!;
    assert.ok(!refused.ok && refused.retryAfter >= 1);
    assert.deepEqual(await a.peek(key), { limit: 10, remaining: 0 });
  });

  test('upload slots count across gateways; one held by a gateway that died frees within its lease', async () => {
    const key = fresh();
    const logError = (error: unknown) => assert.fail(String(error));
    const dying = client();
    const a = new RedisUploadSlots(dying, { perKey: 1, waitMs: 0, leaseMs: 300, logError: () => undefined });
    const b = new RedisUploadSlots(client(), { perKey: 1, waitMs: 0, leaseMs: 300, logError });
    await a.acquire(key);
    await assert.rejects(b.acquire(key), (e: any) => e.code === 'RATE_LIMITED');
    assert.equal(await b.running(key), 1);
    dying.disconnect(); // the gateway dies holding its slot: nobody renews or releases it
    const waiting = new RedisUploadSlots(client(), { perKey: 1, waitMs: 2000, leaseMs: 300, logError });
    const started = Date.now();
    const release = await waiting.acquire(key);
    assert.ok(Date.now() - started < 1500, 'freed within the lease');
    release(); // gives the slot back in Redis without waiting: the count reaches 0 just after
    assert.equal(
      await waitFor(
        () => b.running(key),
        (n) => n === 0,
      ),
      0,
    );
  });
});

describe('Redis going away', () => {
  let port: number;
  let server: ReturnType<typeof spawn>;

  before(async () => {
    port = await freePort();
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    const ping = async () => {
      const probe = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined); // not up yet: waitFor tries again
      const up = await probe.ping().then(
        () => true,
        () => false,
      );
      probe.disconnect();
      return up;
    };
    await waitFor(ping, (up) => up); // redis-server has started
  });
  after(() => {
    server.kill('SIGKILL');
  });

  test('a request fails at once with a clear error and a log line, never hangs; the gateway recovers', async () => {
    const logged: unknown[] = [];
    const app = await createTestApp(
      { REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT: '1000' },
      { logError: (error) => logged.push(error) },
    );
    try {
      assert.equal((await app.gql('{ viewer { org } }')).data.viewer.org, 'acme', 'works while Redis is up');
      server.kill('SIGKILL');
      await new Promise((r) => server.once('exit', r));
      const started = Date.now();
      const refused = await app.gql('{ viewer { org } }');
      assert.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`);
      assert.equal(refused.status, 500);
      assert.equal(refused.errors?.[0].extensions.code, 'INTERNAL_SERVER_ERROR');
      assert.match(refused.errors![0].message, /Redis.*unavailable/);
      await waitFor(
        async () => logged.some((e) => /Redis \(commands\) is unavailable/.test(String(e))),
        (found) => found,
      );
      assert.ok(
        logged.some((e) => /Redis \(commands\) is unavailable/.test(String(e))),
        'a log line says so',
      );
      assert.ok(!logged.some((e) => /redis:\/\//.test(String(e))), 'the URL (it may hold a password) is not logged');
      // A change publishes an event: with Redis away the change is made, the event is lost and logged.
      const link = await app.services.assets.createExternal(
        { orgId: 'acme', mode: 'live' },
        { title: 'Made while Redis is away', type: 'LINK', externalUrl: 'https://example.com/x' },
      );
      await app.services.assets.update({ orgId: 'acme', mode: 'live' }, link.id, { title: 'Renamed' });
      await waitFor(
        async () => logged.some((e) => /Redis \(events\) publish failed/.test(String(e))),
        (found) => found,
      );
      assert.ok(
        logged.some((e) => /Redis \(events\) publish failed/.test(String(e))),
        'the lost event is logged',
      );

      server = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      const answer = await waitFor(
        () => app.gql('{ viewer { org } }'),
        (result) => result.status === 200,
      );
      assert.equal(answer.data.viewer.org, 'acme', 'served again once Redis is back');
    } finally {
      await app.dispose();
    }
  });
});
