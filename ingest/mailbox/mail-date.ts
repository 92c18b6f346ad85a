/**
 * Dates as mail writes them (RFC 5322 and its historic forms: `Thu, 29 Apr 2013 23:45:50 PST`,
 * `29 Apr 2016 23:34:45 +0000 (UTC)`, two-digit years, ISO 8601 from some MTAs). Pure; returns null for
 * anything it cannot read or that is implausible (before 1990, after 2100).
 */

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };

/** Obsolete zone names of RFC 5322 section 4.3, in minutes east of UTC. */
const ZONES: Record<string, number> = {
  UT: 0, UTC: 0, GMT: 0, Z: 0,
  EST: -300, EDT: -240, CST: -360, CDT: -300, MST: -420, MDT: -360, PST: -480, PDT: -420,
  JST: 540, CET: 60, CEST: 120, BST: 60,
};

const RFC5322 = /(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\s+(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*([+-]\d{2}:?\d{2}|[A-Za-z]{1,5})?/;
const ISO = /(\d{4})-(\d{2})-(\d{2})[T\s](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?/;

export function parseMailDate(value: string | undefined | null): Date | null {
  if (!value) return null;
  const text = value.length > 300 ? value.slice(0, 300) : value;
  let m = RFC5322.exec(text);
  if (m) {
    const month = MONTHS[m[2]!.toLowerCase()];
    if (month === undefined) return null;
    let year = Number(m[3]);
    if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900;
    else if (m[3]!.length === 3) year += 1900;
    const offset = zoneOffset(m[7]);
    return build(year, month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0), offset);
  }
  m = ISO.exec(text);
  if (m) {
    let offset = 0;
    const zone = m[7];
    if (zone && zone !== 'Z') {
      const digits = zone.replace(':', '');
      offset = (digits.startsWith('-') ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)));
    }
    return build(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0), offset);
  }
  return null;
}

function zoneOffset(zone: string | undefined): number {
  if (!zone) return 0;
  // +hhmm, and +hh:mm as some reporters write it.
  if (/^[+-]\d{2}:?\d{2}$/.test(zone)) {
    const digits = zone.replace(':', '');
    const sign = digits.startsWith('-') ? -1 : 1;
    return sign * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)));
  }
  return ZONES[zone.toUpperCase()] ?? 0;
}

function build(year: number, month: number, day: number, hour: number, minute: number, second: number, offsetMinutes: number): Date | null {
  if (day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  const ms = Date.UTC(year, month, day, hour, minute, Math.min(second, 59)) - offsetMinutes * 60_000;
  const date = new Date(ms);
  if (Number.isNaN(ms) || date.getUTCFullYear() < 1990 || date.getUTCFullYear() > 2100) return null;
  return date;
}

/** The date a Received header ends with (after its last semicolon). */
export function receivedDate(received: string): Date | null {
  const semi = received.lastIndexOf(';');
  return semi === -1 ? null : parseMailDate(received.slice(semi + 1));
}
