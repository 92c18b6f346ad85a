import type { Database } from '../db/connection.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../lib/logger.js';
import type { Clock } from '../lib/clock.js';
import type { CronSchedule } from './cron.js';

/**
 * A job: a name, a schedule, a rule that turns a cron tick into the period it covers, and a function
 * that does the work for one period. The runner (jobs/runner.ts) wraps every job the same way — lock,
 * ledger, backoff — whether `repwatch run` or `repwatch schedule` started it.
 */
export interface JobDefinition {
  /** Ledger name, e.g. `snds:main`, `jmrp:complaints`, `report:weekly`. */
  name: string;
  /** What kind of work, for metrics and status (`snds`, `jmrp`, `bounces`, `report`, `blocklists`). */
  kind: string;
  schedule: CronSchedule;
  /** The period a tick stands for: a day, a minute batch, an ISO week. */
  periodOf(tick: Date): string;
  /**
   * `every`: each missed tick's period within the horizon is run (SNDS days, weekly reports).
   * `latest`: only the latest tick matters, because one run catches up everything (draining a mailbox).
   */
  catchUp: 'every' | 'latest';
  /** How far back missed ticks are still run. */
  horizonMs: number;
  run(context: JobContext): Promise<JobResult>;
}

export interface JobContext {
  job: string;
  period: string;
  /** The ledger row of this attempt. */
  runId: number;
  database: Database;
  config: Config;
  logger: Logger;
  clock: Clock;
  fetch: typeof fetch;
  /** $REPWATCH_HOME: where files the jobs keep live by default (the SNDS API token file). */
  home: string;
  /** Aborted when the scheduler is told to stop: finish the current batch and return or throw. */
  signal: AbortSignal;
}

/** What a job reports; counts land in the ledger and the metrics. */
export interface JobResult {
  rowsIn?: number;
  rowsLoaded?: number;
  rowsRejected?: number;
  /** Complaints loaded (JMRP), for the metrics. */
  complaints?: number;
  /** A short human summary stored with the run (redacted before it is stored). */
  detail?: string;
}
