import { randomUUID } from 'node:crypto';
import type { Db } from './database.js';
import type { Database, JobKind, JobRow, Tenant } from './types.js';
import { sql, type Transaction } from 'kysely';

/**
 * The due job to run first: one running under a lease that lapsed (its worker died),
 * else the queued job of the earliest turn whose time has come (by time within a
 * turn), both along the (status, turn, run_at) index. Two lookups along indexes, each stopping at its first row: no sort of the
 * backlog, whatever its size.
 */
async function nextDue(db: Db, now: string) {
  const pick = (status: 'queued' | 'running') =>
    db
      .selectFrom('jobs')
      .select(['id', 'status', 'locked_until'])
      .where('status', '=', status)
      .where((eb) => (status === 'queued' ? eb('run_at', '<=', now) : eb('locked_until', '<', now)))
      .orderBy('turn')
      .orderBy('run_at')
      .limit(1)
      .executeTakeFirst();
  return (await pick('running')) ?? (await pick('queued'));
}

/**
 * The turn of a new job of `orgId`: one after the org's last job, and never behind
 * the round being served (the newest turn running, else the first turn waiting,
 * else the last one done). An org that floods the queue takes turns 1, 2, 3…; an
 * org that arrives meanwhile joins the round being served and goes next.
 */
function turnOf(orgId: string) {
  const last = (status: 'running' | 'done' | 'failed') =>
    sql<number | null>`(select max(turn) from jobs where status = ${status})`;
  const served = sql<number>`coalesce(${last('running')}, (select min(turn) from jobs where status = 'queued'), ${last('done')}, ${last('failed')}, 0)`;
  const next = sql<number>`coalesce((select max(turn) from jobs where org_id = ${orgId}) + 1, 0)`;
  return sql<number>`case when ${next} > ${served} then ${next} else ${served} end`;
}

/** The queue's backlog: see `JobRepository.backlog`. */
export interface Backlog {
  queued: number;
  running: number;
  /** `run_at` of the longest-waiting due job; null when none is due. */
  oldestDueAt: string | null;
}

/** The durable job queue, in the database: survives restarts, shared by every gateway. */
export class JobRepository {
  constructor(private readonly db: Db) {}

  /**
   * Queues a job for an asset in its org's next turn, to run at `runAt` (default `now`);
   * a repository of a unit of work queues it together with the row it is about. A job of the same kind already waiting for the asset is
   * not queued again (it will do the work): returns false then.
   */
  async enqueue(
    kind: JobKind,
    asset: { id: string; org_id: string },
    { now, runAt = now }: { now: string; runAt?: string },
  ): Promise<boolean> {
    const waiting = sql<number>`(select 1 from jobs where asset_id = ${asset.id} and kind = ${kind} and status = 'queued')`;
    const result = await this.db
      .insertInto('jobs')
      .columns(['id', 'kind', 'asset_id', 'org_id', 'turn', 'status', 'run_at', 'created_at', 'updated_at'])
      .expression(
        this.db
          .selectNoFrom((eb) => [
            eb.val(randomUUID()).as('id'),
            eb.val(kind).as('kind'),
            eb.val(asset.id).as('asset_id'),
            eb.val(asset.org_id).as('org_id'),
            turnOf(asset.org_id).as('turn'),
            eb.val('queued').as('status'),
            eb.val(runAt).as('run_at'),
            eb.val(now).as('created_at'),
            eb.val(now).as('updated_at'),
          ])
          .where(sql<boolean>`not exists ${waiting}`),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /**
   * Claims the next due job for `worker`: a queued job whose time has come, or a
   * running one whose lease ran out (its worker died). A compare-and-set UPDATE, so
   * two workers, in one process or several, never run the same job.
   */
  async claim(worker: string, now: string, leaseUntil: string): Promise<JobRow | undefined> {
    for (let tries = 0; tries < 5; tries++) {
      const candidate = await nextDue(this.db, now);
      if (!candidate) return undefined;
      const claimed = await this.db
        .updateTable('jobs')
        .set((eb) => ({
          status: 'running',
          locked_by: worker,
          locked_until: leaseUntil,
          attempts: eb('attempts', '+', 1),
          updated_at: now,
        }))
        .where('id', '=', candidate.id)
        .where('status', '=', candidate.status)
        .where((eb) =>
          candidate.locked_until === null
            ? eb('locked_until', 'is', null)
            : eb('locked_until', '=', candidate.locked_until),
        )
        .returningAll()
        .executeTakeFirst();
      if (claimed) return claimed;
    }
    return undefined;
  }

  /** Extends a running job's lease while its worker is alive. */
  async extendLease(id: string, worker: string, until: string): Promise<void> {
    await this.db
      .updateTable('jobs')
      .set({ locked_until: until })
      .where('id', '=', id)
      .where('locked_by', '=', worker)
      .where('status', '=', 'running')
      .execute();
  }

  /** How many jobs are in each state (queued, running, done, failed). */
  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('jobs')
      .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
      .groupBy('status')
      .execute();
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
  }

  /**
   * How far behind the queue is: jobs waiting and running, and since when the longest-waiting
   * due job has waited (its `run_at`: a retry counts from when it became due again; null: none
   * due). With `tenant`, only the jobs of that org's assets in that mode.
   */
  async backlog(now: string, tenant?: Tenant): Promise<Backlog> {
    let query = this.db
      .selectFrom('jobs')
      .select((eb) => [
        eb.fn.sum<number>(eb.case().when('jobs.status', '=', 'queued').then(1).else(0).end()).as('queued'),
        eb.fn.sum<number>(eb.case().when('jobs.status', '=', 'running').then(1).else(0).end()).as('running'),
        eb.fn
          .min<string>(
            eb
              .case()
              .when(eb.and([eb('jobs.status', '=', 'queued'), eb('jobs.run_at', '<=', now)]))
              .then(eb.ref('jobs.run_at'))
              .end(),
          )
          .as('oldest'),
      ])
      .where('jobs.status', 'in', ['queued', 'running']);
    if (tenant) {
      query = query
        .innerJoin('assets', 'assets.id', 'jobs.asset_id')
        .where('jobs.org_id', '=', tenant.orgId)
        .where('assets.org_id', '=', tenant.orgId)
        .where('assets.mode', '=', tenant.mode);
    }
    const row = await query.executeTakeFirstOrThrow();
    return { queued: Number(row.queued ?? 0), running: Number(row.running ?? 0), oldestDueAt: row.oldest ?? null };
  }

  /** Hands a shutting-down worker's running jobs back to the queue, due now: another worker takes them at once. */
  async releaseAll(worker: string, now: string): Promise<number> {
    const result = await this.db
      .updateTable('jobs')
      .set({ status: 'queued', locked_by: null, locked_until: null, run_at: now, updated_at: now })
      .where('locked_by', '=', worker)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Whether any job is due now (queued and ready, or running with a lapsed lease). */
  async hasDue(now: string): Promise<boolean> {
    return (await nextDue(this.db, now)) !== undefined;
  }

  async complete(id: string, now: string): Promise<void> {
    await this.db
      .updateTable('jobs')
      .set({ status: 'done', locked_by: null, locked_until: null, updated_at: now })
      .where('id', '=', id)
      .execute();
  }

  /** Puts a job that found nothing to do yet back for `runAt`, giving back the attempt its claim took. */
  async defer(id: string, runAt: string, now: string): Promise<void> {
    await this.db
      .updateTable('jobs')
      .set((eb) => ({
        status: 'queued',
        run_at: runAt,
        attempts: eb('attempts', '-', 1),
        locked_by: null,
        locked_until: null,
        updated_at: now,
      }))
      .where('id', '=', id)
      .execute();
  }

  /** Puts a job back for a retry at `retryAt`, or marks it failed for good when `retryAt` is null. */
  async fail(
    id: string,
    { error, retryAt, now }: { error: string; retryAt: string | null; now: string },
  ): Promise<void> {
    await this.db
      .updateTable('jobs')
      .set({
        status: retryAt ? 'queued' : 'failed',
        run_at: retryAt ?? now,
        last_error: error.slice(0, 2000),
        locked_by: null,
        locked_until: null,
        updated_at: now,
      })
      .where('id', '=', id)
      .execute();
  }

  async find(id: string): Promise<JobRow | undefined> {
    return this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Removes jobs finished before `before`, `batch` rows per statement (short locks, bounded
   * work per statement, whatever the backlog of finished rows), until none is left.
   */
  async deleteFinished(before: string, batch = 1000): Promise<number> {
    let deleted = 0;
    for (;;) {
      const ids = this.db
        .selectFrom('jobs')
        .select('id')
        .where('status', 'in', ['done', 'failed'])
        .where('updated_at', '<', before)
        .limit(batch);
      const result = await this.db.deleteFrom('jobs').where('id', 'in', ids).executeTakeFirst();
      const n = Number(result.numDeletedRows);
      deleted += n;
      if (n < batch) return deleted;
    }
  }
}
