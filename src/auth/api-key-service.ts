import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ApiKeyRepository } from '../db/api-key-repository.js';
import { nowIso } from '../db/database.js';
import type { OrgRepository } from '../db/org-repository.js';
import type { ApiKeyRow, Mode } from '../db/types.js';
import { BadUserInputError, ForbiddenError, NotFoundError, UnauthenticatedError } from '../errors.js';
import type { Principal } from './principal.js';
import { isScope, SCOPES, type Scope } from './scopes.js';

/** Org ids appear inside keys (`sk_live_<org>_…`), so they cannot hold underscores. */
const ORG_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const KEY = /^sk_(live|test)_([a-z0-9][a-z0-9-]{0,62})_([0-9a-f]{48})$/;
/** 24 random bytes: 192 bits, printed as 48 hex characters. */
const RANDOM_BYTES = 24;
const TOUCH_EVERY_MS = 60_000;

export interface CreateKeyInput {
  orgId: string;
  scopes: readonly string[];
  mode?: Mode;
  name?: string | null;
  expiresAt?: Date | null;
}

/** A key just made: the secret (shown this once) and its record. */
export interface CreatedKey {
  key: string;
  record: ApiKeyRow;
}

/** The keys a key may manage: its org's; a test key only the test keys. */
export interface KeyScope {
  orgId: string;
  mode?: Mode;
}

export function manageableBy(principal: Principal): KeyScope {
  return { orgId: principal.orgId, mode: principal.mode === 'test' ? 'test' : undefined };
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function principalOf(record: ApiKeyRow): Principal {
  return {
    keyId: record.id,
    name: record.name,
    orgId: record.org_id,
    mode: record.mode,
    scopes: new Set(scopesOf(record)),
  };
}

/** Scopes of a record, in canonical order. */
export function scopesOf(record: Pick<ApiKeyRow, 'scopes'>): Scope[] {
  const held = new Set(record.scopes.split(' '));
  return SCOPES.filter((scope) => held.has(scope));
}

/** How long a checked key is trusted without reading its row again, and how many are kept. */
export interface KeyCacheOptions {
  /** Milliseconds (KEY_CACHE_TTL); 0 reads the row on every request. */
  ttlMs: number;
  /** Keys kept at most (KEY_CACHE_MAX); the least recently checked go first. */
  max: number;
}

/** What an `ApiKeyService` works with. */
export interface ApiKeyServiceOptions {
  keys: ApiKeyRepository;
  orgs: OrgRepository;
  /** @default Date.now */
  clock?: () => number;
  /** @default { ttlMs: 0, max: 0 } (no cache) */
  cache?: KeyCacheOptions;
}

/**
 * Creates, lists, revokes and checks API keys. A valid key, once read, is trusted for
 * `cache.ttlMs` without reading its row again (at most `cache.max` of them): a key
 * revoked on this gateway stops at once, one revoked elsewhere (another gateway, the
 * CLI) within that time. Expiry is checked on every request. Unknown keys are never kept.
 */
export class ApiKeyService {
  readonly #cache = new Map<string, { record: ApiKeyRow; until: number }>();

  private readonly keys: ApiKeyRepository;
  private readonly orgs: OrgRepository;
  private readonly clock: () => number;
  private readonly cache: KeyCacheOptions;

  constructor({ keys, orgs, clock = Date.now, cache = { ttlMs: 0, max: 0 } }: ApiKeyServiceOptions) {
    this.keys = keys;
    this.orgs = orgs;
    this.clock = clock;
    this.cache = cache;
  }

  /** Creates the org if needed and a key in it. The secret is returned once and stored hashed. */
  async create(input: CreateKeyInput): Promise<CreatedKey> {
    if (!ORG_ID.test(input.orgId)) {
      throw new BadUserInputError(
        'org',
        'Org ids are 1-63 lower-case letters, digits and dashes, starting with a letter or digit.',
      );
    }
    const scopes = [...new Set(input.scopes)];
    const unknown = scopes.find((scope) => !isScope(scope));
    if (unknown !== undefined)
      throw new BadUserInputError('scopes', `Unknown scope "${unknown}"; scopes are ${SCOPES.join(', ')}.`);
    if (scopes.length === 0) throw new BadUserInputError('scopes', 'A key needs at least one scope.');
    const name = (input.name ?? '').trim() || 'API key';
    if (name.length > 100) throw new BadUserInputError('name', 'Names are at most 100 characters.');
    if (input.expiresAt && input.expiresAt.getTime() <= this.clock()) {
      throw new BadUserInputError('expiresAt', 'The expiry must be in the future.');
    }
    const mode = input.mode ?? 'live';
    const now = nowIso(this.clock);
    const key = `sk_${mode}_${input.orgId}_${randomBytes(RANDOM_BYTES).toString('hex')}`;
    await this.orgs.ensure(input.orgId, now);
    const record = await this.keys.insert({
      id: randomUUID(),
      org_id: input.orgId,
      mode,
      name,
      scopes: SCOPES.filter((scope) => scopes.includes(scope)).join(' '),
      key_hash: hashKey(key),
      prefix: key.slice(0, key.length - 40),
      created_at: now,
      expires_at: input.expiresAt ? input.expiresAt.toISOString() : null,
      last_used_at: null,
      revoked_at: null,
    });
    return { key, record };
  }

  /** A key made by another key: never with a scope, or in a mode, the creator does not have. */
  async createFor(creator: Principal, input: Omit<CreateKeyInput, 'orgId'>): Promise<CreatedKey> {
    const missing = input.scopes.find((scope) => isScope(scope) && !creator.scopes.has(scope));
    if (missing) throw new ForbiddenError(`A key cannot grant the ${missing} scope, which it does not have itself.`);
    const mode = input.mode ?? creator.mode;
    if (creator.mode === 'test' && mode === 'live') throw new ForbiddenError('A test key cannot create live keys.');
    return this.create({ ...input, mode, orgId: creator.orgId });
  }

  /** A key record within `scope` (any key when undefined: the operator's CLI). */
  async find(id: string, scope?: KeyScope): Promise<ApiKeyRow | undefined> {
    const record = await this.keys.findById(id);
    if (!record || !scope) return record;
    return record.org_id === scope.orgId && (!scope.mode || record.mode === scope.mode) ? record : undefined;
  }

  list(scope?: KeyScope | { orgId?: string }): Promise<ApiKeyRow[]> {
    return this.keys.list(scope?.orgId, scope && 'mode' in scope ? scope.mode : undefined);
  }

  /** Revokes a key within `scope` (any key when undefined: the operator's CLI). */
  async revoke(id: string, scope?: KeyScope): Promise<ApiKeyRow> {
    const record = await this.keys.revoke(id, nowIso(this.clock), { orgId: scope?.orgId, mode: scope?.mode });
    if (!record) throw new NotFoundError('API key');
    this.#cache.delete(record.key_hash);
    return record;
  }

  /**
   * The principal behind a presented key. Missing, malformed, unknown, revoked and
   * expired keys all fail the same way. The lookup goes by hash: no comparison of
   * secrets whose timing could leak them.
   */
  async authenticate(key: string): Promise<Principal> {
    if (!KEY.test(key)) throw new UnauthenticatedError();
    const hash = hashKey(key);
    const now = this.clock();
    const record = this.#cached(hash, now) ?? (await this.keys.findByHash(hash));
    if (!record || !this.#valid(record, now)) {
      this.#cache.delete(hash);
      throw new UnauthenticatedError();
    }
    if (!record.last_used_at || Date.parse(record.last_used_at) < now - TOUCH_EVERY_MS) {
      record.last_used_at = nowIso(() => now);
      await this.keys.touch(
        record.id,
        record.last_used_at,
        nowIso(() => now - TOUCH_EVERY_MS),
      );
    }
    this.#keep(hash, record, now);
    return principalOf(record);
  }

  #cached(hash: string, now: number): ApiKeyRow | undefined {
    const entry = this.#cache.get(hash);
    if (entry && entry.until <= now) this.#cache.delete(hash);
    return entry && entry.until > now ? entry.record : undefined;
  }

  /**
   * Keeps a valid record, or moves it to the young end; the oldest go past `max`. Its
   * time runs from when its row was read, never renewed by use: a key in constant use
   * that was revoked elsewhere still stops within the TTL.
   */
  #keep(hash: string, record: ApiKeyRow, now: number): void {
    if (this.cache.ttlMs <= 0 || this.cache.max <= 0) return;
    const entry = this.#cache.get(hash);
    this.#cache.delete(hash);
    this.#cache.set(hash, { record, until: entry?.until ?? now + this.cache.ttlMs });
    while (this.#cache.size > this.cache.max) this.#cache.delete(this.#cache.keys().next().value!);
  }

  /**
   * The principal of key `id` if it is still valid now; null once revoked or expired.
   * For grants a key made earlier (signed URLs, open subscriptions), which live only as
   * long as the key.
   */
  async principalById(id: string): Promise<Principal | null> {
    const record = await this.keys.findById(id);
    return record && this.#valid(record, this.clock()) ? principalOf(record) : null;
  }

  #valid(record: ApiKeyRow, now: number): boolean {
    return !record.revoked_at && !(record.expires_at && Date.parse(record.expires_at) <= now);
  }

  /**
   * On a fresh install: org `default` and one key with every scope. Null when any key
   * exists. Gateways starting together make it once: only the one whose insert creates
   * org `default` goes on to make the key.
   */
  async bootstrap(): Promise<CreatedKey | null> {
    if ((await this.keys.count()) > 0) return null;
    if (!(await this.orgs.createIfAbsent('default', nowIso(this.clock)))) return null;
    return this.create({ orgId: 'default', scopes: SCOPES, name: 'bootstrap' });
  }
}

/**
 * The key a request presents: `Authorization: Bearer`, `X-API-Key` or `API-KEY`.
 * `null` when none is presented; an unusable Authorization header is returned as is
 * so that it fails authentication rather than passing as anonymous.
 */
export function presentedKey(header: (name: string) => string | null | undefined): string | null {
  const authorization = header('authorization');
  if (authorization) return /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] ?? authorization;
  return header('x-api-key') || header('api-key') || null;
}
