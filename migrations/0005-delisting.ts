import type { Migration } from './migration.js';

/** Placeholder reserved for issue 8 (delisting); replaced by its real schema, or removed if it needs none. */
export const migration: Migration = {
  id: 5,
  name: 'delisting',
  sql: 'select 1',
};
