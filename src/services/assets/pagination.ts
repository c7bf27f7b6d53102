import type { AssetRepository } from '../../db/asset-repository.js';
import type { AssetQueryFilter, Direction, PageRequest, PageRow, SortColumn } from '../../db/asset-queries.js';
import type { Tenant } from '../../db/types.js';
import { BadUserInputError } from '../../errors.js';

/** Largest `first`/`last`. */
export const MAX_PAGE_SIZE = 100;
const DEFAULT_PAGE_SIZE = 20;

export interface ConnectionArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export interface AssetPage {
  rows: PageRow[];
  /** The cursor of a row of the page; made when asked for, as most lists never read them. */
  cursorOf: (row: PageRow) => string;
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  totalCount: () => Promise<number>;
}

/** Opaque cursor: the sort column, direction, the row's sort value and id. */
function encodeCursor(column: SortColumn, direction: Direction, row: PageRow): string {
  return Buffer.from(JSON.stringify([column, direction, row[column], row.id])).toString('base64url');
}

function decodeCursor(cursor: string, order: { column: SortColumn; direction: Direction }, field: string) {
  const { column, direction } = order;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BadUserInputError(field, 'Invalid cursor.');
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 4 ||
    parsed[0] !== column ||
    parsed[1] !== direction ||
    (typeof parsed[2] !== 'string' && typeof parsed[2] !== 'number') ||
    typeof parsed[3] !== 'string'
  ) {
    throw new BadUserInputError(field, 'Invalid cursor, or a cursor from a differently ordered list.');
  }
  return { value: parsed[2] as string | number, id: parsed[3] as string };
}

function pageSize(value: number | null | undefined, field: string): number | undefined {
  if (value == null) return undefined;
  if (!Number.isInteger(value) || value < 0 || value > MAX_PAGE_SIZE) {
    throw new BadUserInputError(field, `${field} must be between 0 and ${MAX_PAGE_SIZE}.`);
  }
  return value;
}

/** What `assets(…)` asks for: the connection arguments, the decoded filter and order, the columns to read. */
export interface AssetPageQuery {
  args: ConnectionArgs;
  filter: AssetQueryFilter;
  order: { column: SortColumn; direction: Direction };
  read?: Pick<PageRequest, 'columns' | 'withTags'>;
}

/**
 * Resolves Relay connection arguments to one keyset page: a seek on the sort
 * index, never an OFFSET, so a page deep in the list costs what the first does.
 * Ties in the sort column are broken by id.
 */
export async function pageAssets(
  repository: AssetRepository,
  tenant: Tenant,
  { args, filter, order, read = {} }: AssetPageQuery,
): Promise<AssetPage> {
  const first = pageSize(args.first, 'first');
  const last = pageSize(args.last, 'last');
  if (first !== undefined && last !== undefined) {
    throw new BadUserInputError('last', 'Pass either first or last, not both.');
  }
  const backward = last !== undefined || (first === undefined && args.before != null && args.after == null);
  const limit = (backward ? last : first) ?? DEFAULT_PAGE_SIZE;
  const cursorArg = backward ? args.before : args.after;
  const cursor = cursorArg ? decodeCursor(cursorArg, order, backward ? 'before' : 'after') : undefined;

  const { rows, hasMore } =
    limit === 0
      ? { rows: [], hasMore: false }
      : await repository.page(tenant, { filter, ...order, limit, cursor, backward, ...read });
  let total: Promise<number> | undefined;
  return {
    rows,
    cursorOf: (row) => encodeCursor(order.column, order.direction, row),
    hasNextPage: backward ? args.before != null : hasMore,
    hasPreviousPage: backward ? hasMore : args.after != null,
    totalCount: () => (total ??= repository.count(tenant, filter)),
  };
}
