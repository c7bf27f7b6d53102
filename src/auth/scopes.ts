/** What a key may do. */
export const SCOPES = ['read:assets', 'write:assets', 'delete:assets', 'admin:keys', 'admin:webhooks'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}
