import type { Database, Session } from '../../db/connection.js';
import { isMostlyBad, type SndsRowError } from './parse-data-export.js';
import { parseStatusExport } from './parse-status-export.js';
import { markDownload, markFailed } from './load-data-export.js';
import { notePendingDays } from '../../transform/recompute.js';

/**
 * Load one stored IP Status input. The export is small (one line per blocked range), so it is parsed
 * whole. Each download's ranges are kept as history; analytics.ip_status shows the latest one per feed.
 *
 * The decisions of as-of date D use the latest IP Status download on or before D, so a new list (an
 * empty one too) changes the decisions of every D from its fetch date (UTC) on. Those days, up to the
 * latest day anything is known about, are noted in repwatch.recompute_pending in the load's own
 * transaction: the next recompute of any kind brings blocked up to date, even when this input
 * touched no IP Data day.
 */

export interface StatusLoadResult {
  outcome: 'loaded' | 'empty' | 'failed';
  rangesLoaded: number;
  rowsRejected: number;
  sampleErrors: SndsRowError[];
  detail: string | null;
  /** As-of dates whose decisions the new list changes (noted as pending), sorted. */
  days: string[];
  /** Failed because over half the lines are no IP Status rows: probably not an export at all. */
  notAnExport?: boolean;
}

export async function loadStatusExport(
  database: Database,
  text: string,
  options: { feed: string; downloadId: number; location: string },
): Promise<StatusLoadResult> {
  const { rows, errors } = parseStatusExport(text);
  if (errors.length) {
    // A block list is taken whole or not at all: loaded without a bad line's range, that range would
    // count as unblocked. The previous list stays current (a failed download is never the current
    // one) and the run reports a failure, with every bad line recorded.
    const notAnExport = isMostlyBad(rows.length, errors.length);
    const detail = notAnExport
      ? `${errors.length} of ${rows.length + errors.length} lines are not IP Status rows (over half): probably not an SNDS IP Status export; nothing loaded. ` +
        `First: line ${errors[0]!.line}: ${errors[0]!.reason}`
      : `${errors.length} of ${rows.length + errors.length} lines are not IP Status rows, e.g. line ${errors[0]!.line}: ${errors[0]!.reason}; ` +
        'the list is taken whole or not at all (a range left out would count as unblocked): nothing loaded, the previous list stays current';
    await markFailed(database, options, detail, errors.length, 'snds_status', errors);
    return { outcome: 'failed', rangesLoaded: 0, rowsRejected: errors.length, sampleErrors: errors.slice(0, 5), detail, days: [], ...(notAnExport ? { notAnExport } : {}) };
  }
  const outcome = rows.length === 0 ? 'empty' : 'loaded';
  const detail = outcome === 'empty' ? 'empty export: nothing blocked' : null;
  const days = await database.transaction(async (session) => {
    if (rows.length) {
      await session.query(
        `insert into repwatch.snds_status_range (download_id, feed, line_no, first_ip, last_ip, blocked, details)
         select $1, $2, r.line_no, r.first_ip, r.last_ip, r.blocked, r.details
         from unnest($3::int[], $4::inet[], $5::inet[], $6::boolean[], $7::text[]) as r(line_no, first_ip, last_ip, blocked, details)`,
        [options.downloadId, options.feed, rows.map((r) => r.line), rows.map((r) => r.firstIp), rows.map((r) => r.lastIp), rows.map((r) => r.blocked), rows.map((r) => r.details)],
      );
    }
    await markDownload(session, options.downloadId, outcome, { rowsLoaded: rows.length, rowsRejected: 0, detail });
    const affected = await daysAffectedByStatus(session, options.downloadId);
    await notePendingDays(session, affected);
    return affected;
  });
  return { outcome, rangesLoaded: rows.length, rowsRejected: 0, sampleErrors: [], detail, days };
}

/**
 * The as-of dates a status download can change: from its fetch date (UTC) to the latest day known to
 * the pipeline (facts, block evidence, IP Data days loaded but not yet recomputed, days already
 * pending, dates with stored decisions). None when everything known is older than the download.
 */
export async function daysAffectedByStatus(session: Pick<Session, 'query'>, downloadId: number): Promise<string[]> {
  const rows = await session.query<{ day: string }>(
    `with fetched as (
       select (fetched_at at time zone 'UTC')::date as day from repwatch.raw_download where id = $1
     ),
     latest as (
       select greatest(
         (select max(day) from repwatch.ip_day_fact where has_snds or complaints > 0),
         (select max(day) from repwatch.block_evidence),
         (select max(day) from repwatch.snds_feed_day),
         (select max(day) from repwatch.recompute_pending),
         (select max(as_of) from repwatch.ip_flag)
       ) as day
     )
     select to_char(d, 'YYYY-MM-DD') as day
     from fetched, latest, generate_series(fetched.day::timestamp, latest.day::timestamp, interval '1 day') as g(d)
     order by 1`,
    [downloadId],
  );
  return rows.map((r) => r.day);
}
