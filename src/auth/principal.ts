import type { Mode, Tenant } from '../db/types.js';
import type { Scope } from './scopes.js';

/** Who is calling: the API key that authenticated the request. */
export interface Principal {
  keyId: string;
  name: string;
  orgId: string;
  mode: Mode;
  scopes: ReadonlySet<Scope>;
}

/** The data a principal may touch. */
export function tenantOf(principal: Principal): Tenant {
  return { orgId: principal.orgId, mode: principal.mode };
}
