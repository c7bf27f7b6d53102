import { randomUUID } from 'node:crypto';
import type { Insertable } from 'kysely';
import { atomic, type Db } from './database.js';
import type {
  AssetEventRow,
  AssetEventsTable,
  AssetEventType,
  Tenant,
  WebhookDeliveryRow,
  WebhookRow,
  WebhooksTable,
} from './types.js';

/** A due delivery, with what fair sharing needs to know of it. */
export interface DueDelivery {
  id: string;
  webhook_id: string;
  org_id: string;
}

/** The asset event feed, the webhooks of each tenant and their deliveries. */
export class WebhookRepository {
  constructor(private readonly db: Db) {}

  /**
   * Records an event and, in the same transaction, one pending delivery for each enabled
   * webhook of its tenant that listens to its type; the deliveries made.
   */
  async recordEvent(event: Insertable<AssetEventsTable>, now: string): Promise<number> {
    return atomic(this.db, async (trx) => {
      await trx.insertInto('asset_events').values(event).execute();
      const hooks = await trx
        .selectFrom('webhooks')
        .select(['id', 'events'])
        .where('org_id', '=', event.org_id)
        .where('mode', '=', event.mode)
        .where('disabled_at', 'is', null)
        .execute();
      const listening = hooks.filter((hook) => hook.events.split(' ').includes(event.type));
      if (listening.length === 0) return 0;
      await trx
        .insertInto('webhook_deliveries')
        .values(
          listening.map((hook) => ({
            id: randomUUID(),
            webhook_id: hook.id,
            event_id: event.id,
            event_type: event.type,
            status: 'pending' as const,
            run_at: now,
            created_at: now,
            updated_at: now,
          })),
        )
        .execute();
      return listening.length;
    });
  }

  /** The tenant's events after `afterSeq`, oldest first, at most `limit + 1` (one more tells there are more). */
  eventsAfter(tenant: Tenant, afterSeq: number, limit: number): Promise<AssetEventRow[]> {
    return this.db
      .selectFrom('asset_events')
      .selectAll()
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit + 1)
      .execute();
  }

  async countEvents(tenant: Tenant): Promise<number> {
    const row = await this.db
      .selectFrom('asset_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  findEvent(id: string): Promise<AssetEventRow | undefined> {
    return this.db.selectFrom('asset_events').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async createWebhook(row: Insertable<WebhooksTable>): Promise<WebhookRow> {
    return this.db.insertInto('webhooks').values(row).returningAll().executeTakeFirstOrThrow();
  }

  listWebhooks(tenant: Tenant): Promise<WebhookRow[]> {
    return this.db
      .selectFrom('webhooks')
      .selectAll()
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  findWebhook(tenant: Tenant, id: string): Promise<WebhookRow | undefined> {
    return this.db
      .selectFrom('webhooks')
      .selectAll()
      .where('id', '=', id)
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .executeTakeFirst();
  }

  findWebhookAnyTenant(id: string): Promise<WebhookRow | undefined> {
    return this.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Deletes a webhook and (cascade) its deliveries; false when the tenant has none by that id. */
  async deleteWebhook(tenant: Tenant, id: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('webhooks')
      .where('id', '=', id)
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /** Turns a disabled webhook back on, its failure count cleared. */
  enableWebhook(tenant: Tenant, id: string): Promise<WebhookRow | undefined> {
    return this.db
      .updateTable('webhooks')
      .set({ disabled_at: null, disabled_reason: null, failures: 0 })
      .where('id', '=', id)
      .where('org_id', '=', tenant.orgId)
      .where('mode', '=', tenant.mode)
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Claims due pending deliveries for a lease: each is counted as one more attempt, and
   * no other worker (here or on another gateway) takes it while the lease lasts. A worker
   * that dies lets its lease run out and the delivery is due again. Of up to `scan` due
   * deliveries, oldest first and none of the webhooks or orgs in `skip`, `choose` picks
   * the ones to claim (the caller's fair share rules).
   */
  async claimDue(
    now: string,
    leaseUntil: string,
    options: {
      scan: number;
      skip: { webhooks: readonly string[]; orgs: readonly string[] };
      choose: (due: DueDelivery[]) => string[];
    },
  ): Promise<WebhookDeliveryRow[]> {
    return atomic(this.db, async (trx) => {
      const { webhooks, orgs } = options.skip;
      const due = await trx
        .selectFrom('webhook_deliveries as d')
        .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
        .select(['d.id', 'd.webhook_id', 'w.org_id'])
        .where('d.status', '=', 'pending')
        .where('d.run_at', '<=', now)
        .where((eb) => eb.or([eb('d.locked_until', 'is', null), eb('d.locked_until', '<', now)]))
        .$if(webhooks.length > 0, (qb) => qb.where('d.webhook_id', 'not in', webhooks))
        .$if(orgs.length > 0, (qb) => qb.where('w.org_id', 'not in', orgs))
        .orderBy('d.run_at')
        .limit(options.scan)
        .execute();
      const chosen = due.length === 0 ? [] : options.choose(due);
      if (chosen.length === 0) return [];
      return (
        trx
          .updateTable('webhook_deliveries')
          .set((eb) => ({ locked_until: leaseUntil, attempts: eb('attempts', '+', 1), updated_at: now }))
          .where('id', 'in', chosen)
          .where('status', '=', 'pending')
          // Re-checked on the row itself: of two gateways that read the same due row, one claims it.
          .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
          .returningAll()
          .execute()
      );
    });
  }

  /**
   * An attempt cut short by this gateway (it is shutting down): the claim is given back
   * uncounted and the delivery is due at once, for any gateway to send.
   */
  async release(delivery: WebhookDeliveryRow, now: string): Promise<void> {
    await this.db
      .updateTable('webhook_deliveries')
      .set((eb) => ({ locked_until: null, run_at: now, attempts: eb('attempts', '-', 1), updated_at: now }))
      .where('id', '=', delivery.id)
      .where('status', '=', 'pending')
      .execute();
  }

  /** The earliest time a pending delivery is due, if any: when the worker should look next. */
  async nextDue(): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.min('run_at').as('at'))
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return (row?.at as string | null) ?? undefined;
  }

  /** A delivery that landed: the webhook's run of failures ends. */
  async delivered(delivery: WebhookDeliveryRow, status: number, now: string): Promise<void> {
    await atomic(this.db, async (trx) => {
      await trx
        .updateTable('webhook_deliveries')
        .set({ status: 'delivered', response_status: status, last_error: null, locked_until: null, updated_at: now })
        .where('id', '=', delivery.id)
        .execute();
      await trx.updateTable('webhooks').set({ failures: 0 }).where('id', '=', delivery.webhook_id).execute();
    });
  }

  /**
   * A failed attempt: the delivery is due again at `retryAt`, or failed for good without
   * one. The webhook counts one more failure in a row; at `disableAfter` it is disabled
   * with `reason`, and its pending deliveries fail with it. Whether it was disabled now.
   */
  async failed(
    delivery: WebhookDeliveryRow,
    outcome: { status: number | null; error: string; retryAt: string | null },
    { now, disableAfter }: { now: string; disableAfter: number },
  ): Promise<boolean> {
    return atomic(this.db, async (trx) => {
      await trx
        .updateTable('webhook_deliveries')
        .set({
          status: outcome.retryAt ? 'pending' : 'failed',
          run_at: outcome.retryAt ?? now,
          response_status: outcome.status,
          last_error: outcome.error.slice(0, 500),
          locked_until: null,
          updated_at: now,
        })
        .where('id', '=', delivery.id)
        .execute();
      const hook = await trx
        .updateTable('webhooks')
        .set((eb) => ({ failures: eb('failures', '+', 1) }))
        .where('id', '=', delivery.webhook_id)
        .returning(['failures', 'disabled_at'])
        .executeTakeFirst();
      if (!hook || hook.disabled_at !== null || hook.failures < disableAfter) return false;
      const reason = `Disabled after ${hook.failures} failed deliveries in a row; the last: ${outcome.error}`.slice(
        0,
        500,
      );
      await trx
        .updateTable('webhooks')
        .set({ disabled_at: now, disabled_reason: reason })
        .where('id', '=', delivery.webhook_id)
        .execute();
      await trx
        .updateTable('webhook_deliveries')
        .set({ status: 'failed', last_error: 'The webhook was disabled.', updated_at: now })
        .where('webhook_id', '=', delivery.webhook_id)
        .where('status', '=', 'pending')
        .execute();
      return true;
    });
  }

  /** A delivery whose webhook was disabled or deleted meanwhile: not sent. */
  async abandon(delivery: WebhookDeliveryRow, reason: string, now: string): Promise<void> {
    await this.db
      .updateTable('webhook_deliveries')
      .set({ status: 'failed', last_error: reason, locked_until: null, updated_at: now })
      .where('id', '=', delivery.id)
      .execute();
  }

  /**
   * Forgets events recorded before `eventsBefore` (their feed's retention) and finished
   * deliveries last touched before `deliveriesBefore`; how many of each.
   */
  async deleteOld(eventsBefore: string, deliveriesBefore: string): Promise<{ events: number; deliveries: number }> {
    const deliveries = await this.db
      .deleteFrom('webhook_deliveries')
      .where('status', '!=', 'pending')
      .where('updated_at', '<', deliveriesBefore)
      .executeTakeFirst();
    const events = await this.db.deleteFrom('asset_events').where('at', '<', eventsBefore).executeTakeFirst();
    return { events: Number(events.numDeletedRows), deliveries: Number(deliveries.numDeletedRows) };
  }

  /** A webhook's deliveries, newest first. */
  deliveries(webhookId: string, limit: number): Promise<WebhookDeliveryRow[]> {
    return this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('webhook_id', '=', webhookId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
  }
}

export type { AssetEventType };
