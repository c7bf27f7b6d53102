import type { Plugin } from 'graphql-yoga';
import type { ExactRoute, Route } from '../http/router.js';

/** A Yoga plugin, whatever context it reads (its own part of `Context`, or none). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type GraphQLPlugin = Plugin<any>;

/**
 * What one feature adds to the gateway and how it stops, as Yoga composes `useX`
 * plugins: `createApp` gathers the routes, pages and plugins of every feature, starts
 * them in order, and closes them in the reverse order.
 */
export interface Feature {
  /** Plain HTTP routes by path prefix (`/download/`). */
  routes?: Record<string, Route>;
  /** Routes of one exact path (`/healthz`). */
  pages?: Record<string, ExactRoute>;
  /** GraphQL plugins, in the order they run. */
  plugins?: GraphQLPlugin[];
  /** Starts background work, once everything is built. */
  start?(): void;
  /** Stops what the feature runs and releases what it holds. */
  close(options?: CloseOptions): Promise<void>;
}

/** How a gateway closes. */
export interface CloseOptions {
  /** Running jobs and webhook attempts get this long to finish, then their leases go back to the queue. */
  jobDeadlineMs?: number;
  /** Settles once the requests under way are done: the stores close only after it. */
  requestsDone?: Promise<void>;
  /**
   * Until when (epoch ms) the stores wait for the handlers of requests cut short to finish
   * (a cut upload puts its asset back first); without it they do not wait for handlers.
   */
  settleBy?: number;
}

/** Waits for `done`, but not past `deadline` (epoch ms); without a deadline, not at all. */
export async function settledBy(done: Promise<void>, deadline: number | undefined): Promise<void> {
  if (deadline === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))));
  await Promise.race([done, late]);
  clearTimeout(timer);
}

/** Closes `features` in the reverse order of their creation: what uses a thing stops before it. */
export async function closeAll(features: readonly Feature[], options: CloseOptions): Promise<void> {
  for (const feature of [...features].reverse()) await feature.close(options);
}
