import { RateLimitedError } from '../errors.js';

/**
 * How many uploads one key runs at once. Past the limit an upload waits up to
 * `waitMs` for a slot, then (or at once when `waitMs` is 0) fails RATE_LIMITED.
 */
export class UploadSlots {
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
    const refused = new RateLimitedError(1, `At most ${this.perKey} uploads at once per key.`);
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

  /** Uploads running for `key` now. */
  running(key: string): number {
    return this.#inUse.get(key) ?? 0;
  }
}
