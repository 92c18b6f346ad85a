import { schedule as cronSchedule, type ScheduledTask } from 'node-cron';
import type { Logger } from '../lib/logger.js';
import { redactError } from '../lib/redact.js';
import type { JobDefinition } from './types.js';
import { runDuePeriods, type RunnerEnv, type RunOutcome } from './runner.js';
import { closeInterrupted } from './ledger.js';

export interface SchedulerOptions {
  env: Omit<RunnerEnv, 'signal' | 'active'>;
  jobs: readonly JobDefinition[];
  /** How often every job is checked for missed ticks and retries whose backoff ran out. */
  sweepMs?: number;
  heartbeatMs?: number;
  /** Jobs of different names run side by side up to this many (one job never runs twice). */
  maxConcurrent?: number;
  version?: string;
  httpPort?: number | null;
}

type Trigger = 'start' | 'tick' | 'sweep';

/**
 * The long-running scheduler. node-cron fires each job at its ticks; on start and every sweep, every
 * job is checked for periods missed within its horizon and for failures whose backoff has run out
 * (graphile-worker's backfill, computed from the ledger). Every run goes through the same runner as
 * `repwatch run`, so the advisory lock and the ledger keep several schedulers (and cron-started runs)
 * from doing a period twice. Loop errors are logged and counted; they never end the process.
 */
export class Scheduler {
  private readonly controller = new AbortController();
  private readonly active = new Set<number>();
  private readonly evaluating = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly tasks: ScheduledTask[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  private readonly env: RunnerEnv;
  private readonly log: Logger;
  private readonly maxConcurrent: number;
  private started = false;
  private lastHeartbeatOk = true;

  constructor(private readonly options: SchedulerOptions) {
    this.env = { ...options.env, signal: this.controller.signal, active: this.active };
    this.log = options.env.logger.child({ component: 'scheduler', instance: options.env.instance });
    this.maxConcurrent = options.maxConcurrent ?? 2;
  }

  get stopping(): boolean {
    return this.controller.signal.aborted;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.heartbeat();
    const cronLogger = {
      info: (m: string) => this.log.debug({ source: 'node-cron' }, m),
      warn: (m: string) => this.log.warn({ source: 'node-cron' }, m),
      error: (m: string | Error, e?: Error) => this.log.error({ source: 'node-cron', err: e ?? m }, String(m)),
      debug: (m: string | Error) => this.log.debug({ source: 'node-cron' }, String(m)),
    };
    for (const job of this.options.jobs) {
      const task = cronSchedule(job.schedule.expression, () => this.trigger(job, 'tick'), {
        timezone: job.schedule.timezone,
        name: job.name,
        logger: cronLogger,
        suppressMissedWarning: true,
      });
      this.tasks.push(task);
    }
    this.every(this.options.sweepMs ?? 60_000, () => {
      for (const job of this.options.jobs) this.trigger(job, 'sweep');
    });
    this.every(this.options.heartbeatMs ?? 30_000, () => void this.heartbeat());
    // Rows of schedulers that died without stopping are kept a day for `status`, then dropped.
    await this.env.database
      .query(`delete from repwatch.scheduler_instance where heartbeat_at < $1`, [new Date((await this.env.time.now()).getTime() - 86_400_000)])
      .catch((error) => this.log.warn({ err: error }, 'could not prune old scheduler heartbeats'));
    this.log.info({ jobs: this.options.jobs.map((j) => `${j.name} @ ${j.schedule.expression} ${j.schedule.timezone}`) }, 'scheduler started');
    // Catch up at once: periods missed while nothing ran.
    for (const job of this.options.jobs) this.trigger(job, 'start');
  }

  /** Liveness for /livez: started, not stopping, and the heartbeat loop reaches the database. */
  live(): { ok: boolean; detail: string } {
    if (this.stopping) return { ok: false, detail: 'stopping' };
    return { ok: this.started, detail: this.started ? 'alive' : 'starting' };
  }

  heartbeatOk(): boolean {
    return this.lastHeartbeatOk;
  }

  /** Jobs and periods being worked on now (for logs on shutdown). */
  busyJobs(): string[] {
    return [...this.evaluating];
  }

  /**
   * Take no new work, ask running jobs to stop, wait up to graceMs for them; runs still going after
   * that are marked interrupted in the ledger (their transactions roll back when the connection
   * closes) and run again next time. Resolves with whether everything finished in time.
   */
  async stop(graceMs: number): Promise<{ finished: boolean; interrupted: number[] }> {
    if (!this.stopping) this.controller.abort();
    for (const task of this.tasks.splice(0)) await Promise.resolve(task.destroy()).catch(() => undefined);
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    for (const wake of this.waiting.splice(0)) wake();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      Promise.allSettled([...this.inFlight]).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]);
    clearTimeout(timer);
    const interrupted = [...this.active];
    if (!finished && interrupted.length) {
      await closeInterrupted(this.env.database, interrupted, await this.env.time.now()).catch((error) =>
        this.log.error({ err: error }, 'could not mark the interrupted runs; the next run marks them abandoned'),
      );
    }
    await this.env.database
      .query('delete from repwatch.scheduler_instance where instance = $1', [this.env.instance])
      .catch(() => undefined);
    this.log.info({ finished, interrupted }, finished ? 'scheduler stopped; no job was in hand or it finished' : 'scheduler stopped; jobs in hand were interrupted and will run again');
    return { finished, interrupted };
  }

  /** Resolves once every run in hand has returned, also runs stop() gave up on (a late finish writes
   * nothing over their interrupted rows; this is when that can be checked). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /** Evaluate one job now: run its due periods, unless this process is already at it. */
  trigger(job: JobDefinition, why: Trigger): void {
    if (this.stopping) return;
    if (this.evaluating.has(job.name)) {
      if (why === 'tick') this.log.info({ job: job.name }, 'tick skipped: the job is still running from an earlier tick (not started twice)');
      return;
    }
    this.evaluating.add(job.name);
    // A tick is due on the minute node-cron fired at (this host's clock, truncated to the minute).
    const notBefore = why === 'tick' ? new Date(Math.floor(Date.now() / 60_000) * 60_000) : undefined;
    const work = this.withSlot(() => runDuePeriods(job, this.env, { recordSkip: why !== 'sweep', ...(notBefore ? { notBefore } : {}) }))
      .then((outcomes) => this.logOutcomes(job, why, outcomes))
      .catch((error) => {
        this.options.env.metrics?.recordLoopError('run');
        this.log.error({ job: job.name, err: error, trigger: why }, `could not evaluate the job: ${redactError(error)}; trying again at the next sweep`);
      })
      .finally(() => {
        this.evaluating.delete(job.name);
        this.inFlight.delete(work);
      });
    this.inFlight.add(work);
  }

  private logOutcomes(job: JobDefinition, why: Trigger, outcomes: RunOutcome[]): void {
    for (const o of outcomes) {
      if (o.status === 'deferred') this.log.debug({ job: job.name, period: o.period, retryAt: o.retryAt, failures: o.failures, trigger: why }, 'retry waits for its backoff');
    }
  }

  /** Wait for one of maxConcurrent slots; a stop while waiting means the work is not started. */
  private async withSlot(fn: () => Promise<RunOutcome[]>): Promise<RunOutcome[]> {
    while (this.running >= this.maxConcurrent && !this.stopping) await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.stopping) return [];
    this.running += 1;
    try {
      return await fn();
    } finally {
      this.running -= 1;
      this.waiting.shift()?.();
    }
  }

  private every(ms: number, fn: () => void): void {
    this.timers.push(
      setInterval(() => {
        try {
          fn();
        } catch (error) {
          this.options.env.metrics?.recordLoopError('timer');
          this.log.error({ err: error }, 'scheduler loop error');
        }
      }, ms),
    );
  }

  private async heartbeat(): Promise<void> {
    try {
      const at = await this.env.time.now();
      await this.env.database.query(
        `insert into repwatch.scheduler_instance (instance, started_at, heartbeat_at, version, http_port, jobs)
         values ($1, $2, $2, $3, $4, $5)
         on conflict (instance) do update set heartbeat_at = excluded.heartbeat_at, jobs = excluded.jobs`,
        [this.env.instance, at, this.options.version ?? null, this.options.httpPort ?? null, this.options.jobs.map((j) => j.name)],
      );
      this.lastHeartbeatOk = true;
    } catch (error) {
      this.lastHeartbeatOk = false;
      this.options.env.metrics?.recordLoopError('heartbeat');
      this.log.error({ err: error }, 'heartbeat failed (database unreachable?); the scheduler keeps trying');
    }
  }
}
