import type { Migration } from './migration.js';

/** Schemas, the run ledger, rejected-input records, the secret store and the BI role. */
export const migration: Migration = {
  id: 1,
  name: 'core',
  sql: String.raw`
create schema if not exists repwatch;
create schema if not exists analytics;

-- One row per attempt of a job for a period (a day, a mailbox batch, an ISO week). At most one
-- success per (job, period): the partial unique index is what makes "exactly once" hold across hosts.
create table if not exists repwatch.pipeline_run (
  id            bigint generated always as identity primary key,
  job           text not null,
  period        text not null,
  status        text not null check (status in ('running', 'succeeded', 'failed', 'skipped')),
  started_at    timestamptz not null default now(),
  finished_at   timestamptz,
  rows_in       int,
  rows_loaded   int,
  rows_rejected int,
  detail        text,
  instance      text
);
create index if not exists pipeline_run_job_started on repwatch.pipeline_run (job, started_at desc);
create unique index if not exists pipeline_run_one_success on repwatch.pipeline_run (job, period) where status = 'succeeded';

-- Every input that could not be used, with where it came from and why: rows of an SNDS export,
-- messages of a mailbox. Nothing bad is dropped silently.
create table if not exists repwatch.rejection (
  id           bigint generated always as identity primary key,
  source       text not null,
  input_id     bigint,
  location     text not null,
  line_no      int,
  reason       text not null,
  raw          text,
  recorded_at  timestamptz not null default now()
);
create index if not exists rejection_source_recorded on repwatch.rejection (source, recorded_at desc);
create index if not exists rejection_input on repwatch.rejection (source, input_id);

-- Secrets the program itself must keep (the SNDS REST refresh token when tokenStore = database).
create table if not exists repwatch.stored_secret (
  name        text primary key,
  value       text not null,
  updated_at  timestamptz not null default now()
);

-- The read-only role for BI tools. Creating roles needs CREATEROLE; without it the migration goes on
-- and the README says how an administrator creates the role.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'repwatch_bi') then
    begin
      create role repwatch_bi nologin;
    exception
      when insufficient_privilege then raise notice 'repwatch: no CREATEROLE privilege, role repwatch_bi not created';
      when duplicate_object or unique_violation then null; -- another process created it meanwhile
    end;
  end if;
end
$$;
`,
};
