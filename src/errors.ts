/**
 * Domain errors. Every failure the product reports carries one of these stable
 * codes; `src/http/use-error-codes.ts` turns them into GraphQL errors in one place
 * and the HTTP routes map them to statuses with `httpStatusOf`.
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
  'INTERNAL_SERVER_ERROR',
];

const HTTP_STATUS: Record<ErrorCode, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  BAD_USER_INPUT: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INSUFFICIENT_STORAGE: 507,
  CONFLICT: 409,
  INTERNAL_SERVER_ERROR: 500,
};

/** The HTTP status a plain (non-GraphQL) route answers for a code. */
export function httpStatusOf(code: ErrorCode): number {
  return HTTP_STATUS[code];
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
  constructor(what = 'Asset') {
    super(`${what} not found.`);
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

export class InsufficientStorageError extends AppError {
  readonly code = 'INSUFFICIENT_STORAGE';
}

export class ConflictError extends AppError {
  readonly code = 'CONFLICT';
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
