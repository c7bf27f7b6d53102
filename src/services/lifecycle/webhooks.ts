import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import dns from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { nowIso } from '../../db/database.js';
import {
  ASSET_EVENT_TYPES,
  type AssetEventRow,
  type AssetEventType,
  type AssetRow,
  type Tenant,
  type WebhookDeliveryRow,
  type WebhookRow,
} from '../../db/types.js';
import type { WebhookRepository } from '../../db/webhook-repository.js';
import { BadUserInputError, NotFoundError } from '../../errors.js';
import { encodeGlobalId } from '../../global-id.js';
import { isAddressAllowed, safePost, type SafeFetchOptions } from '../../adapters/safe-fetch.js';

/** What a webhook's payload and the feed tell of an asset: its public description, never its bytes or URLs. */
export interface AssetSnapshot {
  id: string;
  title: string;
  type: string;
  status: string;
  filename: string | null;
  mimeType: string | null;
  size: number | null;
  checksum: string | null;
  isPublic: boolean;
  version: number;
  failureReason: string | null;
  createdAt: string;
  updatedAt: string;
}

export function snapshotOf(asset: AssetRow): AssetSnapshot {
  return {
    id: encodeGlobalId('Asset', asset.id),
    title: asset.title,
    type: asset.type,
    status: asset.status,
    filename: asset.filename,
    mimeType: asset.mime_type,
    size: asset.blob_key ? Number(asset.size) : null,
    checksum: asset.checksum,
    isPublic: asset.is_public === 1,
    version: asset.version,
    failureReason: asset.failure_reason,
    createdAt: asset.created_at,
    updatedAt: asset.updated_at,
  };
}

/**
 * The Standard Webhooks signature of a message: `v1,` and the base64 HMAC-SHA256, keyed
 * with the secret's bytes, of `<id>.<timestamp>.<body>`.
 */
export function signWebhook(
  secret: string,
  { id, timestamp, body }: { id: string; timestamp: number; body: string },
): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

export interface WebhookServiceDeps {
  webhooks: WebhookRepository;
  /** The SSRF rules of deliveries: those of URL imports, with `WEBHOOK_ALLOW` as the allow-list. */
  fetch: Omit<SafeFetchOptions, 'maxRedirects'>;
  /** Waits before each retry of a failed delivery, ms; a delivery fails for good once they are spent. */
  retryDelaysMs: readonly number[];
  /** Failed attempts in a row after which a webhook is disabled. */
  disableAfter: number;
  /** Longest attempt, ms: connect, send and answer together; past it the attempt fails and is retried. */
  timeoutMs: number;
  /** Attempts this gateway runs at once, all orgs and webhooks together; one org takes half at most. */
  concurrency: number;
  /** Attempts at once to one webhook. */
  perEndpoint: number;
  /** Told when a webhook is disabled: its failures ran out. */
  onDisabled?: (webhook: WebhookRow, reason: string) => void;
  clock: () => number;
  logError: (error: unknown) => void;
}

/** How long a claimed delivery is this worker's past its deadline: then another may send it again. */
const LEASE_MARGIN_MS = 60_000;

/** An attempt under way, and what it counts against. */
interface Attempt {
  webhookId: string;
  orgId: string;
  done: Promise<void>;
}

/**
 * Webhooks: each asset event is kept in the org's feed and handed, as a durable
 * delivery, to every webhook of the org and mode that listens to its type. Deliveries
 * are signed (Standard Webhooks), sent under the SSRF rules of URL imports, retried
 * with backoff, and a webhook that keeps failing is disabled with the reason.
 *
 * Attempts are finite and fair: each has one deadline for the whole exchange; a gateway
 * runs `concurrency` at once, at most `perEndpoint` to one webhook and half of them for
 * one org, so a slow or dead endpoint holds its own share of slots and no one else's.
 */
export class WebhookService {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;
  #again = false;
  readonly #attempts = new Map<string, Attempt>();
  /** Aborted when the gateway stops: attempts still under way are given back, not failed. */
  readonly #shutdown = new AbortController();

  constructor(private readonly deps: WebhookServiceDeps) {}

  #now(): string {
    return nowIso(this.deps.clock);
  }

  /** Keeps an event in the feed and queues its deliveries; wakes the worker when there are some. */
  async record(type: AssetEventType, asset: AssetRow): Promise<void> {
    const queued = await this.deps.webhooks.recordEvent(
      {
        id: `evt_${randomUUID().replaceAll('-', '')}`,
        org_id: asset.org_id,
        mode: asset.mode,
        asset_id: asset.id,
        type,
        asset: JSON.stringify(snapshotOf(asset)),
        at: this.#now(),
      },
      this.#now(),
    );
    if (queued > 0) this.wake();
  }

  async create(
    tenant: Tenant,
    input: { url: string; events: readonly string[] },
  ): Promise<{ webhook: WebhookRow; secret: string }> {
    const url = await this.#checkUrl(input.url);
    const events = [...new Set(input.events)];
    if (events.length === 0)
      throw new BadUserInputError('events', `Name at least one of ${ASSET_EVENT_TYPES.join(', ')}.`);
    for (const event of events) {
      if (!(ASSET_EVENT_TYPES as readonly string[]).includes(event)) {
        throw new BadUserInputError('events', `Unknown event "${event}"; events are ${ASSET_EVENT_TYPES.join(', ')}.`);
      }
    }
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const webhook = await this.deps.webhooks.createWebhook({
      id: randomUUID(),
      org_id: tenant.orgId,
      mode: tenant.mode,
      url: url.href,
      events: ASSET_EVENT_TYPES.filter((type) => events.includes(type)).join(' '),
      secret,
      created_at: this.#now(),
    });
    return { webhook, secret };
  }

  /**
   * An http(s) URL whose host is not an address deliveries may not reach (loopback,
   * private, link-local…, unless allowed): checked now for a clear error, and again at
   * every delivery, after DNS, as URL imports are.
   */
  async #checkUrl(raw: string): Promise<URL> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new BadUserInputError('url', 'Not a URL.');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new BadUserInputError('url', 'Use an http or https URL.');
    if (url.username || url.password) throw new BadUserInputError('url', 'Credentials do not belong in a webhook URL.');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const { allow } = this.deps.fetch;
    if (allow.includes(host.toLowerCase())) return url;
    let addresses: string[];
    if (ipaddr.isValid(host)) addresses = [host];
    else {
      try {
        addresses = (await dns.lookup(host, { all: true })).map((a) => a.address);
      } catch {
        throw new BadUserInputError('url', `${host} does not resolve.`);
      }
    }
    if (addresses.some((address) => !isAddressAllowed(address, allow))) {
      throw new BadUserInputError(
        'url',
        `${host} is an address webhooks may not reach (set WEBHOOK_ALLOW to allow it).`,
      );
    }
    return url;
  }

  /** The tenant's asset events after `afterSeq`, oldest first, at most `limit + 1` (one more tells there are more). */
  eventsAfter(tenant: Tenant, afterSeq: number, limit: number): Promise<AssetEventRow[]> {
    return this.deps.webhooks.eventsAfter(tenant, afterSeq, limit);
  }

  /** How many asset events the tenant's feed holds. */
  countEvents(tenant: Tenant): Promise<number> {
    return this.deps.webhooks.countEvents(tenant);
  }

  list(tenant: Tenant): Promise<WebhookRow[]> {
    return this.deps.webhooks.listWebhooks(tenant);
  }

  async get(tenant: Tenant, id: string): Promise<WebhookRow> {
    const webhook = await this.deps.webhooks.findWebhook(tenant, id);
    if (!webhook) throw new NotFoundError('Webhook');
    return webhook;
  }

  async delete(tenant: Tenant, id: string): Promise<void> {
    if (!(await this.deps.webhooks.deleteWebhook(tenant, id))) throw new NotFoundError('Webhook');
  }

  async enable(tenant: Tenant, id: string): Promise<WebhookRow> {
    const webhook = await this.deps.webhooks.enableWebhook(tenant, id);
    if (!webhook) throw new NotFoundError('Webhook');
    return webhook;
  }

  async deliveries(tenant: Tenant, webhookId: string, first: number) {
    await this.get(tenant, webhookId);
    return this.deps.webhooks.deliveries(webhookId, first);
  }

  /** Sends every delivery due now and waits for the attempts; how many were made. */
  async deliverDue(): Promise<number> {
    let attempted = 0;
    for (;;) {
      attempted += await this.#fill();
      if (this.#attempts.size === 0) return attempted;
      await Promise.race([...this.#attempts.values()].map((attempt) => attempt.done));
    }
  }

  /** The most attempts one org runs at once: half the slots, so another org always finds some. */
  get #orgShare(): number {
    return Math.max(1, Math.ceil(this.deps.concurrency / 2));
  }

  /** Claims what the free slots and the shares allow, and starts sending it; how many were started. */
  async #fill(): Promise<number> {
    let started = 0;
    for (;;) {
      const free = this.deps.concurrency - this.#attempts.size;
      if (free <= 0 || this.#shutdown.signal.aborted) return started;
      const perHook = new Map<string, number>();
      const perOrg = new Map<string, number>();
      for (const attempt of this.#attempts.values()) {
        perHook.set(attempt.webhookId, (perHook.get(attempt.webhookId) ?? 0) + 1);
        perOrg.set(attempt.orgId, (perOrg.get(attempt.orgId) ?? 0) + 1);
      }
      const full = (counts: Map<string, number>, cap: number) =>
        [...counts].filter(([, n]) => n >= cap).map(([id]) => id);
      const orgOf = new Map<string, string>();
      const now = this.deps.clock();
      const claimed = await this.deps.webhooks.claimDue(
        nowIso(() => now),
        nowIso(() => now + this.deps.timeoutMs + LEASE_MARGIN_MS),
        {
          scan: free * 4,
          skip: { webhooks: full(perHook, this.deps.perEndpoint), orgs: full(perOrg, this.#orgShare) },
          choose: (due) => {
            const chosen: string[] = [];
            for (const d of due) {
              if (chosen.length >= free) break;
              const hook = perHook.get(d.webhook_id) ?? 0;
              const org = perOrg.get(d.org_id) ?? 0;
              if (hook >= this.deps.perEndpoint || org >= this.#orgShare) continue;
              perHook.set(d.webhook_id, hook + 1);
              perOrg.set(d.org_id, org + 1);
              orgOf.set(d.id, d.org_id);
              chosen.push(d.id);
            }
            return chosen;
          },
        },
      );
      // Nothing fit (or another gateway took it): what is left waits for a slot to free up.
      if (claimed.length === 0) return started;
      for (const delivery of claimed) {
        const done = this.#deliver(delivery)
          .catch(this.deps.logError)
          .finally(() => {
            this.#attempts.delete(delivery.id);
            this.wake();
          });
        this.#attempts.set(delivery.id, { webhookId: delivery.webhook_id, orgId: orgOf.get(delivery.id)!, done });
      }
      started += claimed.length;
    }
  }

  async #deliver(delivery: WebhookDeliveryRow): Promise<void> {
    const { webhooks } = this.deps;
    const [hook, event] = await Promise.all([
      webhooks.findWebhookAnyTenant(delivery.webhook_id),
      webhooks.findEvent(delivery.event_id),
    ]);
    if (!hook || hook.disabled_at !== null || !event) {
      await webhooks.abandon(
        delivery,
        hook?.disabled_at ? 'The webhook was disabled.' : 'The event is gone.',
        this.#now(),
      );
      return;
    }
    const timestamp = Math.floor(this.deps.clock() / 1000);
    const body = JSON.stringify({ type: event.type, timestamp: event.at, data: JSON.parse(event.asset) });
    const deadline = AbortSignal.timeout(this.deps.timeoutMs);
    let status: number | null = null;
    let error: string;
    try {
      status = await safePost(hook.url, body, {
        headers: {
          'content-type': 'application/json',
          'user-agent': 'assetgate-webhooks/1',
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(hook.secret, { id: event.id, timestamp, body }),
        },
        options: { ...this.deps.fetch, maxRedirects: 0 },
        signal: AbortSignal.any([deadline, this.#shutdown.signal]),
      });
      if (status >= 200 && status < 300) {
        await webhooks.delivered(delivery, status, this.#now());
        return;
      }
      error = `HTTP ${status}`;
    } catch (thrown) {
      // Cut short by this gateway's shutdown, not by the endpoint: any gateway sends it again.
      if (this.#shutdown.signal.aborted) return webhooks.release(delivery, this.#now());
      error = deadline.aborted
        ? `no complete answer within ${this.deps.timeoutMs / 1000} s`
        : (thrown as Error).message;
    }
    const delay = this.deps.retryDelaysMs[delivery.attempts - 1];
    const retryAt = delay === undefined ? null : nowIso(() => this.deps.clock() + delay);
    const outcome = { status, error, retryAt };
    if (await webhooks.failed(delivery, outcome, { now: this.#now(), disableAfter: this.deps.disableAfter })) {
      this.deps.onDisabled?.(hook, error);
    }
  }

  /** Runs the worker: at once when woken, and whenever the next retry is due. */
  start(): void {
    this.#stopped = false;
    this.wake();
  }

  /** Looks for due deliveries now (events were recorded, or a retry came due). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#running = this.#turn().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.wake();
      }
    });
  }

  async #turn(): Promise<void> {
    try {
      await this.#fill();
      if (this.#stopped) return;
      // Another gateway may queue deliveries without waking this one: look at least every 5 s.
      // While attempts are under way, each one's end looks again (what is due may wait for a slot).
      const next = this.#attempts.size > 0 ? undefined : await this.deps.webhooks.nextDue();
      const wait = next === undefined ? 5000 : Math.min(5000, Math.max(50, Date.parse(next) - this.deps.clock()));
      this.#timer = setTimeout(() => this.wake(), wait);
      this.#timer.unref();
    } catch (error) {
      this.deps.logError(error);
      this.#timer = setTimeout(() => this.wake(), 5000);
      this.#timer.unref();
    }
  }

  /**
   * Stops the worker: no new attempt starts; those under way get `deadlineMs` (none when
   * not given) to finish, then they are cut and their deliveries given back, due at once.
   */
  async stop(deadlineMs = 0): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    const attempts = () => Promise.all([...this.#attempts.values()].map((attempt) => attempt.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([attempts(), new Promise((resolve) => (timer = setTimeout(resolve, deadlineMs)))]);
    clearTimeout(timer);
    this.#shutdown.abort();
    await attempts();
  }
}
