import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { encodeGlobalId } from '../src/global-id.js';
import { createTestApp, forEachDialect, processed, tempDir, type TestApp, waitFor } from './helpers.js';

/** One request the receiver got. */
interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

/** A webhook endpoint on loopback: records every request and answers what `answer` says. */
async function receiver(answer: (n: number) => number = () => 200) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = answer(received.length);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * An endpoint that reads each request and then never answers it (or, with `trickle`,
 * answers 200 and sends one byte of body every 100 ms, forever): counts the requests it
 * holds open, until the gateway closes them.
 */
async function stuckEndpoint(options: { trickle?: boolean } = {}) {
  let received = 0;
  let open = 0;
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    received++;
    open++;
    req.socket.once('close', () => open--);
    req.resume();
    if (!options.trickle) return;
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write('.'), 100);
    timers.add(timer);
    req.socket.once('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/stuck`,
    received: () => received,
    open: () => open,
    close: () => {
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Checks a Standard Webhooks signature independently of the product's code. */
function verify(secret: string, request: Received): boolean {
  const id = request.headers['webhook-id'] as string;
  const timestamp = request.headers['webhook-timestamp'] as string;
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${request.body}`).digest('base64');
  return (request.headers['webhook-signature'] as string).split(' ').includes(`v1,${expected}`);
}

const CREATE =
  'mutation($url: String!, $events: [String!]!) { createWebhook(input: { url: $url, events: $events }) { webhook { id url events } secret } }';
const DELIVERIES =
  'query($id: ID!) { webhookDeliveries(webhookId: $id) { eventId eventType status attempts responseStatus lastError } }';
const HOOK = '{ webhooks { id failures disabledAt disabledReason } }';
const FEED =
  'query($after: String, $first: Int) { assetEvents(first: $first, after: $after) { totalCount edges { cursor node { id type assetId at asset { id title } } } pageInfo { hasNextPage endCursor } } }';
const TENANT = { orgId: 'acme', mode: 'live' } as const;

async function upload(app: TestApp, text: string, filename = 'notes.txt'): Promise<string> {
  const row = await app.services.assets.upload(TENANT, { stream: Readable.from([Buffer.from(text)]), filename });
  const id = encodeGlobalId('Asset', row.id);
  await processed(app, id);
  return id;
}

forEachDialect((dialect) => {
  describe(`webhooks (${dialect})`, () => {
    let app: TestApp;
    before(async () => {
      app = await createTestApp(
        { SWEEP_INTERVAL: '0', WEBHOOK_ALLOW: '127.0.0.1/32' },
        { webhooks: { retryDelaysMs: [50, 50, 50], disableAfter: 4 } },
        dialect,
      );
    });
    after(() => app.dispose());

    test('loopback and private targets are refused unless WEBHOOK_ALLOW names them; events and scope are checked', async () => {
      const strict = await createTestApp({ SWEEP_INTERVAL: '0' }, {}, dialect);
      try {
        for (const url of [
          'http://127.0.0.1:9/hook',
          'http://10.0.0.8/hook',
          'http://169.254.169.254/latest',
          'http://[::1]/',
        ]) {
          const refused = await strict.gql(CREATE, { url, events: ['asset.ready'] });
          assert.equal(refused.status, 200);
          assert.equal(refused.errors?.[0].extensions.code, 'BAD_USER_INPUT', url);
          assert.match(refused.errors![0].message, /WEBHOOK_ALLOW/);
        }
        for (const url of ['ftp://example.com/', 'not a url']) {
          assert.equal(
            (await strict.gql(CREATE, { url, events: ['asset.ready'] })).errors?.[0].extensions.code,
            'BAD_USER_INPUT',
          );
        }
        assert.equal((await strict.gql(HOOK)).data.webhooks.length, 0, 'nothing was created');
      } finally {
        await strict.dispose();
      }
      const unknown = await app.gql(CREATE, { url: 'http://127.0.0.1:9/hook', events: ['asset.exploded'] });
      assert.equal(unknown.errors?.[0].extensions.code, 'BAD_USER_INPUT');
      const writer = await app.createKey('acme', ['read:assets', 'write:assets', 'delete:assets', 'admin:keys']);
      const forbidden = await app.gql(
        CREATE,
        { url: 'http://127.0.0.1:9/hook', events: ['asset.ready'] },
        {
          authorization: `Bearer ${writer}`,
        },
      );
      assert.equal(forbidden.errors?.[0].extensions.code, 'FORBIDDEN');
      assert.match(forbidden.errors![0].message, /admin:webhooks/);
      // Deliveries carry titles, filenames and checksums: a key that may not read them cannot aim them.
      const blind = await app.createKey('acme', ['admin:webhooks']);
      const refused = await app.gql(
        CREATE,
        { url: 'http://127.0.0.1:9/hook', events: ['asset.ready'] },
        { authorization: `Bearer ${blind}` },
      );
      assert.equal(refused.status, 200);
      assert.equal(refused.errors?.[0].extensions.code, 'FORBIDDEN');
      assert.match(refused.errors![0].message, /read:assets/);
    });

    test('deliveries are signed, carry the asset, and follow its lifecycle; another org hears nothing', async () => {
      const endpoint = await receiver();
      const created = await app.gql(CREATE, {
        url: endpoint.url,
        events: ['asset.created', 'asset.ready', 'asset.updated', 'asset.deleted'],
      });
      assert.equal(created.errors, undefined, JSON.stringify(created.errors));
      const { webhook, secret } = created.data.createWebhook;
      assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
      assert.deepEqual(webhook.events, ['asset.created', 'asset.ready', 'asset.updated', 'asset.deleted']);
      const other = await app.createKey('globex');
      const theirs = await receiver();
      await app.gql(CREATE, { url: theirs.url, events: ['asset.created'] }, { authorization: `Bearer ${other}` });
      try {
        const id = await upload(app, 'announced', 'news.txt');
        await app.gql('mutation($id: ID!) { updateAsset(input: { id: $id, title: "Renamed" }) { asset { id } } }', {
          id,
        });
        await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', { id });
        const got = await waitFor(
          async () => endpoint.received.map((r) => JSON.parse(r.body).type),
          (types) => types.length >= 4,
        );
        assert.deepEqual(got, ['asset.created', 'asset.ready', 'asset.updated', 'asset.deleted']);
        const ids = new Set<string>();
        for (const request of endpoint.received) {
          assert.ok(verify(secret, request), 'signed with the secret');
          assert.equal(request.headers['content-type'], 'application/json');
          assert.ok(Math.abs(Number(request.headers['webhook-timestamp']) - Date.now() / 1000) < 60);
          const body = JSON.parse(request.body);
          assert.equal(body.data.id, id);
          ids.add(request.headers['webhook-id'] as string);
        }
        assert.equal(ids.size, 4, 'each event its own webhook-id');
        const ready = JSON.parse(endpoint.received[1]!.body);
        assert.equal(ready.data.status, 'READY');
        assert.equal(ready.data.size, 'announced'.length);
        assert.equal(JSON.parse(endpoint.received[2]!.body).data.title, 'Renamed');
        // A tampered body fails the check: the signature covers it.
        assert.equal(
          verify(secret, { ...endpoint.received[0]!, body: endpoint.received[0]!.body.replace('news', 'fake') }),
          false,
        );
        assert.equal(theirs.received.length, 0, "another org's webhook hears nothing of acme");
        // The endpoint has answered; the gateway records the outcome just after.
        const deliveries = await waitFor(
          async () => (await app.gql(DELIVERIES, { id: webhook.id })).data.webhookDeliveries,
          (list: any[]) => list.every((d) => d.status !== 'PENDING'),
        );
        assert.equal(deliveries.length, 4);
        for (const d of deliveries) assert.deepEqual([d.status, d.attempts, d.responseStatus], ['DELIVERED', 1, 200]);
        const foreign = await app.gql(DELIVERIES, { id: webhook.id }, { authorization: `Bearer ${other}` });
        assert.equal(foreign.errors?.[0].extensions.code, 'NOT_FOUND');
      } finally {
        await endpoint.close();
        await theirs.close();
        await app.gql('mutation($id: ID!) { deleteWebhook(input: { id: $id }) { deletedId } }', { id: webhook.id });
      }
    });

    test('a delivery answered 500 is retried with the same webhook-id; repeated failure disables the webhook with the reason', async () => {
      const flaky = await receiver((n) => (n === 1 ? 500 : 200));
      const { webhook, secret } = (await app.gql(CREATE, { url: flaky.url, events: ['asset.ready'] })).data
        .createWebhook;
      try {
        await upload(app, 'retried');
        await waitFor(
          async () => flaky.received.length,
          (n) => n >= 2,
        );
        assert.equal(flaky.received.length, 2);
        assert.equal(flaky.received[0]!.headers['webhook-id'], flaky.received[1]!.headers['webhook-id']);
        assert.ok(verify(secret, flaky.received[1]!));
        const [delivery] = await waitFor(
          async () => (await app.gql(DELIVERIES, { id: webhook.id })).data.webhookDeliveries,
          (list: any[]) => list[0]?.status !== 'PENDING',
        );
        assert.deepEqual([delivery.status, delivery.attempts, delivery.responseStatus], ['DELIVERED', 2, 200]);
      } finally {
        await flaky.close();
        await app.gql('mutation($id: ID!) { deleteWebhook(input: { id: $id }) { deletedId } }', { id: webhook.id });
      }

      const down = await receiver(() => 503);
      const broken = (await app.gql(CREATE, { url: down.url, events: ['asset.ready'] })).data.createWebhook.webhook;
      try {
        await upload(app, 'never lands');
        const state = await waitFor(
          async () => (await app.gql(HOOK)).data.webhooks.find((w: any) => w.id === broken.id),
          (w) => w.disabledAt !== null,
        );
        assert.notEqual(state.disabledAt, null, 'disabled after 4 failures in a row');
        assert.match(state.disabledReason, /4 failed deliveries in a row.*HTTP 503/);
        assert.equal(down.received.length, 4, 'one first try and three retries');
        const [failed] = (await app.gql(DELIVERIES, { id: broken.id })).data.webhookDeliveries;
        assert.deepEqual([failed.status, failed.attempts, failed.responseStatus], ['FAILED', 4, 503]);
        // Disabled: new events are not sent to it.
        await upload(app, 'not sent');
        // A delivery is a row made with its event, in one transaction: none for this event, none sent.
        const deliveries = (await app.gql(DELIVERIES, { id: broken.id })).data.webhookDeliveries;
        assert.deepEqual(
          deliveries.map((d: any) => d.eventId),
          [failed.eventId],
        );
        assert.equal(down.received.length, 4);
        const enabled = await app.gql(
          'mutation($id: ID!) { enableWebhook(input: { id: $id }) { webhook { disabledAt failures } } }',
          {
            id: broken.id,
          },
        );
        assert.deepEqual(enabled.data.enableWebhook.webhook, { disabledAt: null, failures: 0 });
      } finally {
        await down.close();
        await app.gql('mutation($id: ID!) { deleteWebhook(input: { id: $id }) { deletedId } }', { id: broken.id });
      }
    });

    test("one org's endpoints that never answer hold their share of slots only: another org's delivery arrives meanwhile", async () => {
      // Four slots: an org gets two at most, a webhook one; the attempts' deadline is far off.
      const fair = await createTestApp(
        {
          SWEEP_INTERVAL: '0',
          WEBHOOK_ALLOW: '127.0.0.1/32',
          WEBHOOK_TIMEOUT: '60s',
          WEBHOOK_CONCURRENCY: '4',
          WEBHOOK_ENDPOINT_CONCURRENCY: '1',
        },
        {},
        dialect,
      );
      const stuck = await stuckEndpoint();
      const endpoint = await receiver();
      try {
        for (let i = 0; i < 3; i++) {
          const made = await fair.gql(CREATE, { url: `${stuck.url}/${i}`, events: ['asset.created'] });
          assert.equal(made.errors, undefined, JSON.stringify(made.errors));
        }
        for (let i = 0; i < 3; i++) await upload(fair, `stuck ${i}`); // nine deliveries to endpoints that hang
        assert.equal(
          await waitFor(
            async () => stuck.received(),
            (n) => n >= 2,
          ),
          2,
          'acme holds two slots',
        );
        const globex = await fair.createKey('globex');
        const hook = await fair.gql(
          CREATE,
          { url: endpoint.url, events: ['asset.created'] },
          { authorization: `Bearer ${globex}` },
        );
        assert.equal(hook.errors, undefined, JSON.stringify(hook.errors));
        await fair.services.assets.upload(
          { orgId: 'globex', mode: 'live' },
          { stream: Readable.from([Buffer.from('on time')]), filename: 'b.txt' },
        );
        await waitFor(
          async () => endpoint.received.length,
          (n) => n >= 1,
        );
        assert.equal(endpoint.received.length, 1, "globex's delivery arrived");
        assert.equal(JSON.parse(endpoint.received[0]!.body).type, 'asset.created');
        // …while acme's attempts were all still hanging, none answered nor cut, and none more started.
        assert.deepEqual([stuck.received(), stuck.open()], [2, 2]);
      } finally {
        await fair.dispose();
        await stuck.close();
        await endpoint.close();
      }
    });

    test('an attempt has one deadline for connect, send and answer: an endpoint that trickles its answer is cut and retried later', async () => {
      const short = await createTestApp(
        { SWEEP_INTERVAL: '0', WEBHOOK_ALLOW: '127.0.0.1/32', WEBHOOK_TIMEOUT: '1s' },
        {},
        dialect,
      );
      const trickle = await stuckEndpoint({ trickle: true });
      try {
        const { webhook } = (await short.gql(CREATE, { url: trickle.url, events: ['asset.created'] })).data
          .createWebhook;
        await upload(short, 'slowly answered');
        const [delivery] = await waitFor(
          async () => (await short.gql(DELIVERIES, { id: webhook.id })).data.webhookDeliveries,
          (list: any[]) => list[0]?.lastError != null,
        );
        assert.equal(delivery.status, 'PENDING', 'to be retried');
        assert.equal(delivery.attempts, 1);
        assert.match(delivery.lastError, /no complete answer within 1 s/);
        assert.equal(
          await waitFor(
            async () => trickle.open(),
            (n) => n === 0,
          ),
          0,
          "the endpoint's socket was closed",
        );
      } finally {
        await short.dispose();
        await trickle.close();
      }
    });

    test('assetEvents is a durable feed read forwards by cursor; only the org’s own', async () => {
      const before = (await app.gql(FEED, { first: 0 })).data.assetEvents;
      const id = await upload(app, 'in the feed', 'feed.txt');
      await app.gql('mutation($id: ID!) { updateAsset(input: { id: $id, title: "Fed" }) { asset { id } } }', { id });
      await app.gql('mutation($id: ID!) { deleteAsset(input: { id: $id }) { deletedId } }', { id });
      let all: any;
      // The assets of a whole page are read at once, not one query per event. Background work
      // (the job queue, webhook deliveries) may run a statement meanwhile: not the request's.
      const recorded = await app.recordQueries(async () => {
        all = (await app.gql(FEED, { first: 100 })).data.assetEvents;
      });
      const statements = recorded.filter((text) => !/\b(jobs|webhooks|webhook_deliveries)\b/.test(text));
      assert.ok(all.edges.length >= 8, String(all.edges.length));
      assert.ok(
        statements.length <= 6,
        `${statements.length} statements for ${all.edges.length} events:\n${statements.join('\n')}`,
      );
      assert.equal(all.totalCount, before.totalCount + 4);
      const mine = all.edges.filter((e: any) => e.node.assetId === id).map((e: any) => e.node.type);
      assert.deepEqual(mine, ['asset.created', 'asset.ready', 'asset.updated', 'asset.deleted']);
      assert.equal(all.edges.at(-1).node.asset, null, 'in the trash: no longer readable through the feed');
      // Read two at a time from where the last page ended: every event once, in order.
      const seen: string[] = [];
      let after: string | null = null;
      for (;;) {
        const page: any = (await app.gql(FEED, { first: 2, after })).data.assetEvents;
        seen.push(...page.edges.map((e: any) => e.node.id));
        after = page.pageInfo.endCursor;
        if (!page.pageInfo.hasNextPage) break;
      }
      assert.deepEqual(
        seen,
        all.edges.map((e: any) => e.node.id),
      );
      const empty = (await app.gql(FEED, { first: 2, after })).data.assetEvents;
      assert.deepEqual(
        [empty.edges.length, empty.pageInfo.endCursor],
        [0, after],
        'polling past the end keeps the cursor',
      );
      const other = await app.createKey('globex');
      const theirs = (await app.gql(FEED, { first: 100 }, { authorization: `Bearer ${other}` })).data.assetEvents;
      assert.ok(theirs.edges.every((e: any) => e.node.assetId !== id));
      const bad = await app.gql(FEED, { first: 2, after: 'bm9wZQ' });
      assert.equal(bad.errors?.[0].extensions.code, 'BAD_USER_INPUT');
    });
  });
});

describe('the feed keeps 30 days', () => {
  test('the sweep forgets events older than 30 days and finished deliveries older than 7', async () => {
    let now = Date.parse('2026-05-01T00:00:00Z');
    const endpoint = await receiver();
    const app = await createTestApp(
      { SWEEP_INTERVAL: '0', WEBHOOK_ALLOW: '127.0.0.1/32' },
      // No background worker: this test sends the deliveries itself.
      { clock: () => now, runJobs: false },
      'sqlite',
    );
    try {
      await app.gql(CREATE, { url: endpoint.url, events: ['asset.created'] });
      await upload(app, 'old news');
      await app.services.webhooks.deliverDue();
      assert.equal(endpoint.received.length, 1);
      const count = async () => (await app.gql(FEED, { first: 0 })).data.assetEvents.totalCount;
      const recorded = await count();
      assert.ok(recorded >= 1);
      now += 8 * 86_400_000;
      const week = await app.sweeper.sweep();
      assert.deepEqual([week.expiredEvents, week.finishedDeliveries], [0, 1]);
      assert.equal(await count(), recorded, 'the feed still has them');
      now += 23 * 86_400_000;
      const month = await app.sweeper.sweep();
      assert.equal(month.expiredEvents, recorded);
      assert.equal(await count(), 0);
    } finally {
      await app.dispose();
      await endpoint.close();
    }
  });
});

describe('the feed after a restart', () => {
  test('events recorded before a restart are read after it, from the same cursor', async () => {
    const { dir, remove } = tempDir();
    try {
      const first = await createTestApp({ DATA_DIR: dir, SWEEP_INTERVAL: '0' }, {}, 'sqlite');
      await upload(first, 'before the restart');
      const page = (await first.gql(FEED, { first: 1 })).data.assetEvents;
      const all = (await first.gql(FEED, { first: 100 })).data.assetEvents.edges.map((e: any) => e.node.id);
      await first.dispose();
      const second = await createTestApp({ DATA_DIR: dir, SWEEP_INTERVAL: '0' }, {}, 'sqlite');
      try {
        const rest = (await second.gql(FEED, { first: 100, after: page.pageInfo.endCursor })).data.assetEvents;
        assert.deepEqual(
          rest.edges.map((e: any) => e.node.id),
          all.slice(1),
        );
        assert.ok(all.length >= 2, 'created and ready');
      } finally {
        await second.dispose();
      }
    } finally {
      remove();
    }
  });
});
