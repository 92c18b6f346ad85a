import { addDays, utcDay } from '../lib/clock.js';

/** A report period: the seven days ending with `to` (the as-of date), and the seven before. */
export interface ReportPeriod {
  /** The ISO week (YYYY-Www) when the period is exactly one; null for seven days that straddle two
   * (a label naming one of them would describe days the report does not cover). */
  week: string | null;
  from: string;
  to: string;
  previousFrom: string;
  previousTo: string;
  /** True when the period is exactly one ISO week (Monday to Sunday). */
  isoWeek: boolean;
}

const WEEK_PATTERN = /^(\d{4})-W(\d{2})$/;

/** ISO 8601 week of a date: the week belongs to the year of its Thursday. */
export function isoWeekOf(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  const weekday = (date.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = addDays(day, 3 - weekday);
  const year = Number(thursday.slice(0, 4));
  const firstThursday = firstIsoThursday(year);
  const week = 1 + Math.round((Date.parse(`${thursday}T00:00:00Z`) - Date.parse(`${firstThursday}T00:00:00Z`)) / (7 * 86_400_000));
  return `${year}-W${String(week).padStart(2, '0')}`;
}

function firstIsoThursday(year: number): string {
  const jan4 = `${year}-01-04`; // 4 January is always in week 1
  const weekday = (new Date(`${jan4}T00:00:00Z`).getUTCDay() + 6) % 7;
  return addDays(jan4, 3 - weekday);
}

/** The Sunday that ends an ISO week, or null when the text is not a valid week. */
export function sundayOfIsoWeek(week: string): string | null {
  const match = WEEK_PATTERN.exec(week);
  if (!match) return null;
  const year = Number(match[1]);
  const number = Number(match[2]);
  if (number < 1 || number > 53) return null;
  const sunday = addDays(firstIsoThursday(year), (number - 1) * 7 + 3);
  return isoWeekOf(sunday) === week ? sunday : null;
}

/** The last complete ISO week before `now`: it ends on the most recent Sunday strictly before today. */
export function lastCompleteWeekEnd(now: Date): string {
  const today = utcDay(now);
  const weekday = (now.getUTCDay() + 6) % 7;
  return addDays(today, -(weekday + 1));
}

export function periodEnding(asOf: string): ReportPeriod {
  const from = addDays(asOf, -6);
  return {
    week: new Date(`${asOf}T00:00:00Z`).getUTCDay() === 0 ? isoWeekOf(asOf) : null,
    from,
    to: asOf,
    previousFrom: addDays(from, -7),
    previousTo: addDays(asOf, -7),
    isoWeek: new Date(`${asOf}T00:00:00Z`).getUTCDay() === 0,
  };
}

/** The base of the report's file names: the ISO week when the period is one, else the as-of date. */
export function reportBaseName(period: ReportPeriod): string {
  return `repwatch-weekly-${period.isoWeek ? period.week : period.to}`;
}
