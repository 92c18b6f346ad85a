import { addDays } from '../lib/clock.js';
import { isoWeekOf } from '../reports/week.js';

/**
 * How a cron tick becomes the period a job covers. The period is the ledger key: one success per
 * (job, period), so two ticks that map to the same period run once.
 */

/** The calendar date of the tick in the schedule's time zone (SNDS: one ingest per day). */
export function dayOfTick(tick: Date, timezone: string): string {
  // en-CA formats as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(tick);
}

/** The tick itself to the minute, in UTC: `2026-11-28T06:10Z` (a mailbox drain per tick). */
export function minuteOfTick(tick: Date): string {
  return `${tick.toISOString().slice(0, 16)}Z`;
}

/**
 * The last complete ISO week before the tick's local date (`2026-W47`): a report that runs on Monday
 * covers the week that ended on Sunday; run on any other day it still covers the last complete week.
 */
export function reportWeekOfTick(tick: Date, timezone: string): string {
  const day = dayOfTick(tick, timezone);
  const weekday = (new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  return isoWeekOf(addDays(day, -(weekday + 1)));
}
