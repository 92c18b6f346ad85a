import type { Migration } from './migration.js';

/** Daily facts per IP, decisions with history, and the BI views over them and the ledger. */
export const migration: Migration = {
  id: 4,
  name: 'ip-day-and-flags',
  sql: String.raw`
-- SNDS rows and complaints summed per IP and day; kept up to date for the days an ingest touches.
create table if not exists repwatch.ip_day_fact (
  ip                   inet not null,
  day                  date not null,
  rcpt_commands        bigint,
  data_commands        bigint,
  message_recipients   bigint,
  filter_result        text,
  snds_complaint_band  text,
  trap_hits            int,
  complaints           int not null default 0,
  has_snds             boolean not null default false,
  primary key (ip, day)
);
create index if not exists ip_day_fact_day on repwatch.ip_day_fact (day);

-- Decisions per as-of date; history is kept, a recomputation replaces that date's rows.
create table if not exists repwatch.ip_flag (
  as_of              date not null,
  ip                 inet not null,
  status             text not null check (status in ('start_delisting', 'fix_first', 'at_risk', 'ok', 'no_data')),
  reasons            text[] not null default '{}',
  recipients_7d      bigint not null default 0,
  complaints_7d      int not null default 0,
  complaint_rate_7d  numeric,
  trap_hits_7d       int not null default 0,
  red_days_7d        int not null default 0,
  yellow_days_7d     int not null default 0,
  blocked            boolean not null default false,
  route              text,
  routes             text[] not null default '{}',
  computed_at        timestamptz not null default now(),
  primary key (as_of, ip)
);

create or replace view analytics.ip_day as
  select f.ip, f.day, f.rcpt_commands, f.data_commands, f.message_recipients, f.filter_result,
         f.snds_complaint_band, f.trap_hits, f.complaints,
         case when coalesce(f.message_recipients, 0) > 0
              then round(f.complaints::numeric / f.message_recipients, 6) end as complaint_rate,
         exists (select 1 from analytics.ip_status s
                 where s.blocked and f.ip between s.first_ip and s.last_ip) as blocked
  from repwatch.ip_day_fact f;

create or replace view analytics.ip_flag as
  select as_of, ip, status, reasons, recipients_7d, complaints_7d, complaint_rate_7d, trap_hits_7d, blocked, route
  from repwatch.ip_flag;

create or replace view analytics.pipeline_run as
  select job, period, status, started_at, finished_at, rows_in, rows_loaded, rows_rejected, detail
  from repwatch.pipeline_run;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'repwatch_bi') then
    grant usage on schema analytics to repwatch_bi;
    grant select on all tables in schema analytics to repwatch_bi;
    alter default privileges in schema analytics grant select on tables to repwatch_bi;
  end if;
exception when insufficient_privilege then
  raise notice 'repwatch: cannot grant to repwatch_bi';
end
$$;
`,
};
