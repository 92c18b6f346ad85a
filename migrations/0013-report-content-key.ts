import type { Migration } from './migration.js';

/**
 * One report, one row, also when a person forwards it from Outlook: that forward re-attaches the
 * report's parts under the forwarder's own headers, so the report's Message-ID (report_key) is lost.
 * `content_key` is what the report says whatever carried it: its feedback fields and the original's
 * header fields, complainers' addresses read as one placeholder (ingest/jmrp/parse-report.ts
 * contentKeyOf). Null when the original has no Received line to tell two complaints apart; rows
 * stored before this migration have none.
 */
export const migration: Migration = {
  id: 13,
  name: 'report-content-key',
  sql: String.raw`
alter table repwatch.feedback_report add column if not exists content_key text;
create unique index if not exists feedback_report_content_key on repwatch.feedback_report (content_key) where content_key is not null;
`,
};
