import type { Session } from '../db/connection.js';
import { notePendingDays } from '../transform/recompute.js';
import { CLOSED_STATES, insertRelistedEvidence } from './cases.js';

/**
 * An IP blocked again after its case was closed (mitigated or delisted) is a relisting: the case moves
 * to `relisted` with a message saying what was seen, and a `relisted` warning is written as block
 * evidence for the day the block was seen, so the decisions carry reason `relisted`.
 *
 * Two signals: block evidence from bounces dated after the day the case closed, and a blocked range of
 * the current SNDS IP Status list whose content was first downloaded after the case closed. Run after every bounce ingest and
 * block list check; cheap (cases are few), idempotent (a relisted case is not relisted twice).
 */
export async function detectRelistings(session: Pick<Session, 'query'>, at: Date): Promise<{ cases: number[]; days: string[] }> {
  const hits = await session.query<{ id: number; target: string; day: string; detail: string }>(
    `with closed as (
       select id, target, closed_at from repwatch.delist_case
       where state = any($1::text[]) and closed_at is not null
     ),
     from_bounces as (
       select distinct on (c.id) c.id, c.target, e.day, coalesce(e.detail, 'block evidence') as detail
       from closed c
       join repwatch.block_evidence e on e.kind = 'block' and e.ip <<= c.target and e.day > (c.closed_at at time zone 'UTC')::date
       order by c.id, e.day, e.detail
     ),
     -- The current list counts from when its content was first downloaded: the same bytes fetched again
     -- after the closing (a duplicate download) say nothing new.
     from_status as (
       select distinct on (c.id) c.id, c.target, (first.fetched_at at time zone 'UTC')::date as day,
              'SNDS IP Status lists ' || host(r.first_ip) || '-' || host(r.last_ip) || coalesce(': ' || r.details, '') as detail
       from closed c
       join repwatch.current_status_download d on true
       join repwatch.raw_download first on first.id = d.id and first.fetched_at > c.closed_at
       join repwatch.snds_status_range r on r.download_id = d.id and r.blocked
         and r.first_ip <= host(broadcast(c.target))::inet and r.last_ip >= host(network(c.target))::inet
       order by c.id, first.fetched_at
     )
     select distinct on (id) id, target::text as target, day::text as day, detail
     from (select * from from_bounces union all select * from from_status) h
     order by id, day`,
    [CLOSED_STATES],
  );
  const days = new Set<string>();
  for (const hit of hits) {
    await session.query(
      `update repwatch.delist_case set state = 'relisted', state_changed_at = $2::timestamptz, relisted_at = $2::timestamptz where id = $1::bigint`,
      [hit.id, at],
    );
    await session.query(
      `insert into repwatch.delist_case_message (case_id, at, state, direction, body) values ($1::bigint, $2::timestamptz, 'relisted', null, $3::text)`,
      [hit.id, at, `repwatch: blocked again on ${hit.day} after the block was lifted. ${hit.detail}`.slice(0, 4000)],
    );
    await insertRelistedEvidence(session, hit.id, hit.target, hit.day, hit.detail);
    days.add(hit.day);
  }
  await notePendingDays(session, [...days]);
  return { cases: hits.map((h) => h.id), days: [...days].sort() };
}
