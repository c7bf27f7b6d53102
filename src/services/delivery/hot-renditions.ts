/**
 * What a warm rendition is answered with from memory: the headers `serveBlob` writes, the
 * route's own, and the bytes.
 */
export interface HotRendition {
  assetId: string;
  mimeType: string;
  filename: string;
  /** `sha256:<hex>` of `bytes`: the ETag. */
  checksum: string;
  cacheControl: string;
  /** Headers of the route's own (`Vary`, `X-Rendition-Frames`). */
  headers: Readonly<Record<string, string>>;
  bytes: Buffer;
}

export interface HotRenditionsOptions {
  /** Bytes all entries may hold together (`RENDITION_HOT_MAX`). */
  maxBytes: number;
  /** How long an entry answers before the request takes the whole path again, ms (`RENDITION_HOT_TTL`). */
  ttlMs: number;
  clock: () => number;
}

interface Entry {
  value: HotRendition;
  expires: number;
  cost: number;
}

/**
 * What an entry costs besides its bytes and its key: its records in both maps, the answer's
 * strings (checksum, filename, asset id), the buffer's own objects. Measured at about 2 KiB
 * in a gateway's heap: counted less, a budget of tiny renditions took several times its size.
 */
const OVERHEAD = 2560;
/** Changes of assets remembered to refuse a fill that began before one of them. */
const REMEMBERED_CHANGES = 1024;

/**
 * The renditions asked most recently, held in memory so that asking one again skips the
 * asset's row, the rendition's row and the store. An entry is keyed by what decides the
 * answer without reading a row (who may see what, the URL, what the client accepts), lives
 * at most `ttlMs`, and goes at once when its asset changes (`forget`, from the asset events:
 * every gateway's changes under Redis). Bounded by bytes, least recently used first; a
 * rendition larger than a sixteenth of the budget is never held.
 */
export class HotRenditions {
  readonly #entries = new Map<string, Entry>();
  readonly #keysOf = new Map<string, Set<string>>();
  /** The count of changes when each recently changed asset last changed. */
  readonly #changedAt = new Map<string, number>();
  #changes = 0;
  /** The newest change no longer in `#changedAt`: a fill begun before it cannot be checked. */
  #forgottenUpTo = 0;
  #bytes = 0;
  /** Bytes of renditions being read or sent to be held (`claim`). */
  #filling = 0;

  constructor(private readonly options: HotRenditionsOptions) {}

  /** The largest rendition held. */
  get largest(): number {
    return Math.floor(this.options.maxBytes / 16);
  }

  /**
   * Room to read a rendition of `bytes` into memory to hold it: null when it is larger than
   * `largest`, or when the reads and sends in progress (slow clients' included) already take a
   * quarter of the budget, and then it is streamed from the store as before. The returned
   * function gives the room back.
   */
  claim(bytes: number): (() => void) | null {
    if (bytes > this.largest || this.#filling + bytes > this.options.maxBytes / 4) return null;
    this.#filling += bytes;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.#filling -= bytes;
    };
  }

  /** A mark to pass to `set`: a change of the asset after it refuses the fill. */
  mark(): number {
    return this.#changes;
  }

  /** The entry under `key`, if it is there and has not expired. */
  get(key: string): HotRendition | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= this.options.clock()) {
      this.#drop(key, entry);
      return undefined;
    }
    // The most recently used goes last: eviction takes from the front.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  /**
   * Holds `value` under `key`, unless it is too large, or its asset changed since `mark`
   * (what was read before the change may be stale).
   */
  set(key: string, value: HotRendition, mark: number): void {
    const cost = value.bytes.length + key.length + OVERHEAD;
    if (this.options.ttlMs <= 0 || value.bytes.length > this.largest || cost > this.options.maxBytes) return;
    if (mark < this.#forgottenUpTo || (this.#changedAt.get(value.assetId) ?? -1) > mark) return;
    const previous = this.#entries.get(key);
    if (previous) this.#drop(key, previous);
    this.#entries.set(key, { value, expires: this.options.clock() + this.options.ttlMs, cost });
    this.#bytes += cost;
    let keys = this.#keysOf.get(value.assetId);
    if (!keys) this.#keysOf.set(value.assetId, (keys = new Set()));
    keys.add(key);
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.options.maxBytes) break;
      this.#drop(oldest, entry);
    }
  }

  /** Drops every entry of `assetId`, and refuses fills of it begun before now. */
  forget(assetId: string): void {
    this.#changes += 1;
    this.#changedAt.delete(assetId);
    this.#changedAt.set(assetId, this.#changes);
    if (this.#changedAt.size > REMEMBERED_CHANGES) {
      const [oldest, at] = this.#changedAt.entries().next().value!;
      this.#changedAt.delete(oldest);
      this.#forgottenUpTo = at;
    }
    for (const key of this.#keysOf.get(assetId) ?? []) this.#drop(key, this.#entries.get(key)!);
  }

  /** Entries held, the bytes they cost, and the bytes being read or sent to be held. */
  get usage(): { entries: number; bytes: number; filling: number } {
    return { entries: this.#entries.size, bytes: this.#bytes, filling: this.#filling };
  }

  #drop(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#bytes -= entry.cost;
    const keys = this.#keysOf.get(entry.value.assetId);
    keys?.delete(key);
    if (keys?.size === 0) this.#keysOf.delete(entry.value.assetId);
  }
}
