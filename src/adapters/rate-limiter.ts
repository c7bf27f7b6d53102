/** What taking tokens from a bucket came to. */
export type RateVerdict = { ok: true; remaining: number } | { ok: false; retryAfter: number };

/**
 * A token bucket per caller: `limit` tokens a minute, bursts up to `limit`. One
 * implementation keeps the buckets in this process; the Redis one shares them
 * between every gateway (`redis-rate-limiter.ts`).
 */
export interface RateLimiter {
  readonly limit: number;
  /** Takes `cost` tokens, or says in how many seconds they will be there (nothing is taken then). */
  take(key: string, cost: number): Promise<RateVerdict>;
  /** What is left for `key` now, without taking anything. */
  peek(key: string): Promise<{ limit: number; remaining: number }>;
}

/** The verdict for a bucket holding `tokens` (already refilled) asked for `cost`. */
export function verdictOf(tokens: number, cost: number, limit: number): RateVerdict {
  if (tokens >= cost) return { ok: true, remaining: Math.floor(tokens - cost) };
  const missing = Math.min(cost, limit) - tokens;
  return { ok: false, retryAfter: Math.max(1, Math.ceil((missing / limit) * 60)) };
}

/** The buckets in this process's memory: the embedded default, one gateway. */
export class MemoryRateLimiter implements RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly limit: number,
    private readonly clock: () => number = Date.now,
  ) {}

  #refill(key: string): { tokens: number; at: number } {
    const now = this.clock();
    const bucket = this.#buckets.get(key) ?? { tokens: this.limit, at: now };
    bucket.tokens = Math.min(this.limit, bucket.tokens + ((now - bucket.at) / 60_000) * this.limit);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > 100_000) this.#prune(now);
    return bucket;
  }

  async take(key: string, cost: number): Promise<RateVerdict> {
    const bucket = this.#refill(key);
    const verdict = verdictOf(bucket.tokens, cost, this.limit);
    if (verdict.ok) bucket.tokens -= cost;
    return verdict;
  }

  async peek(key: string): Promise<{ limit: number; remaining: number }> {
    return { limit: this.limit, remaining: Math.floor(this.#refill(key).tokens) };
  }

  /** Full buckets carry no information: drop them when the map grows large. */
  #prune(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 60_000) * this.limit >= this.limit) this.#buckets.delete(key);
    }
  }
}
