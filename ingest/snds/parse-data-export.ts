import { forEachCsvRecord, stripBom, withLineFeeds, type CsvRecord } from './csv-records.js';
import { normaliseIp, parseCount, textOrNull } from './row-checks.js';
import { timestampParser, type SndsTimestamp } from './parse-timestamp.js';

/**
 * The IP Data export: no header row, one line per IP and activity period, 14 columns (13 accepted,
 * missing trailing columns are empty, extra ones kept raw). Pure: text in, rows and row errors out.
 * See shared/reference/snds.md for the layout and the traps other parsers fell into.
 */

export type FilterResult = 'GREEN' | 'YELLOW' | 'RED';

export interface SndsDataRow {
  line: number;
  ip: string;
  /** The calendar date of the activity start in the feed's time zone. */
  day: string;
  activityStart: string;
  activityEnd: string | null;
  activityStartRaw: string;
  activityEndRaw: string | null;
  rcptCommands: number | null;
  dataCommands: number | null;
  messageRecipients: number | null;
  filterResult: FilterResult | null;
  complaintBand: string | null;
  /** Bounds of the band as fractions (0.001 = 0.1 %); high is null for an open band such as `>4%`. */
  complaintRateLow: number | null;
  complaintRateHigh: number | null;
  trapStart: string | null;
  trapEnd: string | null;
  trapStartRaw: string | null;
  trapEndRaw: string | null;
  trapHits: number | null;
  sampleHelo: string | null;
  jmrP1Sender: string | null;
  comments: string | null;
  extraColumns: string[] | null;
}

export interface SndsRowError {
  line: number;
  reason: string;
  raw: string;
  /** The line puts the whole input in doubt (a header naming other columns, a day-first date): it is
   * recorded like any bad line, and nothing of the input loads. */
  failsInput?: true;
}

export interface ParseResult<Row> {
  rows: Row[];
  errors: SndsRowError[];
  /** Why nothing of the input may load (the first line with failsInput), or null. */
  failure?: string | null;
}

export interface DataParseOptions {
  /** IANA zone of the export's timestamps (the feed's `timezone`). */
  timezone: string;
}

export const DATA_COLUMNS = 14;
export const DATA_MIN_COLUMNS = 13;

/** Parse a whole IP Data export held in memory (files and downloads stream through parseDataRecord). */
export function parseDataExport(text: string, options: DataParseOptions): ParseResult<SndsDataRow> {
  const rows: SndsDataRow[] = [];
  const errors: SndsRowError[] = [];
  const parseRecord = dataRecordParser(options);
  let failure: string | null = null;
  forEachCsvRecord(withLineFeeds(stripBom(text)), 1, (record) => {
    const result = parseRecord(record);
    if (result === null) return;
    if ('reason' in result) {
      errors.push(result);
      if (result.failsInput && failure === null) failure = `line ${result.line}: ${result.reason}`;
    } else rows.push(result);
  });
  return { rows, errors, failure };
}

/**
 * A parser for single records with its own timestamp memo: the streaming loader and parseDataExport
 * share it. Returns null for a header line (line 1 only), which is skipped rather than rejected.
 */
export function dataRecordParser(options: DataParseOptions): (record: CsvRecord) => SndsDataRow | SndsRowError | null {
  const timestamp = timestampParser(options.timezone);
  return (record) => {
    try {
      return parseDataRecord(record, timestamp);
    } catch (error) {
      // Parsers must never throw on input; a bug here becomes a row error, not a lost run.
      return { line: record.line, reason: `unexpected parser error: ${(error as Error).message}`, raw: record.raw };
    }
  };
}

function parseDataRecord(record: CsvRecord, timestamp: (raw: string) => SndsTimestamp | null): SndsDataRow | SndsRowError | null {
  const { fields, line, raw } = record;
  const fail = (reason: string): SndsRowError => ({ line, reason, raw });
  if (line === 1 && looksLikeHeader(fields)) {
    const differences = headerDifferences(fields);
    if (differences.length === 0) return null;
    return {
      line,
      reason:
        `a header row whose columns differ from the IP Data layout: ${differences.join('; ')}. ` +
        'Microsoft announced column changes: the rows cannot be read by position until the layout is checked; nothing of this input loads',
      raw,
      failsInput: true,
    };
  }
  if (fields.length < DATA_MIN_COLUMNS) {
    return fail(`${fields.length} field${fields.length === 1 ? '' : 's'}; an IP Data line has ${DATA_COLUMNS} (at least ${DATA_MIN_COLUMNS})`);
  }
  const ip = normaliseIp(fields[0]!);
  if (!ip) return fail(`column 1 (IP address): not an IP address: ${quote(fields[0]!)}`);

  const badTime = (column: string, text: string): SndsRowError =>
    dayFirstOnly(text)
      ? {
          line,
          reason:
            `${column}: ${quote(text)} can only be read day first (D/M/YYYY), but SNDS writes M/D/YYYY: ` +
            'every date of this input is in doubt (3/2 would be read as March 2), so nothing of it loads',
          raw,
          failsInput: true,
        }
      : fail(`${column}: not a date and time M/D/YYYY h:mm AM: ${quote(text)}`);
  const startRaw = fields[1]!.trim();
  const start = timestamp(startRaw);
  if (!start) return badTime('column 2 (activity start)', startRaw);
  const endRaw = textOrNull(fields[2]);
  const end = endRaw === null ? null : timestamp(endRaw);
  if (endRaw !== null && !end) return badTime('column 3 (activity end)', endRaw);

  const rcpt = parseCount(fields[3]);
  if (rcpt === undefined) return fail(`column 4 (RCPT commands): not a whole number: ${quote(fields[3]!)}`);
  const data = parseCount(fields[4]);
  if (data === undefined) return fail(`column 5 (DATA commands): not a whole number: ${quote(fields[4]!)}`);
  const recipients = parseCount(fields[5]);
  if (recipients === undefined) return fail(`column 6 (message recipients): not a whole number: ${quote(fields[5]!)}`);

  const colour = textOrNull(fields[6])?.toUpperCase() ?? null;
  if (colour !== null && colour !== 'GREEN' && colour !== 'YELLOW' && colour !== 'RED') {
    return fail(`column 7 (filter result): expected GREEN, YELLOW or RED: ${quote(fields[6]!)}`);
  }
  const band = textOrNull(fields[7]);
  const bounds = band === null ? null : complaintBandBounds(band);
  if (band !== null && !bounds) return fail(`column 8 (complaint rate): not a complaint band such as "< 0.1%": ${quote(band)}`);

  const trapStartRaw = textOrNull(fields[8]);
  const trapStart = trapStartRaw === null ? null : timestamp(trapStartRaw);
  if (trapStartRaw !== null && !trapStart) return badTime('column 9 (trap period start)', trapStartRaw);
  const trapEndRaw = textOrNull(fields[9]);
  const trapEnd = trapEndRaw === null ? null : timestamp(trapEndRaw);
  if (trapEndRaw !== null && !trapEnd) return badTime('column 10 (trap period end)', trapEndRaw);
  const trapHits = parseCount(fields[10]);
  if (trapHits === undefined || (trapHits !== null && trapHits > 2_147_483_647)) {
    return fail(`column 11 (trap hits): not a whole number: ${quote(fields[10]!)}`);
  }
  if (rcpt === null && data === null && recipients === null && colour === null && band === null && trapHits === null) {
    // SNDS lists an IP only for a period it has data for: such a line would count as an IP-day with
    // SNDS data and nothing in it.
    return fail('no data: RCPT commands, DATA commands, message recipients, filter result, complaint rate and trap hits are all empty');
  }

  return {
    line,
    ip,
    day: start.localDay,
    activityStart: start.iso,
    activityEnd: end?.iso ?? null,
    activityStartRaw: startRaw,
    activityEndRaw: endRaw,
    rcptCommands: rcpt,
    dataCommands: data,
    messageRecipients: recipients,
    filterResult: colour,
    complaintBand: band,
    complaintRateLow: bounds?.low ?? null,
    complaintRateHigh: bounds?.high ?? null,
    trapStart: trapStart?.iso ?? null,
    trapEnd: trapEnd?.iso ?? null,
    trapStartRaw,
    trapEndRaw,
    trapHits,
    sampleHelo: textOrNull(fields[11]),
    jmrP1Sender: textOrNull(fields[12]),
    comments: textOrNull(fields[13]),
    extraColumns: fields.length > DATA_COLUMNS ? fields.slice(DATA_COLUMNS) : null,
  };
}

/** Exports repeat a handful of band spellings on every line. */
const KNOWN_BANDS = new Map<string, { low: number; high: number | null } | null>([
  ['< 0.1%', { low: 0, high: 0.001 }],
  ['<0.1%', { low: 0, high: 0.001 }],
  ['0.1% - < 1%', { low: 0.001, high: 0.01 }],
  ['1% - < 2%', { low: 0.01, high: 0.02 }],
  ['2% - < 4%', { low: 0.02, high: 0.04 }],
  ['>4%', { low: 0.04, high: null }],
  ['> 4%', { low: 0.04, high: null }],
]);

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const STAMP = '\\d{1,2}/\\d{1,2}/\\d{4} \\d{1,2}:\\d{2} [AP]M';
/** Empty, or text without quotes, commas or line breaks that neither starts nor ends with a space. */
const TEXT = '(?:[^,"\\s](?:[^,"\\r\\n]*[^,"\\s])?)?';
/** A comment in quotes (it holds commas): not empty, no padding inside, doubled quotes, one line.
 * COPY reads such a field exactly as papaparse does. */
const QUOTED = '"(?:[^"\\s]|"")(?:(?:[^"\\r\\n]|"")*(?:[^"\\s]|""))?"';
const CLEAN_LINE = new RegExp(
  `^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET},(${STAMP}),(${STAMP})?,\\d{0,15},\\d{0,15},\\d{0,15},(GREEN|YELLOW|RED)?,(${TEXT}),(${STAMP})?,(${STAMP})?,\\d{0,9},${TEXT},${TEXT}(,(?:${QUOTED}|${TEXT}))?$`,
);

export interface CleanDataLine {
  day: string;
  /** The activity start as an instant (ISO, UTC): with the IP, what makes a line a repeat. */
  start: string;
  /** The complaint band as text (null when empty). */
  complaintBand: string | null;
  /** 13 fields rather than 14. */
  short: boolean;
}

type TimestampOf = (raw: string) => SndsTimestamp | null;

/**
 * The loader's fast path: for a line in the exact shape SNDS writes (13 or 14 fields, dotted IPv4,
 * `M/D/YYYY h:mm AM` timestamps, upper-case colour, no padding, only the comment quoted) one regular expression
 * checks every field and only what the database needs is computed, so the line itself can go to COPY.
 * Returns null for any other line, which then takes the full parser; a test holds the two to the same
 * verdict and the same values.
 */
export function cleanDataLine(raw: string, timestamps: readonly [TimestampOf, TimestampOf, TimestampOf, TimestampOf]): CleanDataLine | null {
  const m = CLEAN_LINE.exec(raw);
  if (!m) return null;
  // One memo per column: consecutive lines mostly repeat each column's timestamp.
  const start = timestamps[0](m[1]!);
  if (!start) return null;
  if (m[2] !== undefined && !timestamps[1](m[2])) return null;
  if (m[5] !== undefined && !timestamps[2](m[5])) return null;
  if (m[6] !== undefined && !timestamps[3](m[6])) return null;
  const band = m[4] || null;
  // No colour and no band: the full parser checks whether the line holds any data at all.
  if (band === null && m[3] === undefined) return null;
  if (band !== null && !complaintBandBounds(band)) return null;
  return { day: start.localDay, start: start.iso, complaintBand: band, short: m[7] === undefined };
}

const BAND_BELOW = /^<\s*(\d+(?:\.\d+)?)\s*%$/;
const BAND_RANGE = /^(\d+(?:\.\d+)?)\s*%\s*-\s*<?\s*(\d+(?:\.\d+)?)\s*%$/;
const BAND_ABOVE = /^>\s*=?\s*(\d+(?:\.\d+)?)\s*%$/;
const BAND_POINT = /^(\d+(?:\.\d+)?)\s*%$/;

/**
 * A complaint band's numeric bounds as fractions: `< 0.1%` → 0 … 0.001, `0.1% - < 1%` → 0.001 … 0.01,
 * `>4%` → 0.04 … none, `0.4%` → 0.004 … 0.004. Null when the text is no band we know.
 */
export function complaintBandBounds(band: string): { low: number; high: number | null } | null {
  const known = KNOWN_BANDS.get(band);
  if (known !== undefined) return known;
  const text = band.trim();
  let m = BAND_BELOW.exec(text);
  if (m) return { low: 0, high: percent(m[1]!) };
  m = BAND_RANGE.exec(text);
  if (m) return { low: percent(m[1]!), high: percent(m[2]!) };
  m = BAND_ABOVE.exec(text);
  if (m) return { low: percent(m[1]!), high: null };
  m = BAND_POINT.exec(text);
  if (m) return { low: percent(m[1]!), high: percent(m[1]!) };
  return null;
}

/** "0.1" (percent) → 0.001, exact in decimal: shift the point rather than divide binary floats. */
function percent(text: string): number {
  const [whole, fraction = ''] = text.split('.');
  const digits = `${whole}${fraction}`.replace(/^0+(?=\d)/, '');
  return Number(`${digits}e-${fraction.length + 2}`);
}

/**
 * The export's columns in order, each with the names headers have been seen to give it (compared
 * lower case, letters and digits only): Microsoft's own wording first, then the shorter ones of
 * public clients.
 */
const HEADER_NAMES: readonly (readonly string[])[] = [
  ['IP Address', 'ip', 'ipaddress'],
  ['Activity start', 'start', 'activitystartdate', 'activityperiodstart', 'periodstart'],
  ['Activity end', 'end', 'activityenddate', 'activityperiodend', 'periodend'],
  ['RCPT commands', 'rcpt', 'rcptcommand'],
  ['DATA commands', 'data', 'datacommand'],
  ['Message recipients', 'recipients', 'messagerecipient'],
  ['Filter result', 'filter', 'filterresults', 'spamfilterresult'],
  ['Complaint rate', 'complaint', 'complaints', 'complaintrates'],
  ['Trap message period start', 'trapstart', 'trapmessagestart', 'trapperiodstart'],
  ['Trap message period end', 'trapend', 'trapmessageend', 'trapperiodend'],
  ['Trap hits', 'traps', 'traphit', 'trapmessagehits'],
  ['Sample HELO', 'helo', 'samplehelo'],
  ['JMR P1 Sender', 'jmr', 'jmrp1', 'jmrsender', 'p1sender'],
  ['Comments', 'comment'],
];

const headerKey = (text: string) => text.toLowerCase().replace(/[^a-z0-9]/g, '');
const HEADER_KEYS = HEADER_NAMES.map((names) => new Set(names.map(headerKey)));
const ANY_HEADER_KEY = new Set(HEADER_KEYS.flatMap((keys) => [...keys]));

/** Line 1 names columns (rather than being a row, or text that is no export at all). */
function looksLikeHeader(fields: string[]): boolean {
  const first = (fields[0] ?? '').trim().toLowerCase();
  if (/\d/.test(first) || first === '') return false;
  return first.includes('ip') || fields.filter((field) => ANY_HEADER_KEY.has(headerKey(field))).length >= 3;
}

/** How a header row differs from the layout, column by column (empty: it is the layout). */
export function headerDifferences(fields: readonly string[]): string[] {
  const differences: string[] = [];
  fields.forEach((field, i) => {
    const expected = HEADER_NAMES[i];
    if (!expected) differences.push(`column ${i + 1} ${quote(field.trim())} is not in the layout (${DATA_COLUMNS} columns)`);
    else if (!HEADER_KEYS[i]!.has(headerKey(field))) differences.push(`column ${i + 1} is ${quote(field.trim())}, expected ${quote(expected[0]!)}`);
  });
  if (fields.length < DATA_MIN_COLUMNS) differences.push(`${fields.length} columns named, the layout has ${DATA_COLUMNS}`);
  return differences;
}

const TIME_SHAPE = /^\s*(\d{1,2})\/(\d{1,2})\/(\d{4})\s/;

/** A timestamp that is no date read month first but is one read day first (13/2/2026). */
function dayFirstOnly(text: string): boolean {
  const m = TIME_SHAPE.exec(text);
  if (!m) return false;
  const [first, second] = [Number(m[1]), Number(m[2])];
  return first > 12 && first <= 31 && second >= 1 && second <= 12;
}

function quote(text: string): string {
  const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  return JSON.stringify(shown);
}

/** Over half of an input's lines bad: it is probably not an SNDS export at all. */
export function isMostlyBad(rowCount: number, errorCount: number): boolean {
  return errorCount > 0 && errorCount * 2 > rowCount + errorCount;
}
