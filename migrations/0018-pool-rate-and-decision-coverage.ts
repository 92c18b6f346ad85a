import type { Migration } from './migration.js';

/**
 * Two things BI tools read wrongly before.
 *
 * analytics.pool_day's complaint_rate divided every complaint of the pool's IPs by the recipients of
 * the IPs that had SNDS volume: the complaints of an IP (or an IP's day) without volume were rated
 * against other IPs' traffic (5 complaints of an unknown IP over another IP's 4,000 recipients made a
 * 0.125 % day). The rate now counts only the complaints of IP-days with recipients, the rule of the
 * weekly report's headline; `complaints` still counts them all. Same columns, same types.
 *
 * analytics.decision_coverage (new) says, per as-of date of the decisions, snds_through: the latest
 * day on or before it up to which every SNDS feed that reported in the 28 days before it has delivered
 * (rows, or an answer of "no data"). A
 * date whose snds_through is earlier was decided while SNDS data was still missing for some of its
 * window (those days count as clean): dashboards pick their "latest decisions" as the latest as_of
 * with complete = true. A view of its own rather than columns added to decision_basis, so that each
 * migration's text stays re-runnable.
 */
export const migration: Migration = {
  id: 18,
  name: 'pool-rate-and-decision-coverage',
  sql: String.raw`
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
    case when sum(f.message_recipients) > 0
         then coalesce(sum(f.complaints) filter (where f.message_recipients > 0), 0)::numeric / sum(f.message_recipients) end as complaint_rate,
    coalesce(sum(f.trap_hits), 0) as trap_hits,
    count(*) filter (where f.has_red) as red_ips,
    count(*) filter (where f.has_yellow) as yellow_ips,
    count(*) filter (where exists (select 1 from blocked_range b where f.ip between b.first_ip and b.last_ip)) as blocked_ips
  from member m
  join repwatch.ip_day_fact f on f.ip = m.ip and f.day = m.day
  group by m.pool, m.day;

create or replace view analytics.decision_coverage as
  with delivered as (
    -- A day a feed has rows for, or whose download for that day answered "no data" (no IP reached
    -- SNDS's threshold); an empty answer of a link without a day says nothing about which day.
    select feed, day from repwatch.snds_feed_day
    union
    select feed, requested_day from repwatch.raw_download
     where kind = 'ip_data' and outcome = 'empty' and requested_day is not null
  )
  select d.as_of, t.snds_through, coalesce(t.snds_through = d.as_of, false) as complete
  from (select distinct as_of from repwatch.ip_flag) d
  cross join lateral (
    select min(f.last_day) as snds_through
    from (select feed, max(day) as last_day
            from delivered
           where day <= d.as_of
           group by feed
          having max(day) > d.as_of - 28) f
  ) t;
`,
};
