import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { shared } from './redis.js';
import { slotsRefused, type UploadSlots } from './upload-slots.js';

/**
 * Takes a slot if one is free. A key's slots are a sorted set of holders scored by
 * when their lease ends; lapsed holders (a gateway that died) are dropped first.
 * KEYS[1] the set; ARGV holder, limit, lease ms. Returns 1 when taken.
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
`;

/** Extends a holder's lease while its upload runs. KEYS[1] the set; ARGV holder, lease ms. */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
end
return 1
`;

export interface RedisUploadSlotsOptions {
  perKey: number;
  /** How long an upload waits for a slot before RATE_LIMITED. */
  waitMs: number;
  /** A slot's lease: renewed every third of it while the upload runs, so one held by a dead gateway frees within it. @default 30 s */
  leaseMs?: number;
  /** Where a failed renewal is reported (the upload goes on). */
  logError: (error: unknown) => void;
}

/** Upload slots counted in Redis, so a key's limit holds across every gateway. */
export class RedisUploadSlots implements UploadSlots {
  readonly perKey: number;
  readonly #lease: number;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisUploadSlotsOptions,
    private readonly prefix = 'assetgate:slots:',
  ) {
    this.perKey = options.perKey;
    this.#lease = options.leaseMs ?? 30_000;
    redis.defineCommand('assetgateAcquireSlot', { numberOfKeys: 1, lua: ACQUIRE });
    redis.defineCommand('assetgateRenewSlot', { numberOfKeys: 1, lua: RENEW });
  }

  #run(command: string, ...args: unknown[]): Promise<number> {
    const fn = (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<number>>)[command];
    return fn.call(this.redis, ...args);
  }

  async running(key: string): Promise<number> {
    const now = (await shared(() => this.redis.time()))[0];
    return shared(() => this.redis.zcount(this.prefix + key, Number(now) * 1000, '+inf'));
  }

  async acquire(key: string): Promise<() => void> {
    const set = this.prefix + key;
    const holder = randomUUID();
    const deadline = Date.now() + this.options.waitMs;
    // Another gateway's release cannot wake this one: poll, quickly at first.
    for (let pause = 20; ; pause = Math.min(pause * 2, 250)) {
      if ((await shared(() => this.#run('assetgateAcquireSlot', set, holder, this.perKey, this.#lease))) === 1) break;
      if (Date.now() + pause > deadline) throw slotsRefused(this.perKey);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
    const renew = setInterval(
      () => void this.#run('assetgateRenewSlot', set, holder, this.#lease).catch(this.options.logError),
      this.#lease / 3,
    );
    renew.unref();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      clearInterval(renew);
      void this.redis.zrem(set, holder).catch(this.options.logError);
    };
  }
}
