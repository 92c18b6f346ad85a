import type { Migration } from './migration.js';

/**
 * Each stored decision records the version of the rules it was made with (transform/decisions.ts
 * DECISION_RULES_VERSION), as migration 0010 records its thresholds. Version 2 added the reason
 * complaints_without_volume; rows stored before this migration have none and count as made under other
 * rules: the weekly report and `delist draft` recompute them before use, and `transform --rebuild`
 * brings the whole history (what BI tools read in analytics.ip_flag) up to date.
 */
export const migration: Migration = {
  id: 14,
  name: 'decision-rules-version',
  sql: String.raw`
alter table repwatch.ip_flag add column if not exists rules_version integer;
`,
};
