import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { JobDefinition, JobResult } from './types.js';
import type { StatusReport } from './status.js';

/**
 * The scheduler's Prometheus metrics, in a registry of its own (never prom-client's global one, which
 * other code could fill). Run counters come from this process; last-success times, complaints and
 * link days come from the database at scrape time, so they include runs of other instances and of
 * `repwatch run` from cron.
 */
export interface JobMetrics {
  registry: Registry;
  recordRun(job: JobDefinition, status: 'succeeded' | 'failed', durationMs: number, result: JobResult): void;
  recordSkip(job: JobDefinition): void;
  recordLoopError(loop: string): void;
}

export interface ScrapeState {
  status: StatusReport;
  complaints7d: number;
}

export function createJobMetrics(readState: () => Promise<ScrapeState>): JobMetrics {
  const registry = new Registry();
  const duration = new Histogram({
    name: 'repwatch_job_duration_seconds',
    help: 'Time a job took for one period, by job and outcome.',
    labelNames: ['job', 'kind', 'status'],
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [registry],
  });
  const runs = new Counter({ name: 'repwatch_job_runs_total', help: 'Job runs started by this process, by outcome (skipped: another process had the job).', labelNames: ['job', 'status'], registers: [registry] });
  const rowsLoaded = new Counter({ name: 'repwatch_rows_loaded_total', help: 'Rows loaded by jobs of this process.', labelNames: ['job'], registers: [registry] });
  const rowsRejected = new Counter({ name: 'repwatch_rows_rejected_total', help: 'Rows rejected (recorded with a reason) by jobs of this process.', labelNames: ['job'], registers: [registry] });
  const complaintsLoaded = new Counter({ name: 'repwatch_complaints_loaded_total', help: 'Complaint reports loaded by jobs of this process.', labelNames: ['job'], registers: [registry] });
  const loopErrors = new Counter({ name: 'repwatch_scheduler_errors_total', help: 'Errors caught in the scheduler loops (they are logged, and the loop goes on).', labelNames: ['loop'], registers: [registry] });

  // The database-backed gauges share one read per scrape.
  let pending: Promise<ScrapeState | null> | null = null;
  const state = (): Promise<ScrapeState | null> => {
    pending ??= readState()
      .catch(() => {
        loopErrors.inc({ loop: 'metrics' });
        return null;
      })
      .finally(() => setTimeout(() => (pending = null), 0));
    return pending;
  };
  const seconds = (d: Date | null) => (d ? d.getTime() / 1000 : undefined);

  // Last success and last failure per job: the same gauge over two ledger timestamps.
  const jobTimestampGauge = (name: string, help: string, pick: (job: StatusReport['jobs'][number]) => Date | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['job'],
      registers: [registry],
      async collect() {
        const s = await state();
        this.reset();
        for (const job of s?.status.jobs ?? []) {
          const v = seconds(pick(job));
          if (v !== undefined) this.set({ job: job.job }, v);
        }
      },
    });
  jobTimestampGauge('repwatch_job_last_success_timestamp_seconds', 'When each job last succeeded (any instance), as a Unix time.', (job) => job.lastSuccessAt);
  jobTimestampGauge('repwatch_job_last_failure_timestamp_seconds', 'When each job last failed (any instance), as a Unix time.', (job) => job.lastFailureAt);
  new Gauge({
    name: 'repwatch_job_stale',
    help: '1 when a job has not succeeded for its latest due period (what `repwatch status` exits 1 for).',
    labelNames: ['job'],
    registers: [registry],
    async collect() {
      const s = await state();
      this.reset();
      for (const job of s?.status.jobs ?? []) this.set({ job: job.job }, job.stale ? 1 : 0);
    },
  });
  new Gauge({
    name: 'repwatch_complaints_7d',
    help: 'Complaints (incidents) of the last 7 days in the warehouse.',
    registers: [registry],
    async collect() {
      const s = await state();
      if (s) this.set(s.complaints7d);
    },
  });
  new Gauge({
    name: 'repwatch_snds_link_days_left',
    help: 'Days until each SNDS automated-access link expires (0 or less: expired).',
    labelNames: ['feed'],
    registers: [registry],
    async collect() {
      const s = await state();
      this.reset();
      for (const feed of s?.status.feeds ?? []) if (feed.daysLeft !== null) this.set({ feed: feed.feed }, feed.daysLeft);
    },
  });
  new Gauge({
    name: 'repwatch_snds_days_without_data',
    help: 'Days since the last day with SNDS data, per feed.',
    labelNames: ['feed'],
    registers: [registry],
    async collect() {
      const s = await state();
      this.reset();
      for (const feed of s?.status.feeds ?? []) if (feed.daysWithoutData !== null) this.set({ feed: feed.feed }, feed.daysWithoutData);
    },
  });

  return {
    registry,
    recordRun(job, status, durationMs, result) {
      duration.observe({ job: job.name, kind: job.kind, status }, durationMs / 1000);
      runs.inc({ job: job.name, status });
      if (result.rowsLoaded) rowsLoaded.inc({ job: job.name }, result.rowsLoaded);
      if (result.rowsRejected) rowsRejected.inc({ job: job.name }, result.rowsRejected);
      if (result.complaints) complaintsLoaded.inc({ job: job.name }, result.complaints);
    },
    recordSkip(job) {
      runs.inc({ job: job.name, status: 'skipped' });
    },
    recordLoopError(loop) {
      loopErrors.inc({ loop });
    },
  };
}
