import type { Database, Session } from '../db/connection.js';
import type { Config } from '../config/schema.js';
import { isDay } from '../lib/clock.js';
import { recomputeFacts } from './facts.js';
import { refreshPools } from './pools.js';
import { beginRecompute, computeDecisionsIn, decisionSettings, POPULATION_DAYS } from './decisions.js';

export interface RecomputeSummary {
  /** Days whose facts were rewritten (null: all of them). */
  days: string[] | null;
  factRows: number;
  /** As-of dates whose decisions were recomputed, in order. */
  asOfDates: string[];
  decisions: number;
}

/**
 * Note days whose derived tables are out of date, inside the transaction that changed their data: if
 * the recompute that should follow never runs, the next one does it.
 */
export async function notePendingDays(session: Pick<Session, 'query'>, days: readonly string[]): Promise<void> {
  if (days.length === 0) return;
  await session.query(
    `insert into repwatch.recompute_pending (day) select distinct d from unnest($1::date[]) as t(d) on conflict (day) do nothing`,
    [days],
  );
}

/** How many days wait for a recompute, and since when (for status). */
export async function pendingDays(database: Pick<Database, 'query'>): Promise<{ days: number; oldest: Date | null }> {
  const [row] = await database.query<{ days: number; oldest: Date | null }>(
    'select count(*)::int as days, min(noted_at) as oldest from repwatch.recompute_pending',
  );
  return { days: row?.days ?? 0, oldest: row?.oldest ?? null };
}

/**
 * Bring the derived tables up to date for the days an ingest touched, and for every day still noted as
 * pending. Ingest commands call this after their data is committed; it runs in one transaction of its
 * own, serialised with other recomputes.
 */
export async function recomputeDays(database: Database, config: Config, days: readonly string[]): Promise<void> {
  await recompute(database, config, { days });
}

/** `repwatch transform --rebuild`: every fact and every decision from the raw tables. */
export function rebuildAll(database: Database, config: Config): Promise<RecomputeSummary> {
  return recompute(database, config, { days: null });
}

/**
 * Facts for exactly `days` plus the pending ones (null: all), then the decisions of every as-of date those days can change:
 * a day d is in the window of D for D in [d, d + windowDays - 1] and keeps its IP in the population
 * until d + 27, so D runs over [d, d + 27]. That range is cut to the days that have data (no
 * decisions for dates nothing is known about), plus any date whose decisions are already stored
 * (so `flags --as-of` history never goes stale).
 */
export async function recompute(database: Database, config: Config, scope: { days: readonly string[] | null }): Promise<RecomputeSummary> {
  const days = scope.days === null ? null : [...new Set(scope.days)].sort();
  const bad = days?.filter((d) => !isDay(d)) ?? [];
  if (bad.length > 0) throw new Error(`recompute: not dates as YYYY-MM-DD: ${bad.join(', ')}`);
  const settings = decisionSettings(config);

  return database.transaction(async (session) => {
    await beginRecompute(session); // two ingests finishing together must not rewrite the same facts at once
    // Taken in this transaction: if the recompute fails, the days stay noted.
    const pending = (await session.query<{ day: string }>('delete from repwatch.recompute_pending returning day')).map((r) => r.day);
    const all = days === null ? null : [...new Set([...days, ...pending])].sort();
    if (all !== null && all.length === 0) return { days: all, factRows: 0, asOfDates: [], decisions: 0 };
    await refreshPools(session, config.pools);
    const factRows = await recomputeFacts(session, all);
    const asOfDates = await asOfDatesToRecompute(session, all, settings.windowDays);
    let decisions = 0;
    for (const asOf of asOfDates) decisions += (await computeDecisionsIn(session, settings, asOf)).length;
    return { days: all, factRows, asOfDates, decisions };
  });
}

/**
 * The as-of dates to decide again. They end at the decision frontier, the date `flags` decides as by
 * default (decisionDates): the latest SNDS day, or a newer IP Status day while the SNDS data still
 * reaches its window. Complaints and bounces arrive the same day while SNDS publishes a day or two
 * later: a date past the frontier would be decided on a window whose last days count as clean, and
 * BI's latest date would disagree with `flags`. With no SNDS data at all (JMRP only), the latest day
 * with any data. Never after today (UTC, the database's clock), as `flags` never decides after today:
 * one row dated in the future (a wrong clock, a damaged export) would otherwise decide dates nothing is
 * known about yet. A date already stored (an explicit `--as-of`) is kept up to date wherever it lies.
 */
async function asOfDatesToRecompute(session: Pick<Session, 'query'>, days: readonly string[] | null, windowDays: number): Promise<string[]> {
  const rows = await session.query<{ as_of: string }>(
    `with today as (select (now() at time zone 'UTC')::date as day),
     snds as (select max(f.day) as day from repwatch.ip_day_fact f, today where f.has_snds and f.day <= today.day),
     status as (
       select (max(fetched_at) at time zone 'UTC')::date as day
       from repwatch.raw_download where kind = 'ip_status' and outcome in ('loaded', 'empty', 'duplicate')
     ),
     known as (
       select min(d.day) as first_day,
              coalesce(
                (select greatest(snds.day, case when status.day > snds.day and status.day <= today.day and status.day - snds.day < $2 then status.day end) from snds, status, today),
                max(d.day) filter (where d.day <= (select day from today))) as last_day
       -- One row also without data (an aggregate without group by): dates stored by --as-of are kept below.
       from (select day from repwatch.ip_day_fact where has_snds or complaints > 0
             union all select day from repwatch.block_evidence) d
     ),
     -- A full rebuild: every date that has data in the 28 days before it (a lone report from years ago
     -- adds 28 dates, not every day since).
     data_day as (
       select distinct day from repwatch.ip_day_fact where $1::date[] is null and (has_snds or complaints > 0)
       union select distinct day from repwatch.block_evidence where $1::date[] is null
     ),
     candidate as (
       select (d.day + k)::date as as_of
       from data_day d, generate_series(0, ${POPULATION_DAYS - 1}) as k
       union
       select (t.day + k)::date
       from unnest($1::date[]) as t(day), generate_series(0, ${POPULATION_DAYS - 1}) as k
       where $1::date[] is not null
       union
       select distinct as_of from repwatch.ip_flag where $1::date[] is null
     )
     select c.as_of
     from candidate c, known
     where (c.as_of between known.first_day and known.last_day)
        or exists (select 1 from repwatch.ip_flag g where g.as_of = c.as_of)
     order by c.as_of`,
    [days, windowDays],
  );
  return rows.map((r) => r.as_of);
}
