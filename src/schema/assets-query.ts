import type { GraphQLObjectType, GraphQLResolveInfo } from 'graphql';
import { type AssetQueryFilter, type SortColumn, searchWords } from '../db/asset-queries.js';
import type { PageRow } from '../db/asset-queries.js';
import type { AssetRow } from '../db/types.js';
import type { Config } from '../config.js';
import { BadUserInputError, NotFoundError } from '../errors.js';
import { normalizeTags } from '../services/assets/naming.js';
import type { AssetPage } from '../services/assets/pagination.js';
import { ASSET_KEY_COLUMNS, Asset, type AssetShape, AssetStatusEnum, AssetTypeEnum } from './asset.js';
import { DocumentCache } from './document-cache.js';
import { columnsFor, selectedFieldNames } from './projection.js';
import { builder, tenantOf } from './builder.js';
import { decodeGlobalId } from '../global-id.js';

const SortField = builder.enumType('AssetSortField', {
  values: {
    CREATED_AT: {},
    UPDATED_AT: {},
    TITLE: {},
    SIZE: {},
    RELEVANCE: { description: 'How well an asset matches filter.search (DESC: best first); only with a search.' },
  } as const,
});
const SortDirection = builder.enumType('SortDirection', { values: ['ASC', 'DESC'] as const });

const SORT_COLUMNS: Record<(typeof SortField)['$inferType'], SortColumn> = {
  CREATED_AT: 'created_at',
  UPDATED_AT: 'updated_at',
  TITLE: 'title',
  SIZE: 'size',
  RELEVANCE: 'relevance',
};

const AssetOrder = builder.inputType('AssetOrder', {
  fields: (t) => ({
    field: t.field({ type: SortField, required: true }),
    direction: t.field({ type: SortDirection, required: true }),
  }),
});

const AssetFilter = builder.inputType('AssetFilter', {
  description: 'All given conditions must hold. `tags`: the asset has every tag listed.',
  fields: (t) => ({
    ids: t.idList(),
    types: t.field({ type: [AssetTypeEnum] }),
    status: t.field({ type: [AssetStatusEnum] }),
    search: t.string({ description: 'Case-insensitive text in title, description or filename.' }),
    tags: t.stringList(),
    directoryId: t.id(),
    isPublic: t.boolean(),
    createdAfter: t.field({ type: 'DateTime' }),
    createdBefore: t.field({ type: 'DateTime' }),
    checksum: t.string({ description: '`sha256:<hex>`: the assets holding exactly these bytes (duplicates).' }),
    trashed: t.boolean({ description: 'true: the trash (deleted, not yet purged) instead of the live assets.' }),
  }),
});

type FilterInput = (typeof AssetFilter)['$inferInput'];

/** Decodes the API filter into repository terms; ids of another type simply match nothing. */
function toQueryFilter(input: FilterInput | null | undefined): AssetQueryFilter {
  if (!input) return {};
  const decodeAll = (ids: readonly string[], typename: string) =>
    ids
      .map((id) => decodeGlobalId(id))
      .filter((g) => g.typename === typename)
      .map((g) => g.id);
  if (input.ids && input.ids.length > 500) throw new BadUserInputError('filter.ids', 'At most 500 ids.');
  if (input.search && input.search.length > 200)
    throw new BadUserInputError('filter.search', 'At most 200 characters.');
  if (input.tags && input.tags.length > 20) throw new BadUserInputError('filter.tags', 'At most 20 tags.');
  if (input.checksum != null && !/^sha256:[0-9a-f]{64}$/.test(input.checksum)) {
    throw new BadUserInputError('filter.checksum', 'A checksum is "sha256:" and 64 lowercase hex digits.');
  }
  const directory = input.directoryId ? decodeGlobalId(input.directoryId) : undefined;
  return {
    ids: input.ids ? decodeAll(input.ids, 'Asset') : undefined,
    types: input.types ?? undefined,
    statuses: input.status ?? undefined,
    search: input.search?.trim() || undefined,
    tags: input.tags ? normalizeTags(input.tags, 'filter.tags') : undefined,
    // A folder id of another type can match no asset.
    directoryId: directory ? (directory.typename === 'Directory' ? directory.id : '') : undefined,
    isPublic: input.isPublic ?? undefined,
    createdAfter: input.createdAfter?.toISOString(),
    createdBefore: input.createdBefore?.toISOString(),
    checksum: input.checksum ?? undefined,
    trashed: input.trashed ?? undefined,
  };
}

builder.queryField('asset', (t) =>
  t.field({
    type: Asset,
    nullable: true,
    description: 'One asset; NOT_FOUND when it does not exist or belongs to another org. Public assets need no key.',
    authScopes: { $any: { 'read:assets': true, anonymous: true } },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args) => {
      const { typename, id } = decodeGlobalId(args.id);
      if (typename !== 'Asset') throw new NotFoundError();
      return id;
    },
  }),
);

/** What a page's rows must carry for the fields a query selects on its nodes. */
interface Projection {
  columns?: (keyof AssetRow)[];
  withTags: boolean;
}

/**
 * Projections worked out, per gateway (its configuration sets the bound): per operation
 * of a document, per `assets` field in it (an operation may list twice, under aliases).
 */
const projections = new WeakMap<Config, DocumentCache<object, Map<object, Projection>>>();

/** What the page's rows must carry for the fields the query selects on its nodes: worked out once per document. */
function selectedColumns(info: GraphQLResolveInfo, config: Config): Projection {
  let cache = projections.get(config);
  if (!cache) projections.set(config, (cache = new DocumentCache(config.documentCacheMax)));
  const ofOperation = cache.get(info.operation, () => new Map());
  const field = info.fieldNodes[0]!;
  let projection = ofOperation.get(field);
  if (!projection) {
    const type = info.schema.getType('Asset') as GraphQLObjectType;
    const fields = selectedFieldNames(info, ['edges', 'node']);
    projection = { columns: columnsFor(type, fields, ASSET_KEY_COLUMNS), withTags: fields.has('tags') };
    ofOperation.set(field, projection);
  }
  return projection;
}

/** An edge of a page: its cursor is encoded only when a query reads it. */
class AssetEdge {
  /**
   * The row as the `Asset` type holds it: it carries every column the selected fields
   * declare (`selectedColumns` asked for them), which is all they read of it.
   */
  readonly node: AssetShape;

  constructor(
    private readonly row: PageRow,
    private readonly page: AssetPage,
  ) {
    this.node = row as AssetShape;
  }

  get cursor(): string {
    return this.page.cursorOf(this.row);
  }
}

builder.queryField('assets', (t) =>
  t.connection(
    {
      type: Asset,
      authScopes: { 'read:assets': true },
      args: {
        filter: t.arg({ type: AssetFilter }),
        orderBy: t.arg({ type: AssetOrder, description: 'Default: CREATED_AT DESC. Ties are broken by id.' }),
      },
      resolve: async (_root, args, ctx, info) => {
        const order = {
          column: SORT_COLUMNS[args.orderBy?.field ?? 'CREATED_AT'],
          direction: args.orderBy?.direction === 'ASC' ? ('asc' as const) : ('desc' as const),
        };
        const filter = toQueryFilter(args.filter);
        if (order.column === 'relevance' && searchWords(filter.search ?? '').length === 0) {
          throw new BadUserInputError('orderBy', 'RELEVANCE orders the results of a search: give filter.search words.');
        }
        const page = await ctx.services.assetReads.page(tenantOf(ctx), {
          args,
          filter,
          order,
          read: selectedColumns(info, ctx.services.config),
        });
        return {
          edges: page.rows.map((node) => new AssetEdge(node, page)),
          pageInfo: {
            hasNextPage: page.hasNextPage,
            hasPreviousPage: page.hasPreviousPage,
            startCursor: page.rows.length ? page.cursorOf(page.rows[0]!) : null,
            endCursor: page.rows.length ? page.cursorOf(page.rows.at(-1)!) : null,
          },
          totalCount: page.totalCount,
        };
      },
    },
    { name: 'AssetConnection' },
    { name: 'AssetEdge' },
  ),
);
