import type { Migration } from './migration.js';

/** Daily facts per IP, IP pools, block evidence, decisions with history, and the BI views over them. */
export const migration: Migration = {
  id: 4,
  name: 'ip-day-and-flags',
  sql: String.raw`
-- SNDS rows and complaints summed per IP and day; rewritten for exactly the days an ingest touches
-- (transform/recompute.ts). When several feeds report the same IP and day, one feed is used (the
-- one with the most recipients, then the first by name): SNDS data is per IP, so two accounts that
-- both see an IP see the same traffic, and adding them would count it twice.
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
  -- "days with a RED (YELLOW) row": a day can have both, so the worst colour alone is not enough.
  has_red              boolean not null default false,
  has_yellow           boolean not null default false,
  snds_feed            text,
  primary key (ip, day)
);
create index if not exists ip_day_fact_day on repwatch.ip_day_fact (day);

-- Named CIDR lists from the config's pools key, rewritten at every recompute (pool "all" always).
create table if not exists repwatch.ip_pool (
  pool  text not null,
  cidr  cidr not null,
  primary key (pool, cidr)
);

-- Evidence of blocks and warnings from other sources (bounces, DNSBL checks, delisting cases),
-- filled by those stages. Decisions read the rows whose day lies in the decision window.
create table if not exists repwatch.block_evidence (
  ip      inet not null,
  day     date not null,
  kind    text not null check (kind in ('block', 'warning')),
  route   text null,
  reason  text null,
  source  text not null,
  detail  text null,
  ref_id  bigint null
);
create index if not exists block_evidence_ip_day on repwatch.block_evidence (ip, day);
create index if not exists block_evidence_day on repwatch.block_evidence (day);

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
  window_days        int not null default 7,
  computed_at        timestamptz not null default now(),
  primary key (as_of, ip)
);

-- The current block list is small; materialising it once keeps the per-row test a scan of a few
-- ranges instead of re-running the "latest download per feed" query for every IP and day.
create or replace view analytics.ip_day as
  with blocked_range as materialized (
    select first_ip, last_ip from analytics.ip_status where blocked
  )
  select f.ip, f.day, f.rcpt_commands, f.data_commands, f.message_recipients, f.filter_result,
         f.snds_complaint_band, f.trap_hits, f.complaints,
         case when coalesce(f.message_recipients, 0) > 0
              then f.complaints::numeric / f.message_recipients end as complaint_rate,
         exists (select 1 from blocked_range b where f.ip between b.first_ip and b.last_ip) as blocked
  from repwatch.ip_day_fact f;

-- Rolling sums per IP over the days that have facts. RANGE frames count calendar days, so a day
-- without data inside the window counts as zero rather than stretching the window.
create or replace view analytics.ip_trend as
  with rolled as (
    select f.ip, f.day, f.message_recipients, f.complaints, f.trap_hits, f.filter_result,
      coalesce(sum(f.message_recipients) over w7, 0) as recipients_7d,
      coalesce(sum(f.complaints) over w7, 0) as complaints_7d,
      coalesce(sum(f.trap_hits) over w7, 0) as trap_hits_7d,
      count(*) filter (where f.has_red) over w7 as red_days_7d,
      count(*) filter (where f.has_yellow) over w7 as yellow_days_7d,
      coalesce(sum(f.message_recipients) over w28, 0) as recipients_28d,
      coalesce(sum(f.complaints) over w28, 0) as complaints_28d,
      coalesce(sum(f.trap_hits) over w28, 0) as trap_hits_28d,
      count(*) filter (where f.has_red) over w28 as red_days_28d,
      count(*) filter (where f.has_yellow) over w28 as yellow_days_28d,
      coalesce(sum(f.message_recipients) over prev7, 0) as recipients_prev_7d,
      coalesce(sum(f.complaints) over prev7, 0) as complaints_prev_7d
    from repwatch.ip_day_fact f
    window w7 as (partition by f.ip order by f.day range between interval '6 days' preceding and current row),
           w28 as (partition by f.ip order by f.day range between interval '27 days' preceding and current row),
           prev7 as (partition by f.ip order by f.day range between interval '13 days' preceding and interval '7 days' preceding)
  )
  select ip, day, message_recipients, complaints, trap_hits, filter_result,
    recipients_7d, complaints_7d, trap_hits_7d,
    case when recipients_7d > 0 then complaints_7d::numeric / recipients_7d end as complaint_rate_7d,
    red_days_7d, yellow_days_7d,
    recipients_28d, complaints_28d, trap_hits_28d,
    case when recipients_28d > 0 then complaints_28d::numeric / recipients_28d end as complaint_rate_28d,
    red_days_28d, yellow_days_28d,
    recipients_prev_7d,
    case when recipients_prev_7d > 0 then complaints_prev_7d::numeric / recipients_prev_7d end as complaint_rate_prev_7d,
    -- Relative change of volume (0.25 = +25 %); null when the previous week had none.
    case when recipients_prev_7d > 0 then recipients_7d::numeric / recipients_prev_7d - 1 end as volume_change_wow,
    -- Change of the rate in absolute terms (0.001 = +0.1 percentage point): relative changes of
    -- small rates swing wildly and mean little.
    case when recipients_7d > 0 and recipients_prev_7d > 0
         then complaints_7d::numeric / recipients_7d - complaints_prev_7d::numeric / recipients_prev_7d end as complaint_rate_change_wow
  from rolled;

-- An IP belongs to a pool when any CIDR of the pool contains it (counted once however many do).
create or replace view analytics.pool_day as
  with member as (
    select distinct p.pool, f.ip, f.day
    from repwatch.ip_day_fact f
    join repwatch.ip_pool p on f.ip <<= p.cidr
  ),
  blocked_range as materialized (
    select first_ip, last_ip from analytics.ip_status where blocked
  )
  select m.pool, m.day,
    count(*) as ips,
    sum(f.rcpt_commands) as rcpt_commands,
    sum(f.data_commands) as data_commands,
    coalesce(sum(f.message_recipients), 0) as message_recipients,
    sum(f.complaints) as complaints,
    case when sum(f.message_recipients) > 0 then sum(f.complaints)::numeric / sum(f.message_recipients) end as complaint_rate,
    coalesce(sum(f.trap_hits), 0) as trap_hits,
    count(*) filter (where f.has_red) as red_ips,
    count(*) filter (where f.has_yellow) as yellow_ips,
    count(*) filter (where exists (select 1 from blocked_range b where f.ip between b.first_ip and b.last_ip)) as blocked_ips
  from member m
  join repwatch.ip_day_fact f on f.ip = m.ip and f.day = m.day
  group by m.pool, m.day;

create or replace view analytics.ip_flag as
  select as_of, ip, status, reasons, recipients_7d, complaints_7d, complaint_rate_7d, trap_hits_7d, blocked, route
  from repwatch.ip_flag;

-- Decisions per pool and as-of date: how many IPs of each status.
create or replace view analytics.pool_flag as
  with member as (
    select distinct p.pool, g.as_of, g.ip
    from repwatch.ip_flag g
    join repwatch.ip_pool p on g.ip <<= p.cidr
  )
  select m.pool, m.as_of,
    count(*) as ips,
    count(*) filter (where g.status = 'start_delisting') as start_delisting,
    count(*) filter (where g.status = 'fix_first') as fix_first,
    count(*) filter (where g.status = 'at_risk') as at_risk,
    count(*) filter (where g.status = 'ok') as ok,
    count(*) filter (where g.status = 'no_data') as no_data,
    coalesce(sum(g.recipients_7d), 0) as recipients_7d,
    coalesce(sum(g.complaints_7d), 0) as complaints_7d
  from member m
  join repwatch.ip_flag g on g.as_of = m.as_of and g.ip = m.ip
  group by m.pool, m.as_of;

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
