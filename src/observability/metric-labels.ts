/** Longest operation name kept as a label; longer names are cut. */
export const OPERATION_NAME_MAX = 64;

/** Methods the gateway answers; any other is labelled `OTHER`. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** A request method as a label from a closed set. */
export function methodLabel(method: string | undefined): string {
  return method && METHODS.has(method) ? method : 'OTHER';
}

/**
 * The GraphQL operation names metrics may use as labels: a closed set that only grows
 * from requests a key made and that succeeded, up to `max` names, each cut to 64
 * characters. Any other name, however many a caller invents, is `other`: a label set,
 * and the series under it, stays bounded whoever calls.
 */
export function createOperationNames(max: number) {
  const known = new Set<string>();
  return {
    /**
     * The label for `name`. `trusted` (an authenticated request that succeeded) adds an
     * unknown name while there is room.
     */
    label(name: string, trusted: boolean): string {
      const cut = name.slice(0, OPERATION_NAME_MAX);
      if (known.has(cut)) return cut;
      if (!trusted || known.size >= max) return 'other';
      known.add(cut);
      return cut;
    },
    get size(): number {
      return known.size;
    },
  };
}
