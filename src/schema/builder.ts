import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin, { type AuthFailure } from '@pothos/plugin-scope-auth';
import type { FileUpload } from 'graphql-upload-minimal';
import type { Scope } from '../auth/scopes.js';
import type { Tenant } from '../db/types.js';
import { ForbiddenError, UnauthenticatedError } from '../errors.js';
import { decodeGlobalId, encodeGlobalId } from '../global-id.js';
import type { Context } from './context.js';

/** The tenant of the request's key; scope checks run first, so a scoped field always has one. */
export function tenantOf(ctx: Context): Tenant {
  if (!ctx.tenant) throw new UnauthenticatedError();
  return ctx.tenant;
}

/** Scope names a failed check asked for, for the FORBIDDEN message. */
function missingScopes(failure: AuthFailure): string[] {
  if ('failures' in failure) return failure.failures.flatMap(missingScopes);
  if ('scope' in failure && typeof failure.scope === 'string' && failure.scope.includes(':')) return [failure.scope];
  return [];
}

/** The one Pothos builder; each file under `schema/` adds one domain to it. */
export const builder = new SchemaBuilder<{
  Context: Context;
  DefaultFieldNullability: false;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  Scalars: {
    ID: { Input: string; Output: string };
    DateTime: { Input: Date; Output: string };
    Upload: { Input: Promise<FileUpload>; Output: never };
  };
  Connection: { totalCount: () => Promise<number> };
  AuthScopes: Record<Scope, boolean> & { anonymous: boolean; authenticated: boolean };
}>({
  plugins: [ScopeAuthPlugin, RelayPlugin, DataloaderPlugin],
  scopeAuth: {
    authScopes: (ctx) => ({
      'read:assets': ctx.principal?.scopes.has('read:assets') ?? false,
      'write:assets': ctx.principal?.scopes.has('write:assets') ?? false,
      'delete:assets': ctx.principal?.scopes.has('delete:assets') ?? false,
      'admin:keys': ctx.principal?.scopes.has('admin:keys') ?? false,
      'admin:webhooks': ctx.principal?.scopes.has('admin:webhooks') ?? false,
      anonymous: !ctx.principal,
      authenticated: !!ctx.principal,
    }),
    // No key where one is needed: 401. A key without the scope: FORBIDDEN, naming it.
    unauthorizedError: (_parent, ctx, _info, result) => {
      if (!ctx.principal) return new UnauthenticatedError();
      const scopes = [...new Set(missingScopes(result.failure))];
      return new ForbiddenError(
        scopes.length ? `This operation needs the ${scopes.join(' or ')} scope.` : 'This key may not do that.',
      );
    },
  },
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    edgesFieldOptions: { nullable: false },
    nodeFieldOptions: { nullable: false },
    nodesQueryOptions: false,
    nodeQueryOptions: {
      description: 'Any object by its global ID. Public assets need no key.',
      authScopes: { $any: { 'read:assets': true, anonymous: true } },
    },
    encodeGlobalID: encodeGlobalId,
    decodeGlobalID: decodeGlobalId,
  },
});

builder.queryType({});
builder.mutationType({});

builder.globalConnectionField('totalCount', (t) =>
  t.int({ description: 'Matching items across all pages.', resolve: (connection) => connection.totalCount() }),
);
