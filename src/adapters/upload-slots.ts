import { RateLimitedError } from '../errors.js';

/**
 * How many uploads one key runs at once. Past the limit an upload waits up to
 * `waitMs` for a slot, then (or at once when `waitMs` is 0) fails RATE_LIMITED.
 * One implementation counts in this process; the Redis one across every gateway
 * (`redis-upload-slots.ts`).
 */
export interface UploadSlots {
  readonly perKey: number;
  /** Takes a slot for `key`; call the returned function once the upload is over. */
  acquire(key: string): Promise<() => void>;
  /** Uploads running for `key` now. */
  running(key: string): Promise<number>;
}

/** The refusal when every slot of a key stays taken. */
export function slotsRefused(perKey: number): RateLimitedError {
  return new RateLimitedError(1, `At most ${perKey} uploads at once per key.`);
}

/** Slots counted in this process: the embedded default, one gateway. */
export class MemoryUploadSlots implements UploadSlots {
  readonly #inUse = new Map<string, number>();
  readonly #waiting = new Map<string, (() => void)[]>();

  constructor(
    readonly perKey: number,
    readonly waitMs: number,
  ) {}

  /** Takes a slot for `key`; call the returned function once the upload is over. */
  async acquire(key: string): Promise<() => void> {
    if ((this.#inUse.get(key) ?? 0) >= this.perKey) await this.#wait(key);
    this.#inUse.set(key, (this.#inUse.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#inUse.get(key) ?? 1) - 1;
      if (left === 0) this.#inUse.delete(key);
      else this.#inUse.set(key, left);
      this.#waiting.get(key)?.shift()?.();
    };
  }

  #wait(key: string): Promise<void> {
    const refused = slotsRefused(this.perKey);
    if (this.waitMs <= 0) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      const queue = this.#waiting.get(key) ?? [];
      this.#waiting.set(key, queue);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        queue.splice(queue.indexOf(wake), 1);
        reject(refused);
      }, this.waitMs);
      queue.push(wake);
    });
  }

  async running(key: string): Promise<number> {
    return this.#inUse.get(key) ?? 0;
  }
}
