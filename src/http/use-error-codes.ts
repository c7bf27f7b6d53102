import { GraphQLError } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { AppError, ERROR_CODES, type ErrorCode } from '../errors.js';

/** Statuses the contract ties to codes; every other failure is a 200 with `errors`. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  UNAUTHENTICATED: 401,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
};

/** The GraphQL error a domain error becomes: its message, its code and its extensions. */
export function toGraphQLError(error: AppError, base?: GraphQLError): GraphQLError {
  const status = STATUS[error.code];
  const extensions: Record<string, unknown> = { code: error.code, ...error.extensions };
  const headers = error.code === 'RATE_LIMITED' ? { 'retry-after': String(extensions.retryAfter) } : undefined;
  if (status) extensions.http = { status, ...(headers && { headers }) };
  return createGraphQLError(error.message, {
    nodes: base?.nodes,
    source: base?.source,
    positions: base?.positions,
    path: base?.path,
    originalError: error,
    extensions,
  });
}

/** Codes that Yoga and graphql-js use for a request the client got wrong. */
const CLIENT_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'OPERATION_RESOLUTION_FAILURE',
]);

function fieldOf(message: string): string {
  return /"\$?([A-Za-z_][\w.]*)"/.exec(message)?.[1] ?? 'query';
}

/** Brings any error into the contract's set of codes (`extensions.code`). */
function normalize(error: GraphQLError): GraphQLError {
  const code = error.extensions?.code;
  if (typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code)) return error;
  if (code === 'REQUEST_ENTITY_TOO_LARGE') {
    return new GraphQLError(error.message, { extensions: { code: 'PAYLOAD_TOO_LARGE', http: { status: 413 } } });
  }
  const http = error.extensions?.http as { status?: number } | undefined;
  const clientFault =
    (typeof code === 'string' && CLIENT_CODES.has(code)) ||
    (code === undefined && !error.originalError) ||
    (http?.status !== undefined && http.status >= 400 && http.status < 500);
  if (clientFault) {
    return new GraphQLError(error.message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      path: error.path,
      extensions: { ...error.extensions, code: 'BAD_USER_INPUT', field: fieldOf(error.message) },
    });
  }
  return new GraphQLError('Unexpected error.', { path: error.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
}

/**
 * `maskedErrors.maskError` for Yoga: domain errors keep their message and code,
 * graphql-js's own errors (validation, coercion) pass, anything else is logged and
 * masked as INTERNAL_SERVER_ERROR.
 */
export function createMaskError(log: (error: unknown) => void) {
  return (error: unknown, message: string): Error => {
    const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    if (original instanceof AppError)
      return toGraphQLError(original, error instanceof GraphQLError ? error : undefined);
    if (original instanceof GraphQLError) return original;
    log(error);
    return createGraphQLError(message, {
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
  };
}

/** Rewrites every error of every result so `extensions.code` is one of the contract's codes. */
export function useErrorCodes(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      const fix = (r: { errors?: readonly GraphQLError[] }) =>
        r.errors
          ? {
              ...r,
              errors: r.errors.map((e) => normalize(e instanceof GraphQLError ? e : new GraphQLError(String(e)))),
            }
          : r;
      if (Array.isArray(result)) setResult(result.map(fix) as typeof result);
      else if (result && typeof result === 'object' && 'errors' in result)
        setResult(fix(result as never) as typeof result);
    },
  };
}
