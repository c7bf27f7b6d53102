/**
 * Work done once per GraphQL document rather than once per request: the cost estimate's
 * plan, a list's column projection. Keyed by a node of the parsed document (Yoga hands
 * the same parsed document to every request with the same text), at most `max` entries,
 * the least recently used going first (DOCUMENT_CACHE_MAX).
 */
export class DocumentCache<Key extends object, Value> {
  readonly #entries = new Map<Key, Value>();

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`document cache bound ${max}`);
  }

  /** The value kept for `key`, made by `make` (and kept) when there is none. */
  get(key: Key, make: (key: Key) => Value): Value {
    const entries = this.#entries;
    if (entries.has(key)) {
      const value = entries.get(key) as Value;
      // Most recently used last: a Map iterates in insertion order.
      entries.delete(key);
      entries.set(key, value);
      return value;
    }
    const value = make(key);
    if (entries.size >= this.max) entries.delete(entries.keys().next().value as Key);
    entries.set(key, value);
    return value;
  }

  /** Entries kept now. */
  get size(): number {
    return this.#entries.size;
  }
}
