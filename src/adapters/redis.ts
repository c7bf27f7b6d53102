import { Redis } from 'ioredis';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { SharedStateUnavailableError } from '../errors.js';

/** The connections a gateway keeps to the Redis it shares with the others. */
export interface SharedRedis {
  /** Commands: rate-limit buckets, upload slots, publishing events. */
  commands: Redis;
  /** Yoga's event target over Redis pub/sub, for `assetUpdated`. */
  eventTarget: ReturnType<typeof createRedisEventTarget>;
  /** Resolves once both connections are up, or after `timeoutMs` (they keep trying). */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Connects to `url`. Commands never queue while Redis is away: they fail at once
 * (`SharedStateUnavailableError` where they are awaited by a request), so no request
 * hangs on it; the client reconnects by itself. Losing and regaining the connection
 * is logged once each, without the URL (it may carry a password).
 */
export function createSharedRedis(url: string, log: (message: unknown) => void): SharedRedis {
  const options = { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 };
  const commands = new Redis(url, options);
  const subscriber = new Redis(url, { ...options, enableOfflineQueue: true });
  for (const [name, client] of [
    ['commands', commands],
    ['events', subscriber],
  ] as const) {
    let down = false;
    client.on('error', (error: Error) => {
      if (down) return;
      down = true;
      log(new Error(`Redis (${name}) is unavailable: ${error.message}`));
    });
    client.on('ready', () => {
      if (down) log(`Redis (${name}) is reachable again`);
      down = false;
    });
  }
  const up = (client: Redis) =>
    client.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => client.once('ready', resolve));
  // The event target fires publish/subscribe and forgets their promises: with Redis away they
  // would reject unhandled and end the process. Here a failed one is logged; an event is lost.
  const report = (what: string) => (error: Error) => log(new Error(`Redis (events) ${what} failed: ${error.message}`));
  const publishClient = {
    publish: (channel: string, message: string) => commands.publish(channel, message).catch(report('publish')),
  };
  const subscribeClient = {
    on: (event: string, listener: (...args: any[]) => void) => subscriber.on(event, listener),
    subscribe: (channel: string) => subscriber.subscribe(channel).catch(report('subscribe')),
    unsubscribe: (channel: string) => subscriber.unsubscribe(channel).catch(report('unsubscribe')),
  };
  type Clients = Parameters<typeof createRedisEventTarget>[0];
  return {
    commands,
    eventTarget: createRedisEventTarget({
      publishClient: publishClient as unknown as Clients['publishClient'],
      subscribeClient: subscribeClient as unknown as Clients['subscribeClient'],
    }),
    async ready(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
      const result = await Promise.race([Promise.all([up(commands), up(subscriber)]).then(() => true), timeout]);
      clearTimeout(timer);
      return result;
    },
    async close() {
      commands.disconnect();
      subscriber.disconnect();
    },
  };
}

/** Runs a Redis call for a request: a failure of Redis itself becomes a clear, typed error. */
export async function shared<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new SharedStateUnavailableError({ cause: error });
  }
}
