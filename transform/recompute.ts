import type { Database } from '../db/connection.js';
import type { Config } from '../config/schema.js';

/**
 * Bring the derived tables (ip_day facts, decisions) up to date for the days an ingest touched.
 * Ingest commands call this after their data is committed. (Implemented by the transform stage.)
 */
export async function recomputeDays(database: Database, config: Config, days: readonly string[]): Promise<void> {
  void database;
  void config;
  void days;
}
