import type { Migration } from './migration.js';

/**
 * Each stored decision records the complaint-rate thresholds it was made with (window_days was
 * already kept). A report or a reader can then tell decisions made under other settings (an earlier
 * config, a one-off `--config`) from current ones, and recompute them instead of showing them under
 * the configured thresholds. Rows stored before this migration have none: they count as made under
 * unknown settings.
 */
export const migration: Migration = {
  id: 10,
  name: 'decision-thresholds',
  sql: String.raw`
alter table repwatch.ip_flag
  add column if not exists complaint_rate_warn double precision,
  add column if not exists complaint_rate_max double precision;
`,
};
