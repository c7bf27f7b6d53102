/**
 * A list's page statement, compiled once per shape rather than built and compiled by Kysely
 * for every request (about a tenth of a list request's CPU). A shape is what decides the SQL
 * text: the dialect, the columns read, which filters are present (a list's length, a
 * boolean's value), the order, the direction, the page size and whether a cursor is given.
 * The values themselves (ids, tags, dates, the cursor, the tenant) are parameters, read from
 * each request in the places the compiled statement holds them.
 */
import { CompiledQuery } from 'kysely';
import { type AssetQueryFilter, type PageRequest, type PageRow, pageQuery } from './asset-queries.js';
import { type Db, isPostgres } from './database.js';
import type { Tenant } from './types.js';

/**
 * How each filter enters a shape: `list` by its length, each element a parameter; `value`
 * by whether it is set (and empty), the value a parameter; `shape` by its value, which the
 * SQL holds (a boolean); `uncached` requests are compiled each time while it is set (a
 * search: its words make parameters of their own, and its full-text match costs far more
 * than compiling). Spelled out for every filter, so that a new filter cannot join a shape
 * unclassified: the type asks for it here.
 */
const FILTERS: { readonly [Name in keyof Required<AssetQueryFilter>]: 'list' | 'value' | 'shape' | 'uncached' } = {
  ids: 'list',
  types: 'list',
  statuses: 'list',
  tags: 'list',
  directoryId: 'value',
  createdAfter: 'value',
  createdBefore: 'value',
  checksum: 'value',
  isPublic: 'shape',
  trashed: 'shape',
  search: 'uncached',
};
const FILTER_NAMES = Object.keys(FILTERS) as (keyof AssetQueryFilter)[];

/** What a statement is compiled for and run with. */
export interface PageInput {
  tenant: Tenant;
  request: PageRequest;
}

/**
 * A value of the request in a statement compiled for its shape: the statement is compiled
 * with these in place of the values, and each request's values are read in their places.
 * Kysely passes a parameter through untouched, so a slot lands where its value would.
 */
class Slot {
  constructor(readonly read: (input: PageInput) => unknown) {}
}

/** The key of `input`'s shape; undefined when its statement is compiled each time. */
function shapeOf({ request }: PageInput, postgres: boolean): string | undefined {
  const { filter, cursor } = request;
  const parts: unknown[] = [
    postgres,
    request.column,
    request.direction,
    request.backward,
    request.limit,
    request.columns ?? null,
    request.withTags ?? false,
    cursor === undefined ? null : typeof cursor.value,
  ];
  for (const name of FILTER_NAMES) {
    const value = filter[name];
    // [] when absent, so that absent, null and empty stay three shapes.
    if (value === undefined) {
      parts.push([]);
      continue;
    }
    switch (FILTERS[name]) {
      case 'list':
        parts.push([Array.isArray(value) ? value.length : value]);
        break;
      case 'value':
        // Only a value that reads as true joins the statement as a parameter: an empty date means no bound.
        parts.push([value ? true : value]);
        break;
      case 'uncached':
        if (value) return undefined;
        parts.push([value]);
        break;
      case 'shape':
        parts.push([value]);
    }
  }
  return JSON.stringify(parts);
}

/** `input` with a slot in place of every value a statement of its shape takes as a parameter. */
function slotted({ tenant, request }: PageInput): { input: PageInput; slots: Slot[] } {
  const slots: Slot[] = [];
  const slot = (read: (input: PageInput) => unknown) => {
    const made = new Slot(read);
    slots.push(made);
    return made as never;
  };
  const filter: Record<string, unknown> = {};
  for (const name of FILTER_NAMES) {
    const value = request.filter[name];
    if (FILTERS[name] === 'list' && Array.isArray(value)) {
      filter[name] = (value as readonly unknown[]).map((_, i) =>
        slot((input) => (input.request.filter[name] as unknown[])[i]),
      );
    } else if (FILTERS[name] === 'value' && value) {
      filter[name] = slot((input) => input.request.filter[name]);
    } else if (value !== undefined) {
      filter[name] = value;
    }
  }
  const cursor = request.cursor && {
    value: slot((input) => input.request.cursor!.value),
    id: slot((input) => input.request.cursor!.id),
  };
  return {
    input: {
      tenant: { orgId: slot((input) => input.tenant.orgId), mode: slot((input) => input.tenant.mode) },
      request: { ...request, filter, cursor },
    },
    slots,
  };
}

/**
 * Page statements compiled per shape, at most `max` (DOCUMENT_CACHE_MAX), the least
 * recently used going first: a caller can make as many shapes as it likes (page sizes,
 * lengths of id lists, sets of filters).
 */
export class PageStatements {
  readonly #entries = new Map<string, CompiledQuery<PageRow>>();
  #compiled = 0;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`page statement bound ${max}`);
  }

  /**
   * The page statement (`pageQuery`) for `input` on `db`, with its values as parameters:
   * compiled for its shape when none is kept, or for `input` itself when its shape is
   * never kept (a search).
   */
  statement(db: Db, input: PageInput): CompiledQuery<PageRow> {
    const key = shapeOf(input, isPostgres(db));
    if (key === undefined) return pageQuery(db, input).compile();
    const entries = this.#entries;
    let compiled = entries.get(key);
    if (compiled) {
      // Most recently used last: a Map iterates in insertion order.
      entries.delete(key);
    } else {
      const { input: shape, slots } = slotted(input);
      const own = pageQuery(db, shape).compile();
      // Kept as its SQL, without the builder's tree (four fifths of the memory). Kysely writes
      // the SQL piece by piece, and V8 keeps such a string in its hundreds of pieces until it
      // is read whole: reading it as a number does, and leaves one piece (a few KiB in all).
      Number(own.sql);
      compiled = CompiledQuery.raw(own.sql, [...own.parameters]) as CompiledQuery<PageRow>;
      this.#compiled++;
      // Every value must reach the statement as itself: a builder that reads or changes one
      // (a value that is not a parameter) would make one statement wrong for its whole shape.
      const placed = new Set(compiled.parameters);
      if (slots.some((s) => !placed.has(s))) throw new Error('a page statement uses a value other than as a parameter');
      if (entries.size >= this.max) entries.delete(entries.keys().next().value!);
    }
    entries.set(key, compiled);
    return {
      ...compiled,
      parameters: compiled.parameters.map((p) => (p instanceof Slot ? p.read(input) : p)),
    };
  }

  /** Statements kept now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Statements compiled for a shape so far (a kept one is not compiled again). */
  get compiled(): number {
    return this.#compiled;
  }
}
