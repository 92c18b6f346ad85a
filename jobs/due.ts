import type { Database } from '../db/connection.js';
import type { JobDefinition } from './types.js';
import { failuresSinceSuccess, periodStates } from './ledger.js';

export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
}

/** The wait before attempt n+1 after n failures: base, 2·base, 4·base … capped. */
export function backoffMs(failures: number, policy: RetryPolicy): number {
  if (failures <= 0) return 0;
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(failures - 1, 30));
}

export interface DuePeriod {
  period: string;
  /** The tick that made it due (the latest one when several ticks share the period). */
  tick: Date;
  failures: number;
  /** Set when the period failed and its backoff has not run out: not run before this time. */
  retryAt: Date | null;
}

/**
 * The periods of a job that should run at `now`: the periods of the ticks within the horizon (or only
 * the latest tick, for jobs whose one run catches up everything) that have not succeeded, oldest
 * first. Periods still in backoff come back with `retryAt` set so callers can say when. Computed from
 * the ledger alone, so every instance — and `repwatch run` from cron — reaches the same answer.
 */
export async function duePeriods(database: Database, job: JobDefinition, now: Date, retry: RetryPolicy): Promise<DuePeriod[]> {
  const ticks =
    job.catchUp === 'every'
      ? job.schedule.ticksBetween(new Date(now.getTime() - job.horizonMs), now)
      : [job.schedule.previousTick(now, job.horizonMs)].filter((t): t is Date => t !== null);
  if (ticks.length === 0) return [];
  const byPeriod = new Map<string, Date>();
  for (const tick of ticks) byPeriod.set(job.periodOf(tick), tick);
  const states = await periodStates(database, job.name, [...byPeriod.keys()]);
  const jobWide = job.catchUp === 'latest' ? await failuresSinceSuccess(database, job.name) : null;

  const due: DuePeriod[] = [];
  for (const [period, tick] of byPeriod) {
    const state = states.get(period);
    if (state?.succeeded) continue;
    const failures = jobWide?.failures ?? state?.failures ?? 0;
    const lastFailure = jobWide ? jobWide.lastFailure : (state?.lastFailure ?? null);
    const wait = backoffMs(failures, retry);
    const retryAt = lastFailure && wait > 0 && lastFailure.getTime() + wait > now.getTime() ? new Date(lastFailure.getTime() + wait) : null;
    due.push({ period, tick, failures, retryAt });
  }
  return due.sort((a, b) => a.tick.getTime() - b.tick.getTime());
}
