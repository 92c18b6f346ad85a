/**
 * SNDS timestamps: `M/D/YYYY h:mm AM` (no zone, no seconds, no leading zeros), in a zone SNDS never
 * states — a per-feed setting. Pure: the zone is an argument, the result is an instant plus the local
 * calendar date, which is what a row's `day` is.
 */

export interface SndsTimestamp {
  /** The instant, ISO 8601 in UTC (what timestamptz receives). */
  iso: string;
  /** The calendar date in the feed's zone, YYYY-MM-DD. */
  localDay: string;
}

const PATTERN = /^\s*(\d{1,2})\/(\d{1,2})\/(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?\s*$/;

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/** Offset formatters are expensive to build: one per zone. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function zoneFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Minutes the zone is ahead of UTC at the instant `utcMs`. */
function zoneOffsetMinutes(utcMs: number, timeZone: string): number {
  const parts = zoneFormatter(timeZone).formatToParts(new Date(utcMs));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour') % 24, get('minute'), get('second'));
  return Math.round((asUtc - utcMs) / 60_000);
}

/**
 * The instant at which the wall clock in `timeZone` shows the given local time, as PostgreSQL's
 * `timestamp AT TIME ZONE` places it (repwatch.snds_time must agree): in an autumn overlap the later
 * occurrence (standard time), in a spring gap the offset in force before the change. The offsets a day
 * before and a day after are the two a change can be between (zones never change twice in a day).
 */
function localToUtcMs(localMs: number, timeZone: string): number {
  if (timeZone === 'UTC' || timeZone === 'Etc/UTC') return localMs;
  const before = zoneOffsetMinutes(localMs - DAY_MS, timeZone);
  const after = zoneOffsetMinutes(localMs + DAY_MS, timeZone);
  const fits = [before, after].filter((offset) => zoneOffsetMinutes(localMs - offset * 60_000, timeZone) === offset).map((offset) => localMs - offset * 60_000);
  return fits.length ? Math.max(...fits) : localMs - before * 60_000;
}

const DAY_MS = 86_400_000;

/** Parse one SNDS timestamp; null when it is not one (the caller says which column and line). */
export function parseSndsTimestamp(raw: string, timeZone: string): SndsTimestamp | null {
  const m = PATTERN.exec(raw);
  if (!m) return null;
  const month = Number(m[1]);
  const day = Number(m[2]);
  const year = Number(m[3]);
  let hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const meridiem = m[7]?.toUpperCase();
  if (month < 1 || month > 12 || day < 1 || day > 31 || minute > 59 || second > 59 || year < 1990 || year > 2200) return null;
  if (meridiem) {
    if (hour < 1 || hour > 12) return null;
    if (meridiem === 'AM' && hour === 12) hour = 0;
    else if (meridiem === 'PM' && hour !== 12) hour += 12;
  } else if (hour > 23) {
    return null;
  }
  const localMs = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(localMs);
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month - 1) return null; // 2/30, 4/31
  const utcMs = localToUtcMs(localMs, timeZone);
  return { iso: new Date(utcMs).toISOString(), localDay: `${year}-${pad2(month)}-${pad2(day)}` };
}

/**
 * A memo for one parse run: an export repeats the same few timestamps on every line (one activity
 * period per day), so converting each distinct string once takes the time-zone arithmetic off the
 * per-row path. Bounded so that a pathological input cannot grow it without end.
 */
export function timestampParser(timeZone: string, limit = 50_000): (raw: string) => SndsTimestamp | null {
  const cache = new Map<string, SndsTimestamp | null>();
  // Consecutive lines usually repeat the previous line's timestamps: a string compare beats hashing.
  let lastRaw = '';
  let last: SndsTimestamp | null = null;
  return (raw) => {
    if (raw === lastRaw) return last;
    let hit = cache.get(raw);
    if (hit === undefined) {
      hit = parseSndsTimestamp(raw, timeZone);
      if (cache.size >= limit) cache.clear();
      // The raw string is usually a slice of a large chunk of input; keeping it as a key would keep the
      // whole chunk alive. Store a copy.
      cache.set(detach(raw), hit);
    }
    lastRaw = raw;
    last = hit;
    return hit;
  };
}

/** A string that shares no memory with the text it was cut from. */
export function detach(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}
