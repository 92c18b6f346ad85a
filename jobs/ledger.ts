import type { Selectable } from 'kysely';
import type { Database, Session } from '../db/connection.js';
import type { Schema } from '../db/schema/index.js';

/**
 * The run ledger, repwatch.pipeline_run (BI sees it as analytics.pipeline_run): one row per attempt of a
 * job for a period. The runner is the only writer. Times are always passed in from the runner's time
 * source (the database's clock, or the clock a test injected), so that "when did it last fail" and
 * "now" are read from the same clock.
 */

export type RunStatus = Schema['repwatch.pipeline_run']['status'];

/** Failures the runner writes itself. They are not the job's fault, so they do not slow its retries. */
export const ABANDONED = 'abandoned: the process running it stopped (killed or crashed) before it finished';
export const LOCK_LOST = 'stopped: the database connection holding this job\'s lock was lost (a database restart or a network cut), so another instance may have started the period; it runs again if nothing succeeded';
export const INTERRUPTED = 'interrupted: repwatch (schedule or run) was stopped before the job finished; the transaction in progress was rolled back, what it had committed is kept and recognised when the period runs again';

const MAX_DETAIL = 2000;

type Queryable = Pick<Database | Session, 'query'>;

/** A ledger row as read back (the table's own type, so the two cannot drift apart). */
export type LedgerRun = Selectable<Schema['repwatch.pipeline_run']>;

export async function startRun(db: Queryable, job: string, period: string, at: Date, instance: string): Promise<number> {
  const [row] = await db.query<{ id: number }>(
    `insert into repwatch.pipeline_run (job, period, status, started_at, instance) values ($1, $2, 'running', $3, $4) returning id`,
    [job, period, at, instance],
  );
  return row!.id;
}

export interface RunEnd {
  status: Exclude<RunStatus, 'running'>;
  at: Date;
  rowsIn?: number | undefined;
  rowsLoaded?: number | undefined;
  rowsRejected?: number | undefined;
  detail?: string | undefined;
}

/** Only a row still 'running' is finished: one already marked interrupted by a stop keeps saying so. */
export async function finishRun(db: Queryable, id: number, end: RunEnd): Promise<void> {
  await db.query(
    `update repwatch.pipeline_run
        set status = $2, finished_at = $3, rows_in = $4, rows_loaded = $5, rows_rejected = $6, detail = $7
      where id = $1 and status = 'running'`,
    [id, end.status, end.at, end.rowsIn ?? null, end.rowsLoaded ?? null, end.rowsRejected ?? null, clip(end.detail)],
  );
}

/** A run that did not start because another process holds the job: recorded so the ledger shows it. */
export async function recordSkipped(db: Queryable, job: string, period: string, at: Date, instance: string, detail: string): Promise<void> {
  await db.query(
    `insert into repwatch.pipeline_run (job, period, status, started_at, finished_at, instance, detail)
     values ($1, $2, 'skipped', $3, $3, $4, $5)`,
    [job, period, at, instance, clip(detail)],
  );
}

/** Called with the job's lock held: any row still 'running' belongs to a process that died. */
export async function closeAbandoned(db: Queryable, job: string, at: Date): Promise<number> {
  const rows = await db.query<{ id: number }>(
    `update repwatch.pipeline_run set status = 'failed', finished_at = $2, detail = $3
      where job = $1 and status = 'running' returning id`,
    [job, at, ABANDONED],
  );
  return rows.length;
}

/** On a stop that could not wait for a job: its row says so, and the next run starts it again. */
export async function closeInterrupted(db: Queryable, ids: readonly number[], at: Date): Promise<void> {
  if (ids.length === 0) return;
  await db.query(`update repwatch.pipeline_run set status = 'failed', finished_at = $2, detail = $3 where id = any($1) and status = 'running'`, [
    [...ids],
    at,
    INTERRUPTED,
  ]);
}

/**
 * Failures the runner records for what happened around a job, not in it: they do not count for
 * backoff. Matched by their opening words, so rows written with an earlier wording (an upgrade right
 * after a stop) still count as what they are.
 */
const NOT_THE_JOBS_FAULT = ['abandoned:%', 'interrupted:%', 'stopped: the database connection holding%'];

export async function hasSucceeded(db: Queryable, job: string, period: string): Promise<boolean> {
  const rows = await db.query(`select 1 from repwatch.pipeline_run where job = $1 and period = $2 and status = 'succeeded' limit 1`, [job, period]);
  return rows.length > 0;
}

/** Per period among `periods`: succeeded or not, failures counted for backoff, and the last one's time. */
export async function periodStates(db: Queryable, job: string, periods: readonly string[]): Promise<Map<string, PeriodState>> {
  const rows = await db.query<{ period: string; succeeded: boolean; failures: number; last_failure: Date | null }>(
    `select period,
            bool_or(status = 'succeeded') as succeeded,
            count(*) filter (where status = 'failed' and (detail is null or not detail like any($3::text[])))::int as failures,
            max(finished_at) filter (where status = 'failed' and (detail is null or not detail like any($3::text[]))) as last_failure
       from repwatch.pipeline_run
      where job = $1 and period = any($2)
      group by period`,
    [job, [...periods], NOT_THE_JOBS_FAULT],
  );
  return new Map(rows.map((r) => [r.period, { succeeded: r.succeeded, failures: r.failures, lastFailure: r.last_failure }]));
}

export interface PeriodState {
  succeeded: boolean;
  failures: number;
  lastFailure: Date | null;
}

/** For jobs whose latest run catches up everything: the failures since the job last succeeded. */
export async function failuresSinceSuccess(db: Queryable, job: string): Promise<{ failures: number; lastFailure: Date | null }> {
  const [row] = await db.query<{ failures: number; last_failure: Date | null }>(
    `select count(*)::int as failures, max(finished_at) as last_failure
       from repwatch.pipeline_run
      where job = $1 and status = 'failed' and (detail is null or not detail like any($2::text[]))
        and started_at > coalesce((select max(started_at) from repwatch.pipeline_run where job = $1 and status = 'succeeded'), '-infinity')`,
    [job, NOT_THE_JOBS_FAULT],
  );
  return { failures: row?.failures ?? 0, lastFailure: row?.last_failure ?? null };
}

export interface JobSummary {
  job: string;
  lastSuccess: LedgerRun | null;
  lastFailure: LedgerRun | null;
  running: LedgerRun | null;
}

/** The last success, last failure and any running row of each job (status, metrics). */
export async function jobSummaries(db: Queryable): Promise<Map<string, JobSummary>> {
  const rows = await db.query<LedgerRun & { kind: 'success' | 'failure' | 'running' }>(
    `select * from (
       select distinct on (job, kind) r.*, k.kind
         from repwatch.pipeline_run r
         cross join lateral (select case r.status when 'succeeded' then 'success' when 'failed' then 'failure' else r.status end as kind) k
        where r.status in ('succeeded', 'failed', 'running')
        order by job, kind, coalesce(r.finished_at, r.started_at) desc, r.id desc
     ) t`,
  );
  const out = new Map<string, JobSummary>();
  for (const { kind, ...run } of rows) {
    const summary = out.get(run.job) ?? { job: run.job, lastSuccess: null, lastFailure: null, running: null };
    if (kind === 'success') summary.lastSuccess = run;
    else if (kind === 'failure') summary.lastFailure = run;
    else summary.running = run;
    out.set(run.job, summary);
  }
  return out;
}

function clip(detail: string | undefined): string | null {
  if (detail === undefined) return null;
  return detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL - 1)}…` : detail;
}
