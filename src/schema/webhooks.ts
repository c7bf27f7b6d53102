import { createContextCache } from '@pothos/core';
import DataLoader from 'dataloader';
import type { AssetEventRow, WebhookDeliveryRow, WebhookRow } from '../db/types.js';
import type { Context } from './context.js';
import { BadUserInputError } from '../errors.js';
import { encodeGlobalId, idOfType } from '../global-id.js';
import { Asset } from './asset.js';
import { builder, tenantOf } from './builder.js';

const Webhook = builder.objectRef<WebhookRow>('Webhook').implement({
  description: 'An endpoint that hears asset events of its org and mode, signed the Standard Webhooks way.',
  fields: (t) => ({
    id: t.id({ resolve: (hook) => encodeGlobalId('Webhook', hook.id) }),
    url: t.exposeString('url'),
    events: t.stringList({ resolve: (hook) => hook.events.split(' ') }),
    createdAt: t.field({ type: 'DateTime', resolve: (hook) => hook.created_at }),
    failures: t.int({ description: 'Failed delivery attempts in a row.', resolve: (hook) => hook.failures }),
    disabledAt: t.field({ type: 'DateTime', nullable: true, resolve: (hook) => hook.disabled_at }),
    disabledReason: t.exposeString('disabled_reason', { nullable: true }),
  }),
});

const WebhookDelivery = builder.objectRef<WebhookDeliveryRow>('WebhookDelivery').implement({
  description: 'One event sent (or being sent) to a webhook, with its attempts.',
  fields: (t) => ({
    id: t.exposeID('id'),
    eventId: t.exposeString('event_id', { description: 'The `webhook-id` header: the same on every retry.' }),
    eventType: t.exposeString('event_type'),
    status: t.string({ description: 'PENDING, DELIVERED or FAILED.', resolve: (d) => d.status.toUpperCase() }),
    attempts: t.int({ resolve: (d) => d.attempts }),
    responseStatus: t.exposeInt('response_status', { nullable: true, description: "The endpoint's last HTTP status." }),
    lastError: t.exposeString('last_error', { nullable: true }),
    nextAttemptAt: t.field({
      type: 'DateTime',
      nullable: true,
      resolve: (d) => (d.status === 'pending' ? d.run_at : null),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (d) => d.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (d) => d.updated_at }),
  }),
});

builder.queryField('webhooks', (t) =>
  t.field({
    type: [Webhook],
    description: "The webhooks of the caller's org and mode, oldest first.",
    authScopes: { 'admin:webhooks': true },
    resolve: (_root, _args, ctx) => ctx.services.webhooks.list(tenantOf(ctx)),
  }),
);

builder.queryField('webhookDeliveries', (t) =>
  t.field({
    type: [WebhookDelivery],
    description: 'The deliveries of a webhook, newest first.',
    authScopes: { 'admin:webhooks': true },
    args: {
      webhookId: t.arg.globalID({ required: true }),
      first: t.arg.int({ description: 'At most 100; default 20.' }),
    },
    resolve: (_root, args, ctx) => {
      const first = args.first ?? 20;
      if (!Number.isInteger(first) || first < 1 || first > 100) {
        throw new BadUserInputError('first', 'first is from 1 to 100.');
      }
      return ctx.services.webhooks.deliveries(tenantOf(ctx), idOfType(args.webhookId, 'Webhook'), first);
    },
  }),
);

builder.relayMutationField(
  'createWebhook',
  {
    inputFields: (t) => ({
      url: t.string({
        required: true,
        description: 'http(s); private and loopback addresses only with WEBHOOK_ALLOW.',
      }),
      events: t.stringList({
        required: true,
        description: 'Any of asset.created, asset.ready, asset.failed, asset.updated, asset.deleted.',
      }),
    }),
  },
  {
    description:
      'Adds a webhook. `secret` (`whsec_…`) verifies its signatures: it is shown this once. Needs read:assets ' +
      'as well: deliveries carry what the org’s assets are called and hold.',
    // Deliveries carry asset metadata: only a key that may read it can point them somewhere.
    authScopes: { $all: { 'admin:webhooks': true, 'read:assets': true } },
    resolve: (_root, { input }, ctx) => ctx.services.webhooks.create(tenantOf(ctx), input),
  },
  {
    outputFields: (t) => ({
      webhook: t.field({ type: Webhook, resolve: (payload) => payload.webhook }),
      secret: t.string({ resolve: (payload) => payload.secret }),
    }),
  },
);

builder.relayMutationField(
  'deleteWebhook',
  { inputFields: (t) => ({ id: t.globalID({ required: true }) }) },
  {
    description: 'Removes a webhook and its deliveries.',
    authScopes: { 'admin:webhooks': true },
    resolve: async (_root, { input }, ctx) => {
      const id = idOfType(input.id, 'Webhook');
      await ctx.services.webhooks.delete(tenantOf(ctx), id);
      return { deletedId: encodeGlobalId('Webhook', id) };
    },
  },
  { outputFields: (t) => ({ deletedId: t.id({ resolve: (payload) => payload.deletedId }) }) },
);

builder.relayMutationField(
  'enableWebhook',
  { inputFields: (t) => ({ id: t.globalID({ required: true }) }) },
  {
    description: 'Turns a disabled webhook back on; deliveries that failed meanwhile are not sent again.',
    authScopes: { 'admin:webhooks': true },
    resolve: async (_root, { input }, ctx) => ({
      webhook: await ctx.services.webhooks.enable(tenantOf(ctx), idOfType(input.id, 'Webhook')),
    }),
  },
  { outputFields: (t) => ({ webhook: t.field({ type: Webhook, resolve: (payload) => payload.webhook }) }) },
);

/** The assets of a page of events as the caller may read them, batched per request. */
const readableAssets = createContextCache(
  (ctx: Context) => new DataLoader((ids: readonly string[]) => ctx.services.access.findReadable(ctx.principal, ids)),
);

const AssetEvent = builder.objectRef<AssetEventRow>('AssetEvent').implement({
  description: 'Something that happened to an asset, kept in the order it was recorded.',
  fields: (t) => ({
    id: t.exposeString('id', { description: 'The same id as the `webhook-id` of its deliveries.' }),
    type: t.exposeString('type', {
      description: 'asset.created, asset.ready, asset.failed, asset.updated or asset.deleted.',
    }),
    assetId: t.id({ resolve: (event) => encodeGlobalId('Asset', event.asset_id) }),
    asset: t.field({
      type: Asset,
      nullable: true,
      description: 'The asset as it is now; null once it is deleted (or in the trash).',
      // One read for the whole page of events, through the one access rule.
      resolve: async (event, _args, ctx) => (await readableAssets(ctx).load(event.asset_id)) ?? null,
    }),
    at: t.field({ type: 'DateTime', resolve: (event) => event.at }),
  }),
});

/** Cursor of the feed: the event's place in it. */
function cursorOf(event: AssetEventRow): string {
  return Buffer.from(`AssetEvent:${event.seq}`).toString('base64url');
}

function seqOf(cursor: string): number {
  const match = /^AssetEvent:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new BadUserInputError('after', 'Invalid cursor.');
  return Number(match[1]);
}

builder.queryField('assetEvents', (t) =>
  t.connection(
    {
      type: AssetEvent,
      description:
        "The org's asset events, oldest first: a client keeps the last cursor it read and asks for what came after.",
      authScopes: { 'read:assets': true },
      resolve: async (_root, args, ctx) => {
        if (args.last != null || args.before != null) {
          throw new BadUserInputError('last', 'The feed is read forwards: use first and after.');
        }
        const first = args.first ?? 20;
        if (!Number.isInteger(first) || first < 0 || first > 100)
          throw new BadUserInputError('first', 'first is from 0 to 100.');
        const after = args.after ? seqOf(args.after) : 0;
        const rows = await ctx.services.webhooks.eventsAfter(tenantOf(ctx), after, first);
        const page = rows.slice(0, first);
        return {
          edges: page.map((node) => ({ node, cursor: cursorOf(node) })),
          pageInfo: {
            hasNextPage: rows.length > first,
            hasPreviousPage: after > 0,
            startCursor: page.length ? cursorOf(page[0]!) : null,
            endCursor: page.length ? cursorOf(page.at(-1)!) : (args.after ?? null),
          },
          totalCount: () => ctx.services.webhooks.countEvents(tenantOf(ctx)),
        };
      },
    },
    { name: 'AssetEventConnection' },
    { name: 'AssetEventEdge' },
  ),
);
