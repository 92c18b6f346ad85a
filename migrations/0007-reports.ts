import type { Migration } from './migration.js';

/** Placeholder reserved for issue 6 (reports); replaced by its real schema, or removed if it needs none. */
export const migration: Migration = {
  id: 7,
  name: 'reports',
  sql: 'select 1',
};
