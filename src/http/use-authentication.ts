import type { Plugin } from 'graphql-yoga';
import { presentedKey } from '../auth/api-key-service.js';
import type { Principal } from '../auth/principal.js';
import { AppError } from '../errors.js';
import { toGraphQLError } from './use-error-codes.js';

/**
 * Authenticates every GraphQL request before its body is parsed, so a bad key is
 * refused (401) before a large upload is read. The principal (or null for a
 * request without a key) is kept for the context factory: `principalOf(request)`.
 */
export function useAuthentication(authenticate: (key: string) => Promise<Principal>) {
  const principals = new WeakMap<Request, Principal | null>();
  const plugin: Plugin = {
    async onRequestParse({ request }) {
      const key = presentedKey((name) => request.headers.get(name));
      try {
        principals.set(request, key === null ? null : await authenticate(key));
      } catch (error) {
        throw error instanceof AppError ? toGraphQLError(error, { wholeRequest: true }) : error;
      }
    },
  };
  return { plugin, principalOf: (request: Request) => principals.get(request) ?? null };
}

/** The authentication plugin and how the context finds each request's principal. */
export type Authentication = ReturnType<typeof useAuthentication>;
