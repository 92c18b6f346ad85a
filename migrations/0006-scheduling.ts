import type { Migration } from './migration.js';

/**
 * Scheduling: the ledger lookups the job runner makes on every tick, and a heartbeat per running
 * scheduler so `status` can say which instances are alive. The ledger itself (repwatch.pipeline_run,
 * with its one-success-per-(job, period) index) is core and lives in 0001.
 */
export const migration: Migration = {
  id: 6,
  name: 'scheduling',
  sql: String.raw`
-- "Has (job, period) succeeded, how often did it fail, when last": asked for every due period on every
-- tick, by every instance.
create index if not exists pipeline_run_job_period on repwatch.pipeline_run (job, period, started_at desc);
-- Rows left 'running' by a process that died are found by status.
create index if not exists pipeline_run_running on repwatch.pipeline_run (job) where status = 'running';

-- One row per scheduler process (host:pid), refreshed every 30 seconds while it runs; deleted on a clean
-- stop. A row whose heartbeat is old belongs to a process that died without stopping.
create table if not exists repwatch.scheduler_instance (
  instance      text primary key,
  started_at    timestamptz not null,
  heartbeat_at  timestamptz not null,
  version       text,
  http_port     int,
  jobs          text[] not null default '{}'
);
`,
};
