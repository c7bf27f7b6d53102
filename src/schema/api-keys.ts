import { manageableBy, scopesOf } from '../auth/api-key-service.js';
import { SCOPES } from '../auth/scopes.js';
import type { ApiKeyRow } from '../db/types.js';
import { NotFoundError } from '../errors.js';
import { builder } from './builder.js';
import { idOfType } from '../global-id.js';

export const ScopeEnum = builder.enumType('Scope', {
  values: Object.fromEntries(
    SCOPES.map((scope) => [scope.replace(':', '_').toUpperCase(), { value: scope }]),
  ) as Record<string, { value: (typeof SCOPES)[number] }>,
  description: 'read:assets, write:assets (create, upload, update), delete:assets, admin:keys, admin:webhooks.',
});

export const KeyModeEnum = builder.enumType('KeyMode', {
  values: { LIVE: { value: 'live' as const }, TEST: { value: 'test' as const } },
  description: 'Test keys and live keys see separate data.',
});

export const ApiKey = builder.loadableNodeRef<ApiKeyRow, string>('ApiKey', {
  id: { resolve: (key) => key.id },
  // Keys of the caller's org, and only to admins; any key may see its own record.
  load: async (ids: string[], ctx) => {
    const principal = ctx.principal;
    const visible = (id: string) => principal && (principal.scopes.has('admin:keys') || id === principal.keyId);
    const rows = await Promise.all(
      ids.map((id) => (visible(id) ? ctx.services.apiKeys.find(id, manageableBy(principal!)) : undefined)),
    );
    return rows.map((row) => row ?? new NotFoundError('API key'));
  },
});

ApiKey.implement({
  description: 'An API key. The secret is shown once, when the key is created, and never again.',
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'key_hash' in value,
  fields: (t) => ({
    name: t.exposeString('name'),
    prefix: t.exposeString('prefix', { description: 'The first characters of the key, to recognise it.' }),
    org: t.exposeString('org_id'),
    mode: t.field({ type: KeyModeEnum, resolve: (key) => key.mode }),
    scopes: t.stringList({ resolve: (key) => scopesOf(key) }),
    createdAt: t.field({ type: 'DateTime', resolve: (key) => key.created_at }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, resolve: (key) => key.expires_at }),
    lastUsedAt: t.field({ type: 'DateTime', nullable: true, resolve: (key) => key.last_used_at }),
    revokedAt: t.field({ type: 'DateTime', nullable: true, resolve: (key) => key.revoked_at }),
  }),
});

builder.queryField('apiKeys', (t) =>
  t.field({
    type: [ApiKey],
    description: "The keys of the caller's org (a test key: its test keys), oldest first.",
    authScopes: { 'admin:keys': true },
    resolve: (_root, _args, ctx) => ctx.services.apiKeys.list(manageableBy(ctx.principal!)),
  }),
);

builder.relayMutationField(
  'createApiKey',
  {
    inputFields: (t) => ({
      name: t.string(),
      scopes: t.stringList({ required: true, description: 'Only scopes the calling key has itself.' }),
      mode: t.field({ type: KeyModeEnum, description: "Default: the calling key's mode." }),
      expiresAt: t.field({ type: 'DateTime' }),
    }),
  },
  {
    description: "Creates a key in the caller's org. `key` is the secret: it is shown this once.",
    authScopes: { 'admin:keys': true },
    resolve: async (_root, { input }, ctx) => {
      const created = await ctx.services.apiKeys.createFor(ctx.principal!, {
        name: input.name,
        scopes: input.scopes,
        mode: input.mode ?? undefined,
        expiresAt: input.expiresAt,
      });
      return { key: created.key, apiKey: created.record };
    },
  },
  {
    outputFields: (t) => ({
      key: t.string({ resolve: (payload) => payload.key }),
      apiKey: t.field({ type: ApiKey, resolve: (payload) => payload.apiKey }),
    }),
  },
);

builder.relayMutationField(
  'revokeApiKey',
  { inputFields: (t) => ({ id: t.globalID({ required: true }) }) },
  {
    description: "Revokes a key of the caller's org at once. Revoking twice is harmless.",
    authScopes: { 'admin:keys': true },
    resolve: async (_root, { input }, ctx) => ({
      apiKey: await ctx.services.apiKeys.revoke(idOfType(input.id, 'ApiKey'), manageableBy(ctx.principal!)),
    }),
  },
  { outputFields: (t) => ({ apiKey: t.field({ type: ApiKey, resolve: (payload) => payload.apiKey }) }) },
);
