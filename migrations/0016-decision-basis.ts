import type { Migration } from './migration.js';

/**
 * What each date's decisions were made with, for BI tools: analytics.ip_flag keeps its fixed columns
 * (a view's columns cannot change without breaking the dashboards built on it, nor the re-runnable
 * text of migration 0004), so the window, the complaint-rate thresholds and the rules version live in
 * their own view, one row per as-of date (a recompute replaces a date's decisions as a whole, so a date
 * has one basis). A dashboard joins it on as_of to tell a change in the data from a change in the
 * thresholds: a history recomputed under other settings jumps where the settings change. The BI role's
 * SELECT on it comes from migrate(), which grants whatever the role is missing after every run.
 */
export const migration: Migration = {
  id: 16,
  name: 'decision-basis',
  sql: String.raw`
create or replace view analytics.decision_basis as
  select as_of, window_days, complaint_rate_warn, complaint_rate_max, rules_version,
         count(*)::int as ips, max(computed_at) as computed_at
  from repwatch.ip_flag
  group by as_of, window_days, complaint_rate_warn, complaint_rate_max, rules_version;
`,
};
