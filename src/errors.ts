/**
 * Domain errors. Every failure the product reports carries one of these stable
 * codes. The table below gives each code its HTTP status; `src/http/use-error-codes.ts`
 * turns domain errors into GraphQL errors, and `src/http/respond.ts` into plain
 * answers, both by that table. Adapters turn their libraries' errors into these.
 */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'RATE_LIMITED'
  | 'INSUFFICIENT_STORAGE'
  | 'CONFLICT'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

/** The codes a client may see, in the contract's order. */
export const ERROR_CODES: readonly ErrorCode[] = [
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'RATE_LIMITED',
  'INSUFFICIENT_STORAGE',
  'CONFLICT',
  'SERVICE_UNAVAILABLE',
  'INTERNAL_SERVER_ERROR',
];

/**
 * The one table from code to HTTP status. `inResults`: the status also applies to a
 * GraphQL response whose error came from a field (the contract ties 401, 413 and 429
 * to the response; 503, a server too busy to answer, is the same kind: try again later);
 * other field errors travel in a 200 beside the data. An error
 * that fails a request before it runs (parsing, authentication, the multipart body)
 * always answers with its status.
 */
const STATUS: Record<ErrorCode, { status: number; inResults?: true }> = {
  UNAUTHENTICATED: { status: 401, inResults: true },
  FORBIDDEN: { status: 403 },
  NOT_FOUND: { status: 404 },
  BAD_USER_INPUT: { status: 400 },
  PAYLOAD_TOO_LARGE: { status: 413, inResults: true },
  UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  RATE_LIMITED: { status: 429, inResults: true },
  INSUFFICIENT_STORAGE: { status: 507 },
  CONFLICT: { status: 409 },
  SERVICE_UNAVAILABLE: { status: 503, inResults: true },
  INTERNAL_SERVER_ERROR: { status: 500 },
};

/** The HTTP status of a code: what a plain route answers, and a request that fails as a whole. */
export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code].status;
}

/** Whether a field error with this code sets the status of the GraphQL response it is part of. */
export function setsResultStatus(code: ErrorCode): boolean {
  return STATUS[code].inResults === true;
}

/** Base class: a failure the client caused or may act on; its message is safe to show. */
export abstract class AppError extends Error {
  abstract readonly code: ErrorCode;
  /** Extra `extensions` entries for the GraphQL error. */
  get extensions(): Record<string, unknown> {
    return {};
  }
}

export class UnauthenticatedError extends AppError {
  readonly code = 'UNAUTHENTICATED';
  /** One message for a missing, malformed, unknown, expired or revoked key: nothing to learn from it. */
  constructor(message = 'A valid API key is required (missing, invalid, expired or revoked key).') {
    super(message);
  }
}

export class ForbiddenError extends AppError {
  readonly code = 'FORBIDDEN';
}

export class NotFoundError extends AppError {
  readonly code = 'NOT_FOUND';
  constructor(what = 'Asset', message = `${what} not found.`) {
    super(message);
  }
}

/** A failure of the server's own, answered without detail (the cause is logged, never shown). */
export class UnexpectedError extends AppError {
  readonly code = 'INTERNAL_SERVER_ERROR';
  constructor(options?: ErrorOptions) {
    super('Unexpected error.', options);
  }
}

export class BadUserInputError extends AppError {
  readonly code = 'BAD_USER_INPUT';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
  override get extensions() {
    return { field: this.field };
  }
}

export class PayloadTooLargeError extends AppError {
  readonly code = 'PAYLOAD_TOO_LARGE';
  constructor(
    readonly limit: number,
    what = 'The file',
  ) {
    super(`${what} exceeds the limit of ${limit} bytes.`);
  }
  override get extensions() {
    return { limit: this.limit };
  }
}

export class UnsupportedMediaTypeError extends AppError {
  readonly code = 'UNSUPPORTED_MEDIA_TYPE';
}

export class RateLimitedError extends AppError {
  readonly code = 'RATE_LIMITED';
  constructor(
    readonly retryAfter: number,
    message = 'Rate limit exceeded.',
  ) {
    super(message);
  }
  override get extensions() {
    return { retryAfter: this.retryAfter };
  }
}

/**
 * The server is busy with work of this kind (renditions being made, every database connection
 * in use): try again in `retryAfter` seconds.
 */
export class ServiceUnavailableError extends AppError {
  readonly code = 'SERVICE_UNAVAILABLE';
  constructor(
    readonly retryAfter: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
  override get extensions() {
    return { retryAfter: this.retryAfter };
  }
}

export class InsufficientStorageError extends AppError {
  readonly code = 'INSUFFICIENT_STORAGE';
}

export class ConflictError extends AppError {
  readonly code = 'CONFLICT';
}

/**
 * A service the gateway shares with others (Redis) cannot be reached: the request
 * fails at once with a message that says so, instead of waiting for it to return.
 */
export class SharedStateUnavailableError extends AppError {
  readonly code = 'INTERNAL_SERVER_ERROR';
  constructor(options?: ErrorOptions) {
    super('Shared state (Redis) is unavailable; try again shortly.', options);
  }
}

/** Startup configuration that cannot be used; the message names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${variable}: ${message}`, options);
  }
}
