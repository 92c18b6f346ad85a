import type { Migration } from './migration.js';

/**
 * Decisions stored before this migration kept the complaint rate as JavaScript computed it (a double,
 * written out with 17 significant digits), while analytics.ip_trend divides in numeric: the two
 * views showed 0.0030000000000000001 and 0.0030000000000000000 for one IP and day, and a BI join on
 * rates missed. Recompute now stores PostgreSQL's division (transform/decisions.ts STORED_RATE); this
 * rewrites the stored history the same way. computed_at is left alone: no decision changed. Re-running
 * this text updates nothing.
 */
export const migration: Migration = {
  id: 17,
  name: 'stored-rate-precision',
  sql: String.raw`
update repwatch.ip_flag
set complaint_rate_7d = case when recipients_7d > 0 then complaints_7d::numeric / recipients_7d end
where complaint_rate_7d is distinct from (case when recipients_7d > 0 then complaints_7d::numeric / recipients_7d end);
`,
};
