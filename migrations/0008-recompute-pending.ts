import type { Migration } from './migration.js';

/**
 * Days whose derived tables (ip_day_fact, decisions) must be recomputed. An ingest notes its days in the
 * same transaction that commits its rows; the recompute takes them in its own transaction. So a process
 * that dies between the two (kill -9, a lost connection, a failed recompute) leaves the days noted, and
 * the next recompute of any kind picks them up: derived tables never stay stale silently.
 */
export const migration: Migration = {
  id: 8,
  name: 'recompute-pending',
  sql: String.raw`
create table if not exists repwatch.recompute_pending (
  day       date primary key,
  noted_at  timestamptz not null default now()
);
`,
};
