import { toCsv } from '../cli/output.js';
import type { WeeklyReportData } from './weekly-data.js';

export const DECISION_CSV_COLUMNS = ['as_of', 'ip', 'status', 'reasons', 'recipients_7d', 'complaints_7d', 'complaint_rate_7d', 'trap_hits_7d', 'blocked', 'route'];

/** The decisions needing action, one row per IP, most urgent first (reasons joined with ';'). */
export function renderDecisionsCsv(data: WeeklyReportData): string {
  return toCsv(
    data.decisions.items.map((d) => ({
      as_of: data.period.to,
      ip: d.ip,
      status: d.status,
      reasons: d.reasons,
      recipients_7d: d.recipients7d,
      complaints_7d: d.complaints7d,
      complaint_rate_7d: d.complaintRate7d,
      trap_hits_7d: d.trapHits7d,
      blocked: d.blocked,
      route: d.route,
    })),
    DECISION_CSV_COLUMNS,
  );
}
