import {
  type DocumentNode,
  type FragmentDefinitionNode,
  getOperationAST,
  Kind,
  type SelectionNode,
  type ValueNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { BadUserInputError } from '../errors.js';
import { DocumentCache } from '../schema/document-cache.js';
import { toGraphQLError } from './use-error-codes.js';

/** Options of `useCostLimit`. */
export interface CostLimitOptions {
  /** Highest estimated cost an operation may have. @default 20000 */
  maxCost: number;
  /** Cost of a field with a selection set. @default 2 */
  objectCost?: number;
  /** Cost of a leaf field. @default 1 */
  scalarCost?: number;
  /** Factor each level of nesting multiplies its children's cost by. @default 1.5 */
  depthCostFactor?: number;
  /** Documents whose plan is kept (DOCUMENT_CACHE_MAX). @default 1000 */
  cacheMax?: number;
}

/** A page size argument's value: written inline, or read from the request's variables. */
function pageSize(value: ValueNode, variables: Record<string, unknown>): number {
  if (value.kind === Kind.INT) return Number.parseInt(value.value, 10);
  if (value.kind === Kind.VARIABLE) {
    const given = variables[value.name.value];
    return typeof given === 'number' && Number.isFinite(given) ? given : 1;
  }
  return 1;
}

/** An operation's cost as a function of its variables: page sizes may be given as variables. */
type CostPlan = (variables: Record<string, unknown>) => number;

/**
 * The cost estimate of an operation, worked out once (what does not depend on the
 * variables) into a plan evaluated per request: every field costs, nested fields by a
 * factor per level, and a list asked for with `first` or `last` costs its page size times
 * its selection. The same estimate whether a page size is written in the query or passed
 * as a variable.
 */
export function costPlan(
  document: DocumentNode,
  operationName: string | null | undefined,
  options: CostLimitOptions,
): CostPlan {
  const { objectCost = 2, scalarCost = 1, depthCostFactor = 1.5 } = options;
  const operation = getOperationAST(document, operationName);
  if (!operation) return () => 0;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const sum =
    (plans: CostPlan[]): CostPlan =>
    (variables) =>
      plans.reduce((total, plan) => total + plan(variables), 0);
  const plan = (selection: SelectionNode, seen: ReadonlySet<string>): CostPlan => {
    if (selection.kind === Kind.FRAGMENT_SPREAD) {
      const fragment = fragments.get(selection.name.value);
      if (!fragment || seen.has(fragment.name.value)) return () => 0;
      const inner = new Set([...seen, fragment.name.value]);
      return sum(fragment.selectionSet.selections.map((s) => plan(s, inner)));
    }
    if (selection.kind === Kind.INLINE_FRAGMENT)
      return sum(selection.selectionSet.selections.map((s) => plan(s, seen)));
    if (selection.name.value === '__schema') return () => 0;
    if (!selection.selectionSet) return () => scalarCost;
    const size = selection.arguments?.find((a) => a.name.value === 'first' || a.name.value === 'last');
    const children = selection.selectionSet.selections.map((s) => plan(s, seen));
    return (variables) =>
      (objectCost + children.reduce((total, child) => total + depthCostFactor * child(variables), 0)) *
      Math.max(1, size ? pageSize(size.value, variables) : 1);
  };
  return sum(operation.selectionSet.selections.map((s) => plan(s, new Set())));
}

/**
 * Refuses an operation whose estimated cost is over `maxCost` before it runs (400,
 * BAD_USER_INPUT). It runs at execution, not validation: Yoga caches validation per
 * document, and page sizes passed as variables are known only per request; what does
 * not depend on them is worked out once per document (`costPlan`).
 */
export function useCostLimit(options: CostLimitOptions): Plugin {
  // Per document, the plan of each operation name it was asked to run.
  const plans = new DocumentCache<DocumentNode, Map<string | null, CostPlan>>(options.cacheMax ?? 1000);
  const check = (args: {
    document: DocumentNode;
    operationName?: string | null;
    variableValues?: Record<string, unknown> | null;
  }) => {
    const ofDocument = plans.get(args.document, () => new Map());
    const name = args.operationName ?? null;
    let plan = ofDocument.get(name);
    if (!plan) ofDocument.set(name, (plan = costPlan(args.document, name, options)));
    const found = plan(args.variableValues ?? {});
    if (found <= options.maxCost) return null;
    return toGraphQLError(
      new BadUserInputError('query', `Query cost limit of ${options.maxCost} exceeded, found ${Math.ceil(found)}.`),
      { wholeRequest: true },
    );
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const error = check(args);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const error = check(args);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}
