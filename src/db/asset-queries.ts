/**
 * Reading assets in number: the filters of `assets(filter:)`, full-text search (FTS5 on
 * SQLite, a weighted tsvector on PostgreSQL), keyset pages, counts and usage. The
 * repository's writes and single-row reads live in `asset-repository.ts`.
 */
import {
  type CompiledQuery,
  type Expression,
  type ExpressionBuilder,
  type SelectQueryBuilder,
  type SqlBool,
  sql,
} from 'kysely';
import { type Seen, VISIBILITY_COLUMNS, visibleSql } from './asset-visibility.js';
import { type Db, isPostgres } from './database.js';
import type { AssetRow, Database, Tenant } from './types.js';

/**
 * What a page may be ordered by: a column with an index ending in `id`, or `relevance`
 * (how well a row matches the search: only with one).
 */
export type SortColumn = 'created_at' | 'updated_at' | 'title' | 'size' | 'relevance';
type IndexedColumn = Exclude<SortColumn, 'relevance'>;
export type Direction = 'asc' | 'desc';

/** Filters of `assets(filter:)`, already decoded to internal ids. */
export interface AssetQueryFilter {
  ids?: readonly string[];
  types?: readonly string[];
  statuses?: readonly string[];
  search?: string;
  tags?: readonly string[];
  directoryId?: string;
  isPublic?: boolean;
  createdAfter?: string;
  createdBefore?: string;
  /** `sha256:<hex>`: the assets holding exactly these bytes. */
  checksum?: string;
  /** The trash instead of the live assets. */
  trashed?: boolean;
}

/** One keyset page request: rows strictly after `cursor` in the walking direction. */
export interface PageRequest {
  filter: AssetQueryFilter;
  column: SortColumn;
  direction: Direction;
  limit: number;
  cursor?: { value: string | number; id: string };
  /** Walk towards the start (`last`/`before`): rows come back in display order all the same. */
  backward: boolean;
  /**
   * Only these columns (and `id`, the sort column, which cursors need, and the columns
   * the access rule reads); every one when absent.
   */
  columns?: readonly (keyof AssetRow)[];
  /** Also each row's tags, sorted, as `tags`: read by the page query itself, not a second one. */
  withTags?: boolean;
}

/**
 * A row of a page as it is: its id and the columns the access rule reads always, any
 * other column only when the request asked for it (`PageRequest.columns`); its tags,
 * sorted, when asked (`withTags`); its relevance when ordered by it.
 */
export type PageRow = Pick<AssetRow, 'id'> & Seen & Partial<AssetRow> & { tags?: string[]; relevance?: number };

export type AssetBuilder = ExpressionBuilder<Database, 'assets'>;

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** The rows of `tenant`'s assets that pass `filter`, as SQL for the dialect (`postgres` or SQLite). */
export function filterExpression(
  eb: AssetBuilder,
  { tenant, filter, postgres }: { tenant: Tenant; filter: AssetQueryFilter; postgres: boolean },
): Expression<SqlBool> {
  const conditions: Expression<SqlBool>[] = [
    visibleSql(eb, { shelf: filter.trashed ? 'trash' : 'live', audience: tenant }),
  ];
  if (filter.ids) conditions.push(filter.ids.length ? eb('assets.id', 'in', filter.ids) : sql<boolean>`1 = 0`);
  if (filter.types) conditions.push(filter.types.length ? eb('assets.type', 'in', filter.types) : sql<boolean>`1 = 0`);
  if (filter.statuses) {
    conditions.push(filter.statuses.length ? eb('assets.status', 'in', filter.statuses) : sql<boolean>`1 = 0`);
  }
  const words = filter.search ? searchWords(filter.search) : [];
  if (words.length > 0) {
    // Every word, as a prefix, in the title, tags, filename, description or extracted text: the
    // engine's full-text index (FTS5 on SQLite, a GIN-indexed tsvector on PostgreSQL) finds them.
    conditions.push(
      postgres
        ? sql<boolean>`assets.id in (select asset_id from asset_search where vector @@ to_tsquery('simple', ${words.map((w) => `${w}:*`).join(' & ')}))`
        : sql<boolean>`assets.rowid in (select rowid from assets_fts where assets_fts match ${words.map((w) => `"${w}"*`).join(' ')})`,
    );
  } else if (filter.search) {
    // No word at all (only punctuation): the characters themselves, anywhere, literally.
    const pattern = `%${escapeLike(filter.search.toLowerCase())}%`;
    // An ASCII term can only match ASCII letters, which the engine's own lower() folds; other
    // terms fold every script (SQLite's built-in lower() would not, and costs a third as much).
    const lower = /^[\x00-\x7f]*$/.test(filter.search) || postgres ? sql`lower` : sql`unicode_lower`;
    conditions.push(
      eb.or(
        (['title', 'description', 'filename'] as const).map(
          (column) => sql<boolean>`${lower}(${eb.ref(`assets.${column}`)}) like ${pattern} escape '\\'`,
        ),
      ),
    );
  }
  for (const tag of filter.tags ?? []) {
    conditions.push(
      eb.exists(
        eb
          .selectFrom('asset_tags')
          .select('asset_tags.asset_id')
          .whereRef('asset_tags.asset_id', '=', 'assets.id')
          .where('asset_tags.tag', '=', tag),
      ),
    );
  }
  if (filter.directoryId !== undefined) conditions.push(eb('assets.directory_id', '=', filter.directoryId));
  if (filter.isPublic !== undefined) conditions.push(eb('assets.is_public', '=', filter.isPublic ? 1 : 0));
  if (filter.createdAfter) conditions.push(eb('assets.created_at', '>', filter.createdAfter));
  if (filter.createdBefore) conditions.push(eb('assets.created_at', '<', filter.createdBefore));
  if (filter.checksum !== undefined) conditions.push(eb('assets.checksum', '=', filter.checksum));
  return eb.and(conditions);
}

/** Sets what search finds in the bytes of asset `id` (while it holds `blobKey`, when given). */
export async function writeSearchText(
  db: Db,
  postgres: boolean,
  { id, blobKey, text }: { id: string; blobKey: string | null; text: string | null },
): Promise<void> {
  const holds = blobKey === null ? sql`id = ${id}` : sql`id = ${id} and blob_key = ${blobKey}`;
  if (postgres) {
    const body = text === null ? sql`''::tsvector` : sql`setweight(to_tsvector('simple', ${text}), 'D')`;
    await sql`update asset_search set body = ${body} where asset_id = (select id from assets where ${holds})`.execute(
      db,
    );
  } else {
    await sql`update assets_fts set body = ${text ?? ''} where rowid = (select rowid from assets where ${holds})`.execute(
      db,
    );
  }
}

/**
 * The words of a search, each matched as a prefix: letters and digits of any script,
 * lower-cased, at most 16. Everything else (quotes, `%`, `_`, operators) only separates
 * words, so nothing in a search is syntax to the engine.
 */
export function searchWords(search: string): string[] {
  return (search.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, 16);
}

/**
 * An asset's tags, sorted, as one value of its row: a text[] on PostgreSQL, JSON
 * text on SQLite (parsed by the caller). Each is a seek on the (asset_id, tag) key.
 */
function tagList(eb: AssetBuilder, postgres: boolean) {
  const tags = eb.selectFrom('asset_tags').whereRef('asset_tags.asset_id', '=', 'assets.id');
  return postgres
    ? sql<string[]>`array(${tags.select('asset_tags.tag').orderBy('asset_tags.tag')})`
    : tags.select(sql<string[]>`json_group_array(asset_tags.tag order by asset_tags.tag)`.as('tags'));
}

/**
 * How well each row matches `words` (higher is better): BM25 over the FTS5 row on SQLite
 * (title weighted most, then tags and filename, description, extracted text), `ts_rank`
 * of the weighted vector on PostgreSQL. A float8 either way, so a cursor carries it exactly.
 */
function relevance(words: string[], postgres: boolean) {
  return postgres
    ? sql<number>`(select ts_rank(vector, to_tsquery('simple', ${words.map((w) => `${w}:*`).join(' & ')}))::float8 from asset_search where asset_id = assets.id)`
    : sql<number>`(select -bm25(assets_fts, 10.0, 5.0, 5.0, 2.0, 1.0) from assets_fts where assets_fts match ${words.map((w) => `"${w}"*`).join(' ')} and assets_fts.rowid = assets.rowid)`;
}

/**
 * The statement of one keyset page of the tenant's assets: `limit + 1` rows in the walking
 * direction, so that the one past the page tells whether there are more. Every value of
 * `tenant` and of the request's filter and cursor goes in as a parameter
 * (`page-statements.ts` compiles it once per shape and relies on that).
 */
export function pageQuery(db: Db, { tenant, request }: { tenant: Tenant; request: PageRequest }) {
  const postgres = isPostgres(db);
  const { column, cursor, limit } = request;
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`page limit ${limit}`);
  const walk: Direction = request.backward ? (request.direction === 'asc' ? 'desc' : 'asc') : request.direction;
  const words = column === 'relevance' ? searchWords(request.filter.search ?? '') : [];
  if (column === 'relevance' && words.length === 0) {
    throw new RangeError('relevance orders the results of a search with words');
  }
  // The sort key: an indexed column, or the relevance computed for each matching row.
  const key = column === 'relevance' ? relevance(words, postgres) : sql.ref(`assets.${column as IndexedColumn}`);
  const wanted = [
    ...new Set([...(request.columns ?? []), 'id', ...VISIBILITY_COLUMNS, ...(column === 'relevance' ? [] : [column])]),
  ];
  /** The filter, then the rows beyond the cursor: (key, id), the first term an index range on an indexed key. */
  const narrowed = <Q extends SelectQueryBuilder<Database, 'assets', any>>(query: Q): Q => {
    const filtered = query.where((eb) => filterExpression(eb, { tenant, filter: request.filter, postgres })) as Q;
    if (!cursor) return filtered;
    const op = walk === 'asc' ? '>' : '<';
    const inclusive = walk === 'asc' ? '>=' : '<=';
    return filtered.where((eb) =>
      eb.and([eb(key, inclusive, cursor.value), eb.or([eb(key, op, cursor.value), eb('assets.id', op, cursor.id)])]),
    ) as Q;
  };
  /** In the walking order, one row more than the page. */
  const ordered = <Q extends SelectQueryBuilder<Database, 'assets', any>>(query: Q): Q =>
    query
      .orderBy(key, walk)
      .orderBy('assets.id', walk)
      // Written into the SQL (a checked integer): SQLite runs a page measurably faster with
      // its LIMIT known when the statement is prepared than with a bound one.
      .limit(sql.lit(limit + 1)) as Q;
  const from = db.selectFrom('assets');
  const selected = request.columns
    ? from.select((wanted as IndexedColumn[]).map((c) => `assets.${c}` as const))
    : from.selectAll();
  const columns = column === 'relevance' ? selected.select(key.as('relevance')) : selected;
  const query = (
    request.withTags ? columns.select((eb) => tagList(eb, postgres).as('tags')) : columns
  ).$castTo<PageRow>();
  if (!searchedOnSqlite(request, postgres)) return ordered(narrowed(query));
  // A search on SQLite in two steps: the page's rowids from the full-text matches (NOT INDEXED:
  // found by rowid and sorted, not by walking the order index over every asset of the org),
  // then the page's columns and tags for those rows alone (a sort of every match would compute
  // them for each).
  // Kysely has no NOT INDEXED: the raw table stands in for `assets` (the same name and columns).
  const matches = db
    .selectFrom(sql`assets not indexed` as unknown as 'assets')
    .select(sql<number>`assets.rowid`.as('rowid'));
  return ordered(query.where(sql`assets.rowid`, 'in', ordered(narrowed(matches))));
}

/** Whether a page is a keyword search on SQLite ordered by an indexed column (see `pageQuery`). */
function searchedOnSqlite(request: PageRequest, postgres: boolean): boolean {
  return !postgres && request.column !== 'relevance' && searchWords(request.filter.search ?? '').length > 0;
}

/**
 * Runs `statement`, the page statement (`pageQuery`) of `request`: the page in display
 * order, plus whether more rows lie beyond it in the walking direction.
 */
export async function pageOf(
  db: Db,
  { statement, request }: { statement: CompiledQuery<PageRow>; request: PageRequest },
): Promise<{ rows: PageRow[]; hasMore: boolean }> {
  const { rows } = await db.executeQuery(statement);
  if (request.withTags && !isPostgres(db)) {
    for (const row of rows) row.tags = JSON.parse(row.tags as unknown as string) as string[];
  }
  const hasMore = rows.length > request.limit;
  const page = rows.slice(0, request.limit);
  if (request.backward) page.reverse();
  return { rows: page, hasMore };
}

/** How many of the tenant's assets pass `filter`. */
export async function countOf(db: Db, tenant: Tenant, filter: AssetQueryFilter): Promise<number> {
  const row = await db
    .selectFrom('assets')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where((eb) => filterExpression(eb, { tenant, filter, postgres: isPostgres(db) }))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** What a tenant's assets hold, and of that, what is in the trash. */
export interface TenantAssetUsage {
  assetCount: number;
  bytesStored: number;
  trashedCount: number;
  trashedBytes: number;
}

/** How many assets the tenant has and how many bytes they hold, and of those, how many are in the trash. */
export async function usageOf(db: Db, tenant: Tenant): Promise<TenantAssetUsage> {
  const row = await db
    .selectFrom('assets')
    .select((eb) => {
      const trashed = eb('trashed_at', 'is not', null);
      return [
        eb.fn.countAll<number>().as('n'),
        eb.fn.coalesce(eb.fn.sum<number>('size'), eb.lit(0)).as('bytes'),
        eb.fn.sum<number>(eb.case().when(trashed).then(1).else(0).end()).as('trashed_n'),
        eb.fn.sum<number>(eb.case().when(trashed).then(eb.ref('size')).else(0).end()).as('trashed_bytes'),
      ];
    })
    .where('org_id', '=', tenant.orgId)
    .where('mode', '=', tenant.mode)
    .executeTakeFirstOrThrow();
  return {
    assetCount: Number(row.n),
    bytesStored: Number(row.bytes),
    trashedCount: Number(row.trashed_n ?? 0),
    trashedBytes: Number(row.trashed_bytes ?? 0),
  };
}
