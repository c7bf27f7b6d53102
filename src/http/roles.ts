import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Role } from '../config.js';
import type { ExactRoute, Route } from './router.js';

/** The only pages a worker serves: probes and metrics, nothing a client of the API uses. */
export const WORKER_PAGES: readonly string[] = ['/healthz', '/readyz', '/metrics'];

/** What the router answers: GraphQL (absent: `/graphql` is 404), exact pages, prefixed routes. */
export interface Surface {
  graphql?: (req: IncomingMessage, res: ServerResponse) => unknown;
  exact: Record<string, ExactRoute>;
  routes: Record<string, Route>;
}

/**
 * The part of the HTTP surface a process of `role` serves. A worker keeps only
 * `WORKER_PAGES`: no GraphQL, no uploads or downloads, so a balancer that sends it a
 * client's request by mistake gets 404, not a half-served API. `all` and `api` serve everything.
 */
export function surfaceOf(role: Role, surface: Surface): Surface {
  if (role !== 'worker') return surface;
  const exact = Object.fromEntries(Object.entries(surface.exact).filter(([path]) => WORKER_PAGES.includes(path)));
  return { exact, routes: {} };
}
