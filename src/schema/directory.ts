import type { DirectoryRow } from '../db/types.js';
import { NotFoundError } from '../errors.js';
import { builder, tenantOf } from './builder.js';
import { encodeGlobalId, idOfType } from '../global-id.js';

export const Directory = builder.loadableNodeRef<DirectoryRow, string>('Directory', {
  id: { resolve: (directory) => directory.id },
  load: async (ids: string[], ctx) => {
    const rows = ctx.tenant ? await ctx.services.directories.findByIds(ctx.tenant, ids) : [];
    return ids.map((_, i) => rows[i] ?? new NotFoundError('Directory'));
  },
});

Directory.implement({
  description: 'A folder that groups assets.',
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'parent_id' in value,
  fields: (t) => ({
    name: t.exposeString('name'),
    parent: t.field({ type: Directory, nullable: true, resolve: (d) => d.parent_id }),
    createdAt: t.field({ type: 'DateTime', resolve: (d) => d.created_at }),
  }),
});

builder.queryField('directories', (t) =>
  t.field({
    type: [Directory],
    description: 'Folders under `parentId`, or the top-level ones.',
    authScopes: { 'read:assets': true },
    args: { parentId: t.arg.globalID() },
    resolve: (_root, args, ctx) =>
      ctx.services.directories.list(tenantOf(ctx), args.parentId ? idOfType(args.parentId, 'Directory') : null),
  }),
);

builder.relayMutationField(
  'createDirectory',
  { inputFields: (t) => ({ name: t.string({ required: true }), parentId: t.globalID() }) },
  {
    authScopes: { 'write:assets': true },
    resolve: async (_root, { input }, ctx) => ({
      directory: await ctx.services.directories.create(tenantOf(ctx), {
        name: input.name,
        parentId: input.parentId ? idOfType(input.parentId, 'Directory') : null,
      }),
    }),
  },
  { outputFields: (t) => ({ directory: t.field({ type: Directory, resolve: (payload) => payload.directory }) }) },
);

builder.relayMutationField(
  'deleteDirectory',
  { inputFields: (t) => ({ id: t.globalID({ required: true }) }) },
  {
    description: 'Deletes a folder and its subfolders; their assets remain, outside any folder.',
    authScopes: { 'delete:assets': true },
    resolve: async (_root, { input }, ctx) => {
      await ctx.services.directories.delete(tenantOf(ctx), idOfType(input.id, 'Directory'));
      return { deletedId: encodeGlobalId('Directory', input.id.id) };
    },
  },
  { outputFields: (t) => ({ deletedId: t.id({ resolve: (payload) => payload.deletedId }) }) },
);
