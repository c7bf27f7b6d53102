import {
  type GraphQLObjectType,
  type GraphQLResolveInfo,
  Kind,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';

/** Fields of `sets`, through fragment spreads and inline fragments (whatever their type condition). */
function fieldsOf(info: GraphQLResolveInfo, sets: readonly SelectionSetNode[]) {
  const fields: { name: string; selectionSet?: SelectionSetNode }[] = [];
  const visit = (selections: readonly SelectionNode[]) => {
    for (const selection of selections) {
      if (selection.kind === Kind.FIELD) {
        fields.push({ name: selection.name.value, selectionSet: selection.selectionSet });
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet.selections);
      } else {
        const fragment = info.fragments[selection.name.value];
        if (fragment) visit(fragment.selectionSet.selections);
      }
    }
  };
  for (const set of sets) visit(set.selections);
  return fields;
}

/**
 * Names of the fields selected at `path` below the field being resolved (`['edges', 'node']`
 * of a connection), through aliases and fragments. `@include`/`@skip` are not evaluated:
 * a field that may be skipped counts as selected.
 */
export function selectedFieldNames(info: GraphQLResolveInfo, path: readonly string[]): Set<string> {
  let sets = info.fieldNodes.flatMap((node) => (node.selectionSet ? [node.selectionSet] : []));
  for (const step of path) {
    sets = fieldsOf(info, sets).flatMap((field) =>
      field.name === step && field.selectionSet ? [field.selectionSet] : [],
    );
  }
  return new Set(fieldsOf(info, sets).map((field) => field.name));
}

/** What a field of an object read from rows declares: the columns its resolver reads (`reads` in `asset.ts`). */
export type ColumnExtensions<Column extends string> = { columns?: readonly Column[] };

/**
 * The columns a row must carry for the selected fields of `type` to resolve, or
 * `undefined` when some selected field does not say (then every column is read).
 * Each field says through its extensions (`ColumnExtensions`), exposed ones too: what
 * Pothos keeps of its own about a field is not read here.
 */
export function columnsFor<Column extends string>(
  type: GraphQLObjectType,
  fieldNames: Iterable<string>,
  always: readonly Column[],
): Column[] | undefined {
  const columns = new Set<Column>(always);
  const fields = type.getFields();
  for (const name of fieldNames) {
    if (name === '__typename') continue;
    const declared = (fields[name]?.extensions as ColumnExtensions<Column> | undefined)?.columns;
    if (!declared) return undefined;
    for (const column of declared) columns.add(column);
  }
  return [...columns];
}
