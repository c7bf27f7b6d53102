import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** What a signed URL grants. Everything here is covered by the signature. */
export interface UrlClaims {
  /** HTTP method the URL answers: GET (and HEAD) for downloads, PUT for uploads. */
  method: 'GET' | 'PUT';
  assetId: string;
  /** The asset's `url_version` when signed: bumping it kills every outstanding URL. */
  version: number;
  /** Expiry, whole seconds since the epoch. */
  expires: number;
  /** Fetch-limited downloads: the token row counting fetches, and the limit. */
  tokenId?: string;
  maxFetches?: number;
  /** The API key that asked for the URL. */
  keyId: string;
  /** A PUT that replaces the bytes of an asset at `version` (`replaceAssetFile` by URL), with what it declared. */
  replace?: ReplaceClaims;
}

/** What a replace URL promises: the version it replaces and the bytes it will carry. */
export interface ReplaceClaims {
  version: number;
  size: number | null;
  checksum: string | null;
  filename: string | null;
}

/** Why a token was refused. */
export class SignatureError extends Error {
  constructor(readonly reason: 'malformed' | 'unknown-key' | 'bad-signature' | 'expired' | 'wrong-method') {
    super(`signed URL refused: ${reason}`);
  }
}

/** A signing secret, named by the first bytes of its hash (the key id carried in tokens). */
interface SigningKey {
  id: string;
  secret: Buffer;
}

function keyOf(secret: string): SigningKey {
  return { id: createHash('sha256').update(secret).digest('hex').slice(0, 8), secret: Buffer.from(secret) };
}

export interface UrlSignerConfig {
  secret: string;
  /** The secret before the last rotation, accepted for verification until `previousUntil`. */
  previous?: string | null;
  previousUntil?: Date | null;
  clock?: () => number;
}

/**
 * HMAC-SHA256 tokens for signed URLs: `v1.<key id>.<claims>.<signature>`, with the
 * signature over the first three parts, compared in constant time. New tokens use
 * the current secret; the previous one still verifies during the rotation grace.
 */
export class UrlSigner {
  readonly #current: SigningKey;
  readonly #previous: SigningKey | null;
  readonly #previousUntil: number;
  readonly #clock: () => number;

  constructor(config: UrlSignerConfig) {
    this.#current = keyOf(config.secret);
    this.#previous = config.previous ? keyOf(config.previous) : null;
    this.#previousUntil = config.previousUntil?.getTime() ?? Number.POSITIVE_INFINITY;
    this.#clock = config.clock ?? Date.now;
  }

  sign(claims: UrlClaims): string {
    const payload = Buffer.from(
      JSON.stringify([
        claims.method,
        claims.assetId,
        claims.version,
        claims.expires,
        claims.tokenId ?? null,
        claims.maxFetches ?? null,
        claims.keyId,
        // Eight fields for a replace URL; tokens without it keep the seven they always had.
        ...(claims.replace ? [claims.replace] : []),
      ]),
    ).toString('base64url');
    const head = `v1.${this.#current.id}.${payload}`;
    return `${head}.${this.#mac(this.#current, head)}`;
  }

  /** The claims of a valid, unexpired token for `method`; throws `SignatureError` otherwise. */
  verify(token: string, method: 'GET' | 'PUT'): UrlClaims {
    const parts = token.split('.');
    if (parts.length !== 4 || parts[0] !== 'v1') throw new SignatureError('malformed');
    const [version, keyId, payload, signature] = parts;
    const key = this.#keyFor(keyId);
    const expected = Buffer.from(this.#mac(key, `${version}.${keyId}.${payload}`));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new SignatureError('bad-signature');
    let fields: unknown;
    try {
      fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw new SignatureError('malformed'); // signed by us yet unreadable: only an older format could do this
    }
    if (!Array.isArray(fields) || (fields.length !== 7 && fields.length !== 8)) throw new SignatureError('malformed');
    const [m, assetId, v, expires, tokenId, maxFetches, apiKeyId, replace] = fields;
    const claims: UrlClaims = {
      method: m,
      assetId,
      version: v,
      expires,
      keyId: apiKeyId,
      ...(tokenId !== null && { tokenId, maxFetches }),
      ...(replace !== undefined && { replace }),
    };
    if (claims.method !== method) throw new SignatureError('wrong-method');
    if (claims.expires * 1000 <= this.#clock()) throw new SignatureError('expired');
    return claims;
  }

  #keyFor(id: string): SigningKey {
    if (id === this.#current.id) return this.#current;
    if (this.#previous && id === this.#previous.id && this.#clock() < this.#previousUntil) return this.#previous;
    throw new SignatureError('unknown-key');
  }

  #mac(key: SigningKey, data: string): string {
    return createHmac('sha256', key.secret).update(data).digest('base64url');
  }
}
