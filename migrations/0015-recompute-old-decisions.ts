import type { Migration } from './migration.js';

/**
 * Decisions stored before migration 0014 were made under version 1 of the rules (no
 * complaints_without_volume): a blocked IP with complaints and no SNDS volume could be stored as
 * start_delisting. The weekly report and `delist draft` recompute such a date before using it, but BI
 * tools read analytics.ip_flag as stored. Noting those dates as pending makes the next recompute of any
 * kind (every ingest ends with one; `transform --pending` runs it alone) decide them again under the
 * current rules, so no old decision stays in the history silently. Re-running this text notes nothing
 * once they are recomputed, because a recompute stores the rules version.
 *
 * A later change of DECISION_RULES_VERSION comes with a migration like this one.
 */
export const migration: Migration = {
  id: 15,
  name: 'recompute-old-decisions',
  sql: String.raw`
insert into repwatch.recompute_pending (day)
select distinct as_of from repwatch.ip_flag where rules_version is null
on conflict (day) do nothing;
`,
};
