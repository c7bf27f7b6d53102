import { type DocumentNode, getOperationAST, Kind, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { AppError, RateLimitedError } from '../errors.js';
import type { Context } from '../schema/context.js';
import type { RateLimiter } from '../adapters/rate-limiter.js';
import { toGraphQLError } from './use-error-codes.js';

/** Root fields an operation runs, aliases and fragment spreads included: what the limit counts. */
export function operationCost(document: DocumentNode, operationName?: string | null): number {
  const operation = getOperationAST(document, operationName);
  if (!operation) return 1;
  const fragments = new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])),
  );
  const count = (set: SelectionSetNode, seen: Set<string>): number =>
    set.selections.reduce((sum, selection) => {
      if (selection.kind === Kind.FIELD) return sum + (selection.name.value === '__typename' ? 0 : 1);
      if (selection.kind === Kind.INLINE_FRAGMENT) return sum + count(selection.selectionSet, seen);
      const fragment = fragments.get(selection.name.value);
      if (!fragment || seen.has(fragment.name.value)) return sum;
      return sum + count(fragment.selectionSet, new Set([...seen, fragment.name.value]));
    }, 0);
  return Math.max(1, count(operation.selectionSet, new Set()));
}

/**
 * Token-bucket rate limit per API key (per client address without a key), counting
 * GraphQL operations: every root field, every alias. Over the limit: HTTP 429,
 * RATE_LIMITED, Retry-After and `extensions.retryAfter`.
 */
export function useRateLimit(limiter: RateLimiter): Plugin<Context> {
  const check = async (args: { document: DocumentNode; operationName?: string | null; contextValue: Context }) => {
    const ctx = args.contextValue;
    const who = ctx.principal ? `key:${ctx.principal.keyId}` : `ip:${ctx.clientAddress}`;
    let verdict;
    try {
      verdict = await limiter.take(who, operationCost(args.document, args.operationName));
    } catch (error) {
      if (error instanceof AppError) return toGraphQLError(error, { wholeRequest: true });
      throw error;
    }
    if (!verdict.ok) return toGraphQLError(new RateLimitedError(verdict.retryAfter));
    return null;
  };
  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const error = await check(args as never);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
    async onSubscribe({ args, setResultAndStopExecution }) {
      const error = await check(args as never);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}
