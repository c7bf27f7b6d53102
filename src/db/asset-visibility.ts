import { type Expression, type ExpressionBuilder, type SqlBool, sql } from 'kysely';
import type { AssetRow, Database, Tenant } from './types.js';

/**
 * Where an asset is looked for: among the live ones (lists, `asset(id)`, downloads,
 * events, signed URLs) or in the trash (`assets(filter: { trashed: true })`).
 */
export type Shelf = 'live' | 'trash';

/** What is asked: which shelf, for whom (a tenant's own keys, or anyone: public assets). */
export interface Sight {
  shelf: Shelf;
  audience: Tenant | 'anyone';
  /**
   * Also an asset that handed out its last download URL (MAX_DOWNLOAD_URLS_PER_ASSET):
   * gone for the API, but a URL handed out before is a capability of its own and still
   * opens it. @default false
   */
  usedUp?: boolean;
}

/** The columns the rule reads: every row handed to GraphQL or a route carries them. */
export const VISIBILITY_COLUMNS = [
  'org_id',
  'mode',
  'is_public',
  'trashed_at',
  'exhausted_at',
] as const satisfies (keyof AssetRow)[];

/** A row as the rule sees it. */
export type Seen = Pick<AssetRow, (typeof VISIBILITY_COLUMNS)[number]>;

/** One condition of the rule, as data: the SQL and the TypeScript interpreter read the same list. */
type Condition =
  | { column: 'trashed_at' | 'exhausted_at'; isNull: boolean }
  | { column: 'is_public'; equals: number }
  | { column: 'org_id' | 'mode'; equals: string }
  | { never: true };

/**
 * The one access rule: an asset is visible to `sight` when every condition holds.
 * Used up: gone for the API, whoever asks. On its shelf: trashed or not. Public assets
 * are anyone's on the live shelf; the trash is its own tenant's only.
 */
function conditionsOf({ shelf, audience, usedUp = false }: Sight): Condition[] {
  const conditions: Condition[] = [{ column: 'trashed_at', isNull: shelf === 'live' }];
  if (!usedUp) conditions.push({ column: 'exhausted_at', isNull: true });
  if (audience !== 'anyone') {
    conditions.push({ column: 'org_id', equals: audience.orgId }, { column: 'mode', equals: audience.mode });
  } else if (shelf === 'live') conditions.push({ column: 'is_public', equals: 1 });
  else conditions.push({ never: true });
  return conditions;
}

/** The rule in SQL, for a query over `assets`. */
export function visibleSql(eb: ExpressionBuilder<Database, 'assets'>, sight: Sight): Expression<SqlBool> {
  return eb.and(
    conditionsOf(sight).map((condition) => {
      if ('never' in condition) return sql<SqlBool>`1 = 0`;
      const column = eb.ref(`assets.${condition.column}`);
      if ('isNull' in condition) return eb(column, condition.isNull ? 'is' : 'is not', null);
      return eb(column, '=', condition.equals);
    }),
  );
}

/** The rule in TypeScript, for a row at hand. */
export function isVisible(row: Seen, sight: Sight): boolean {
  return conditionsOf(sight).every((condition) => {
    if ('never' in condition) return false;
    if ('isNull' in condition) return (row[condition.column] === null) === condition.isNull;
    return row[condition.column] === condition.equals;
  });
}
