import { BadUserInputError, NotFoundError } from './errors.js';

/**
 * Global IDs, the ids every client sees: `base64url("Type:uuid")`. One codec for the
 * GraphQL schema, the plain routes and the CLI. A malformed one is BAD_USER_INPUT.
 */
export function encodeGlobalId(typename: string, id: string | number | bigint): string {
  return Buffer.from(`${typename}:${id}`).toString('base64url');
}

export function decodeGlobalId(globalId: string): { typename: string; id: string } {
  const text = /^[A-Za-z0-9_-]+={0,2}$/.test(globalId) ? Buffer.from(globalId, 'base64url').toString('utf8') : '';
  const match = /^([A-Z][A-Za-z]{0,40}):([0-9a-f-]{36})$/.exec(text);
  if (!match) throw new BadUserInputError('id', `"${globalId.slice(0, 100)}" is not a valid ID.`);
  return { typename: match[1], id: match[2] };
}

/**
 * The internal id behind a decoded global ID of the expected type. An ID of another
 * type names nothing of this kind: NOT_FOUND, like a missing one.
 */
export function idOfType(globalId: { typename: string; id: string }, typename: string): string {
  if (globalId.typename !== typename) throw new NotFoundError(typename);
  return globalId.id;
}
