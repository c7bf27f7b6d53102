import { type Kysely, sql } from 'kysely';

/**
 * Jobs know their org and take turns: `turn` orders the queue round by round, so an
 * org with a backlog cannot hold back another org's first job.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').addColumn('org_id', 'text').execute();
  await db.schema
    .alterTable('jobs')
    .addColumn('turn', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`update jobs set org_id = (select org_id from assets where assets.id = jobs.asset_id)`.execute(db);
  // Claims walk (status, turn, run_at) and stop at the first due row; the old (status, run_at) would sort.
  await db.schema.dropIndex('jobs_ready_idx').execute();
  await db.schema.createIndex('jobs_turn_idx').on('jobs').columns(['status', 'turn', 'run_at']).execute();
  await db.schema.createIndex('jobs_org_turn_idx').on('jobs').columns(['org_id', 'turn']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('jobs_org_turn_idx').execute();
  await db.schema.dropIndex('jobs_turn_idx').execute();
  await db.schema.createIndex('jobs_ready_idx').on('jobs').columns(['status', 'run_at']).execute();
  await db.schema.alterTable('jobs').dropColumn('turn').execute();
  await db.schema.alterTable('jobs').dropColumn('org_id').execute();
}
