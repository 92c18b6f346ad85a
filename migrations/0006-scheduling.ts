import type { Migration } from './migration.js';

/** Placeholder reserved for issue 7 (scheduling); replaced by its real schema, or removed if it needs none. */
export const migration: Migration = {
  id: 6,
  name: 'scheduling',
  sql: 'select 1',
};
