import type { Database } from '../../db/connection.js';

/** How many days in a row of nothing make a feed suspicious (a dead link can answer 200 and nothing). */
export const EMPTY_DAYS_WARNING = 3;

/**
 * A warning when the feed's IP Data has come back empty for the last EMPTY_DAYS_WARNING data days
 * (each day judged by its latest download; a download without a requested day counts for the day it
 * was fetched). Null otherwise.
 */
export async function emptyDaysWarning(database: Pick<Database, 'query'>, feed: string): Promise<string | null> {
  const rows = await database.query<{ data_day: string; outcome: string }>(
    `select distinct on (data_day) data_day, outcome
       from (select coalesce(requested_day, (fetched_at at time zone 'UTC')::date) as data_day, outcome, fetched_at, id
               from repwatch.raw_download
              where feed = $1 and kind = 'ip_data' and outcome in ('loaded', 'empty', 'duplicate')) d
      order by data_day desc, fetched_at desc, id desc
      limit $2`,
    [feed, EMPTY_DAYS_WARNING * 4],
  );
  const latest = [...rows].sort((a, b) => (a.data_day < b.data_day ? 1 : -1)).slice(0, EMPTY_DAYS_WARNING);
  if (latest.length < EMPTY_DAYS_WARNING || latest.some((r) => r.outcome !== 'empty')) return null;
  const days = latest.map((r) => r.data_day).sort();
  return (
    `SNDS feed "${feed}" returned no data for ${EMPTY_DAYS_WARNING} days running (${days[0]} to ${days.at(-1)}): ` +
    'either no IP sent the ~100 messages a day SNDS needs, or the link no longer works; check the feed on the SNDS portal'
  );
}
