import type { Migration } from './migration.js';

/**
 * How many of a download's SNDS rows later downloads replaced (same IP and activity start, or a newer
 * API answer for the same day). A download that lost none is whole: the same bytes fetched again are a
 * duplicate and are not loaded again. Until now "whole" meant "still the latest download of every day
 * it loaded", which the next day's export (holding rows that began the evening before) broke for
 * every re-fetched day, so each run loaded its re-fetched days again. Rows loaded before this migration
 * keep null (unknown): the old test applies to them.
 */
export const migration: Migration = {
  id: 19,
  name: 'snds-rows-lost',
  sql: String.raw`
alter table repwatch.raw_download add column if not exists rows_lost int;
alter table repwatch.raw_download alter column rows_lost set default 0;
`,
};
