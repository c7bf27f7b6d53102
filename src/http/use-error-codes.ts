import { getOperationAST, getVariableValues, GraphQLError, Kind } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { AppError, ERROR_CODES, type ErrorCode, httpStatusOf, setsResultStatus } from '../errors.js';

/**
 * The GraphQL error a domain error becomes: its message, its code and its extensions,
 * and the HTTP status from the table in `errors.ts`: always when it fails the whole
 * request (`wholeRequest`, thrown before execution), else only for the codes whose
 * status the contract ties to any response.
 */
export function toGraphQLError(error: AppError, options: { base?: GraphQLError; wholeRequest?: boolean } = {}) {
  const { base, wholeRequest = false } = options;
  const extensions: Record<string, unknown> = { code: error.code, ...error.extensions };
  const headers =
    typeof extensions.retryAfter === 'number' ? { 'retry-after': String(extensions.retryAfter) } : undefined;
  if (wholeRequest || setsResultStatus(error.code)) {
    extensions.http = { status: httpStatusOf(error.code), ...(headers && { headers }) };
  }
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

/**
 * What a client's GraphQL mistake is about, read from the document node graphql-js
 * blames (never from its message): the variable, field, argument or type it names;
 * `query` when it names none (a syntax error, a bad literal).
 */
function fieldOf(error: GraphQLError): string {
  const node = error.nodes?.[0];
  if (!node) return 'query';
  if (node.kind === Kind.VARIABLE_DEFINITION || node.kind === Kind.VARIABLE) {
    const variable = node.kind === Kind.VARIABLE ? node : node.variable;
    return variable.name.value;
  }
  return 'name' in node && node.name ? node.name.value : 'query';
}

/** A request the client got wrong, as BAD_USER_INPUT naming what it is about. */
function clientMistake(error: GraphQLError): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions: { ...error.extensions, code: 'BAD_USER_INPUT', field: fieldOf(error) },
  });
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
  if (clientFault) return clientMistake(error);
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
    // Converted already (a request refused before execution, with its status): keep it whole.
    if (original instanceof AppError && error instanceof GraphQLError && error.extensions?.code === original.code)
      return error;
    if (original instanceof AppError)
      return toGraphQLError(original, { base: error instanceof GraphQLError ? error : undefined });
    if (original instanceof GraphQLError) return original;
    log(error);
    return createGraphQLError(message, {
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
  };
}

/**
 * The error with an HTTP status that holds under every Accept header: its own, or its
 * code's. (Yoga marks its parse and validation errors `spec`, which it answers 200
 * under `application/json`.)
 */
function withStatus(error: GraphQLError): GraphQLError {
  const { spec, ...http } = (error.extensions?.http ?? {}) as { status?: number; spec?: boolean };
  if (http.status && !spec) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: {
      ...error.extensions,
      http: { ...http, status: http.status ?? httpStatusOf(error.extensions.code as ErrorCode) },
    },
  });
}

/**
 * Rewrites every error of every result so `extensions.code` is one of the contract's
 * codes. A result without `data` is a request refused before it ran (it did not
 * parse or validate, its variables did not fit): it answers with its error's status,
 * whatever the Accept header, so a client's mistake is never a 200 or a 5xx.
 */
export function useErrorCodes(): Plugin {
  return {
    // The compiled executor (graphql-jit) reports bad variables without blaming their
    // definition; graphql-js does, so its coercion runs first and a mistake stops there.
    onExecute({ args, setResultAndStopExecution }) {
      const definitions = getOperationAST(args.document, args.operationName)?.variableDefinitions;
      if (!definitions?.length) return;
      const coerced = getVariableValues(args.schema, definitions, args.variableValues ?? {});
      if (coerced.errors) setResultAndStopExecution({ errors: coerced.errors.map(clientMistake) });
    },
    onResultProcess({ result, setResult }) {
      const fix = (r: { data?: unknown; errors?: readonly GraphQLError[] }) => {
        if (!r.errors) return r;
        const refused = r.data === undefined;
        const errors = r.errors.map((e) => normalize(e instanceof GraphQLError ? e : new GraphQLError(String(e))));
        return { ...r, errors: refused ? errors.map(withStatus) : errors };
      };
      if (Array.isArray(result)) setResult(result.map(fix) as typeof result);
      else if (result && typeof result === 'object' && 'errors' in result)
        setResult(fix(result as never) as typeof result);
    },
  };
}
