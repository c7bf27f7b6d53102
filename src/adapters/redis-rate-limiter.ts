import type { Redis } from 'ioredis';
import { type RateLimiter, type RateVerdict, verdictOf } from './rate-limiter.js';
import { shared } from './redis.js';

/**
 * Refills and, when asked for (`cost` > 0) and enough is there, takes from one bucket
 * in a single atomic step, on the Redis server's clock: gateways never disagree.
 * KEYS[1] the bucket; ARGV limit, cost. Returns the tokens before taking, as a string.
 */
const TAKE = `
local limit = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or limit
local at = tonumber(bucket[2]) or now
tokens = math.min(limit, tokens + ((now - at) / 60000) * limit)
local after = tokens
if cost > 0 and tokens >= cost then after = tokens - cost end
redis.call('HSET', KEYS[1], 'tokens', tostring(after), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], 120000)
return tostring(tokens)
`;

/** The token buckets in Redis, shared by every gateway that uses the same `REDIS_URL`. */
export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: Redis,
    readonly limit: number,
    private readonly prefix = 'assetgate:rate:',
  ) {
    redis.defineCommand('assetgateTake', { numberOfKeys: 1, lua: TAKE });
  }

  async #tokens(key: string, cost: number): Promise<number> {
    const run = (this.redis as unknown as Record<string, (...args: unknown[]) => Promise<string>>).assetgateTake;
    return Number(await shared(() => run.call(this.redis, this.prefix + key, this.limit, cost)));
  }

  async take(key: string, cost: number): Promise<RateVerdict> {
    return verdictOf(await this.#tokens(key, cost), cost, this.limit);
  }

  async peek(key: string): Promise<{ limit: number; remaining: number }> {
    return { limit: this.limit, remaining: Math.floor(await this.#tokens(key, 0)) };
  }
}
