import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import type { Database } from '../db/connection.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../lib/logger.js';
import type { Clock } from '../lib/clock.js';
import { redact, redactError } from '../lib/redact.js';
import { ExitCode } from '../cli/exit-codes.js';
import type { JobDefinition, JobResult } from './types.js';
import { timeSourceFor, type TimeSource } from './time-source.js';
import type { JobMetrics } from './metrics.js';
import { withJobLock, type LockCheck } from './job-lock.js';
import { closeAbandoned, finishRun, hasSucceeded, INTERRUPTED, LOCK_LOST, recordSkipped, startRun } from './ledger.js';
import { duePeriods, type RetryPolicy } from './due.js';

/** Everything a run needs besides the job; built once by `run` or `schedule`. */
export interface RunnerEnv {
  database: Database;
  config: Config;
  logger: Logger;
  clock: Clock;
  fetch: typeof fetch;
  home: string;
  time: TimeSource;
  /** host:pid, stored with every ledger row. */
  instance: string;
  retry: RetryPolicy;
  /** Aborted on shutdown: no new work, and jobs are asked to stop. */
  signal: AbortSignal;
  metrics?: JobMetrics;
  /** Ledger ids of runs in progress, so a stop that cannot wait can mark them interrupted. */
  active?: Set<number>;
  /** How often the job lock's connection is checked (default LOCK_CHECK). */
  lockCheck?: LockCheck;
}

export type RunOutcome =
  | { job: string; period: string; status: 'succeeded'; runId: number; durationMs: number; result: JobResult }
  | { job: string; period: string; status: 'failed'; runId: number; durationMs: number; error: string; needsPerson: boolean }
  | { job: string; period: string; status: 'skipped'; reason: string }
  | { job: string; period: string; status: 'deferred'; retryAt: Date; failures: number }
  | { job: string; period: string; status: 'already-done' };

export function instanceName(): string {
  return `${hostname()}:${process.pid}`;
}

/** The environment `run`, `schedule` and the demo build from a command's context. */
export function runnerEnvFor(
  database: Database,
  ctx: { config: Config; logger: Logger; clock: Clock; home: string },
  extra: { signal?: AbortSignal; metrics?: JobMetrics } = {},
): RunnerEnv {
  return {
    database,
    config: ctx.config,
    logger: ctx.logger,
    clock: ctx.clock,
    fetch: globalThis.fetch,
    home: ctx.home,
    time: timeSourceFor(database, ctx.clock),
    instance: instanceName(),
    retry: retryPolicy(ctx.config),
    signal: extra.signal ?? new AbortController().signal,
    ...(extra.metrics ? { metrics: extra.metrics } : {}),
  };
}

export function retryPolicy(config: Config): RetryPolicy {
  return { baseMs: config.schedule.retryBaseSeconds * 1000, maxMs: config.schedule.retryMaxSeconds * 1000 };
}

/**
 * Run one job for one period, wrapped the same way every time: take the job's advisory lock (or skip,
 * saying who holds it), close rows left 'running' by a dead process, check again that the period has
 * not succeeded meanwhile, record 'running', run, record the outcome. A failure is recorded and
 * returned, never thrown: one job's trouble does not stop the others.
 */
export async function runJobPeriod(job: JobDefinition, period: string, env: RunnerEnv, options: { recordSkip: boolean }): Promise<RunOutcome> {
  const log = env.logger.child({ job: job.name, period });
  const outcome = await withJobLock(env.database, job.name, async (lockSession, lockLost) => {
    // The ledger is written on the lock's session; once that is lost, through the pool (finishRun only
    // changes a row still 'running': one another instance closed as abandoned stays as it said).
    const session = { query: <R>(text: string, params?: readonly unknown[]) => (lockLost.aborted ? env.database.query<R>(text, params) : lockSession.query<R>(text, params)) };
    const signal = AbortSignal.any([env.signal, lockLost]);
    const abandoned = await closeAbandoned(session, job.name, await env.time.now());
    if (abandoned) log.warn({ abandoned }, 'an earlier run of this job was left unfinished by a process that stopped; it is marked failed and runs again');
    if (await hasSucceeded(session, job.name, period)) return { job: job.name, period, status: 'already-done' } as const;

    const started = await env.time.now();
    const runId = await startRun(session, job.name, period, started, env.instance);
    env.active?.add(runId);
    const runLog = log.child({ runId });
    runLog.info('job started');
    const t0 = performance.now();
    try {
      const result = await job.run({
        job: job.name,
        period,
        runId,
        database: env.database,
        config: env.config,
        logger: runLog,
        clock: env.clock,
        fetch: env.fetch,
        home: env.home,
        signal,
      });
      // The work is done; a lock lost meanwhile means another instance may be doing it again, which is
      // why jobs stop on the signal: say so, and record it as done (it is).
      if (lockLost.aborted) log.warn('the connection holding this job\'s lock was lost while it ran; its work finished and is recorded');
      const durationMs = performance.now() - t0;
      await finishRun(session, runId, {
        status: 'succeeded',
        at: await env.time.now(),
        rowsIn: result.rowsIn,
        rowsLoaded: result.rowsLoaded,
        rowsRejected: result.rowsRejected,
        detail: result.detail === undefined ? undefined : redact(result.detail),
      });
      env.metrics?.recordRun(job, 'succeeded', durationMs, result);
      runLog.info({ rowsIn: result.rowsIn, rowsLoaded: result.rowsLoaded, rowsRejected: result.rowsRejected, ms: Math.round(durationMs) }, 'job succeeded');
      return { job: job.name, period, status: 'succeeded', runId, durationMs, result } as const;
    } catch (error) {
      const durationMs = performance.now() - t0;
      // A job that stopped because the scheduler asked it to did nothing wrong: no backoff for that.
      const message = env.signal.aborted ? INTERRUPTED : lockLost.aborted ? LOCK_LOST : redactError(error);
      const needsPerson = (error as { exitCode?: number })?.exitCode === ExitCode.needsPerson;
      await finishRun(session, runId, { status: 'failed', at: await env.time.now(), detail: message });
      env.metrics?.recordRun(job, 'failed', durationMs, {});
      runLog.error({ err: error, needsPerson, ms: Math.round(durationMs) }, 'job failed; it is retried with backoff');
      return { job: job.name, period, status: 'failed', runId, durationMs, error: message, needsPerson } as const;
    } finally {
      env.active?.delete(runId);
    }
  }, env.lockCheck);
  if (outcome.locked) return outcome.value;

  const reason = `${job.name} is already running in ${outcome.heldBy}`;
  log.info({ heldBy: outcome.heldBy }, `skipped: ${reason}`);
  if (options.recordSkip && outcome.heldBy === 'another process') {
    await recordSkipped(env.database, job.name, period, await env.time.now(), env.instance, reason);
  }
  env.metrics?.recordSkip(job);
  return { job: job.name, period, status: 'skipped', reason };
}

/**
 * Every due period of one job, oldest first (catch-up included). Periods in backoff are reported as
 * deferred unless `ignoreBackoff`; a stop request ends the loop between periods.
 */
/** How far behind the host's clock the database's may be for a tick to wait for it. */
const MAX_CLOCK_LAG_MS = 120_000;

export async function runDuePeriods(
  job: JobDefinition,
  env: RunnerEnv,
  options: { recordSkip: boolean; ignoreBackoff?: boolean; notBefore?: Date },
): Promise<RunOutcome[]> {
  let now = await env.time.now();
  // A cron tick fires on this host's clock, periods are due by the database's. A host a few seconds
  // ahead would find nothing due yet and leave the work to the next sweep: wait for the database to
  // reach the tick (briefly; a clock that is far off is the sweep's to catch).
  const lag = options.notBefore ? options.notBefore.getTime() - now.getTime() : 0;
  if (lag > 0 && lag <= MAX_CLOCK_LAG_MS) {
    try {
      await sleep(lag + 50, undefined, { signal: env.signal });
    } catch {
      return [];
    }
    now = await env.time.now();
  }
  const due = await duePeriods(env.database, job, now, env.retry);
  const outcomes: RunOutcome[] = [];
  for (const item of due) {
    if (env.signal.aborted) break;
    if (item.retryAt && !options.ignoreBackoff) {
      outcomes.push({ job: job.name, period: item.period, status: 'deferred', retryAt: item.retryAt, failures: item.failures });
      continue;
    }
    const outcome = await runJobPeriod(job, item.period, env, { recordSkip: options.recordSkip });
    outcomes.push(outcome);
    // Another process has the job: it will work through the remaining periods itself.
    if (outcome.status === 'skipped') break;
  }
  return outcomes;
}
