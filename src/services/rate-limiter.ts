/** A token bucket per caller: `limit` tokens a minute, bursts up to `limit`. */
export class RateLimiter {
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

  /** Takes `cost` tokens, or says in how many seconds they will be there (nothing is taken then). */
  take(key: string, cost: number): { ok: true; remaining: number } | { ok: false; retryAfter: number } {
    const bucket = this.#refill(key);
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return { ok: true, remaining: Math.floor(bucket.tokens) };
    }
    const missing = Math.min(cost, this.limit) - bucket.tokens;
    return { ok: false, retryAfter: Math.max(1, Math.ceil((missing / this.limit) * 60)) };
  }

  /** What is left for `key` now, without taking anything. */
  peek(key: string): { limit: number; remaining: number } {
    return { limit: this.limit, remaining: Math.floor(this.#refill(key).tokens) };
  }

  /** Full buckets carry no information: drop them when the map grows large. */
  #prune(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 60_000) * this.limit >= this.limit) this.#buckets.delete(key);
    }
  }
}
