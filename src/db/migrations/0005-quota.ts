import { type Kysely, sql } from 'kysely';

/** Storage accounting per org: bytes stored and bytes reserved by uploads in flight. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('orgs')
    .addColumn('used_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('orgs')
    .addColumn('reserved_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`update orgs set used_bytes = (select coalesce(sum(size), 0) from assets where assets.org_id = orgs.id)`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('orgs').dropColumn('reserved_bytes').execute();
  await db.schema.alterTable('orgs').dropColumn('used_bytes').execute();
}
