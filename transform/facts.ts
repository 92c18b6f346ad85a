import type { Session } from '../db/connection.js';

/**
 * repwatch.ip_day_fact: SNDS rows and complaints summed per IP and UTC day.
 *
 * - SNDS: within one feed, the rows of an IP and day (activity periods) are summed, the colour is the
 *   worst (RED > YELLOW > GREEN), the band the highest, trap hits summed (null when SNDS gave none).
 *   When several feeds report the same IP and day, one feed is used: the one with the most recipients,
 *   then the first by name. SNDS data is per IP, so two accounts that can both see an IP report the
 *   same traffic; adding them would count it twice.
 * - Complaints: the sum of `incidents` of complaint reports (is_complaint) by source IP and day.
 *
 * `days` null rebuilds every day; otherwise exactly those days are rewritten.
 */
const FACTS_SQL = `
with snds_feed_day as (
  select r.ip, r.day, r.feed,
    sum(r.rcpt_commands) as rcpt_commands,
    sum(r.data_commands) as data_commands,
    sum(r.message_recipients) as message_recipients,
    max(case upper(r.filter_result) when 'RED' then 3 when 'YELLOW' then 2 when 'GREEN' then 1 end) as worst,
    coalesce(bool_or(upper(r.filter_result) = 'RED'), false) as has_red,
    coalesce(bool_or(upper(r.filter_result) = 'YELLOW'), false) as has_yellow,
    (array_agg(r.complaint_band order by coalesce(r.complaint_rate_high, r.complaint_rate_low) desc nulls last,
                                         r.complaint_rate_low desc nulls last)
       filter (where r.complaint_band is not null and r.complaint_band <> ''))[1] as band,
    sum(r.trap_hits) as trap_hits
  from repwatch.snds_row r
  where $1::date[] is null or r.day = any($1::date[])
  group by r.ip, r.day, r.feed
),
snds as (
  select distinct on (ip, day) *
  from snds_feed_day
  order by ip, day, message_recipients desc nulls last, feed
),
complaint as (
  select c.source_ip as ip, c.day, sum(c.incidents) as complaints
  from repwatch.feedback_report c
  where c.is_complaint and c.source_ip is not null and c.day is not null
    and ($1::date[] is null or c.day = any($1::date[]))
  group by c.source_ip, c.day
),
written as (
  insert into repwatch.ip_day_fact (ip, day, rcpt_commands, data_commands, message_recipients, filter_result,
  snds_complaint_band, trap_hits, complaints, has_snds, has_red, has_yellow, snds_feed)
select coalesce(s.ip, c.ip), coalesce(s.day, c.day), s.rcpt_commands, s.data_commands, s.message_recipients,
  case s.worst when 3 then 'RED' when 2 then 'YELLOW' when 1 then 'GREEN' end,
  s.band, s.trap_hits, coalesce(c.complaints, 0), s.ip is not null,
  coalesce(s.has_red, false), coalesce(s.has_yellow, false), s.feed
from snds s
full join complaint c on c.ip = s.ip and c.day = s.day
-- Written in day order: a decision window then reads only its own days' pages, not the whole table.
order by 2, 1
returning 1
)
select count(*) as n from written`;

/** Rewrite the facts of `days` (null: all days). Returns the fact rows written. */
export async function recomputeFacts(session: Pick<Session, 'query'>, days: readonly string[] | null): Promise<number> {
  if (days === null) await session.query('delete from repwatch.ip_day_fact');
  else await session.query('delete from repwatch.ip_day_fact where day = any($1::date[])', [days]);
  const counted = await session.query<{ n: number }>(FACTS_SQL, [days]);
  return counted[0]?.n ?? 0;
}
