import type { Database } from '../../db/connection.js';
import { isMostlyBad, type SndsRowError } from './parse-data-export.js';
import { parseStatusExport } from './parse-status-export.js';
import { markDownload, markFailed } from './load-data-export.js';
import { redact } from '../../lib/redact.js';

/**
 * Load one stored IP Status input. The export is small (one line per blocked range), so it is parsed
 * whole. Each download's ranges are kept as history; analytics.ip_status shows the latest one per feed.
 */

export interface StatusLoadResult {
  outcome: 'loaded' | 'empty' | 'failed';
  rangesLoaded: number;
  rowsRejected: number;
  sampleErrors: SndsRowError[];
  detail: string | null;
}

export async function loadStatusExport(
  database: Database,
  text: string,
  options: { feed: string; downloadId: number; location: string },
): Promise<StatusLoadResult> {
  const { rows, errors } = parseStatusExport(text);
  if (isMostlyBad(rows.length, errors.length)) {
    const detail =
      `${errors.length} of ${rows.length + errors.length} lines are not IP Status rows (over half): probably not an SNDS IP Status export; nothing loaded. ` +
      `First: line ${errors[0]!.line}: ${errors[0]!.reason}`;
    await markFailed(database, options, detail, errors.length, 'snds_status');
    return { outcome: 'failed', rangesLoaded: 0, rowsRejected: errors.length, sampleErrors: errors.slice(0, 5), detail };
  }
  const outcome = rows.length === 0 && errors.length === 0 ? 'empty' : 'loaded';
  const detail = errors.length ? `${errors.length} line(s) rejected, e.g. line ${errors[0]!.line}: ${errors[0]!.reason}` : outcome === 'empty' ? 'empty export: nothing blocked' : null;
  await database.transaction(async (session) => {
    if (rows.length) {
      await session.query(
        `insert into repwatch.snds_status_range (download_id, feed, line_no, first_ip, last_ip, blocked, details)
         select $1, $2, r.line_no, r.first_ip, r.last_ip, r.blocked, r.details
         from unnest($3::int[], $4::inet[], $5::inet[], $6::boolean[], $7::text[]) as r(line_no, first_ip, last_ip, blocked, details)`,
        [options.downloadId, options.feed, rows.map((r) => r.line), rows.map((r) => r.firstIp), rows.map((r) => r.lastIp), rows.map((r) => r.blocked), rows.map((r) => r.details)],
      );
    }
    if (errors.length) {
      await session.query(
        `insert into repwatch.rejection (source, input_id, location, line_no, reason, raw)
         select 'snds_status', $1, $2, e.line_no, e.reason, e.raw from unnest($3::int[], $4::text[], $5::text[]) as e(line_no, reason, raw)`,
        [options.downloadId, options.location, errors.map((e) => e.line), errors.map((e) => redact(e.reason)), errors.map((e) => redact(e.raw))],
      );
    }
    await markDownload(session, options.downloadId, outcome, { rowsLoaded: rows.length, rowsRejected: errors.length, detail });
  });
  return { outcome, rangesLoaded: rows.length, rowsRejected: errors.length, sampleErrors: errors.slice(0, 5), detail };
}
