import { sql } from 'kysely';
import type { Database } from '../db/connection.js';
import { systemClock, type Clock } from '../lib/clock.js';

/**
 * "Now" for the scheduler and the ledger. With the system clock, time is read from the database, so
 * that several hosts (whose clocks drift) agree on which ticks are due and how long a backoff has run —
 * the pg-boss approach. A clock injected by a test is used as is, for everything, so that the due
 * periods and the ledger's timestamps stay on one time line.
 */
export interface TimeSource {
  now(): Promise<Date>;
  readonly fromDatabase: boolean;
}

export function timeSourceFor(database: Database, clock: Clock): TimeSource {
  if (clock !== systemClock) return { now: async () => clock.now(), fromDatabase: false };
  return {
    fromDatabase: true,
    // Through the pooled Kysely on purpose: Database.close() ends the pg pool only once Kysely has
    // used it, and a pool left open keeps the process alive after `run` or `schedule` is done.
    now: async () => (await sql<{ now: Date }>`select clock_timestamp() as now`.execute(database.db)).rows[0]!.now,
  };
}
