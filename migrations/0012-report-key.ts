import type { Migration } from './migration.js';

/**
 * One report, one row: the same complaint report read from two messages (sent to the JMRP mailbox, and
 * forwarded into it as an attachment by someone who got it too) is one report. `report_key` is the
 * report message's own Message-ID with the original's; a second report with a key already stored is
 * recorded as a message but not counted. Null when the report has no Message-ID; rows stored before
 * this migration have none.
 */
export const migration: Migration = {
  id: 12,
  name: 'report-key',
  sql: String.raw`
alter table repwatch.feedback_report add column if not exists report_key text;
create unique index if not exists feedback_report_report_key on repwatch.feedback_report (report_key) where report_key is not null;
`,
};
