import { isAscii } from 'node:buffer';
import type { Database, Session } from '../../db/connection.js';
import { MAX_LINE_BYTES, RecordCutter, endsLinesWithCr, forEachCsvRecord, type CsvRecord } from './csv-records.js';
import { csvNumber, csvText, csvTextArray } from './copy-csv.js';
import { cleanDataLine, complaintBandBounds, DATA_COLUMNS, DATA_MIN_COLUMNS, dataRecordParser, isMostlyBad, type SndsDataRow, type SndsRowError } from './parse-data-export.js';
import { detach, timestampParser } from './parse-timestamp.js';
import { RejectionSpool } from './rejection-spool.js';
import { SeenRows } from './seen-rows.js';
import { notePendingDays } from '../../transform/recompute.js';
import { addDays } from '../../lib/clock.js';
import { redact } from '../../lib/redact.js';

/**
 * Load one stored IP Data input into repwatch.snds_row in one transaction, streaming: bytes are cut at
 * record boundaries, parsed, and written as CSV straight into one COPY, so parsing in Node and
 * writing in PostgreSQL overlap and memory stays flat. Exports are ASCII nearly always: an ASCII
 * stretch is read as latin1 and written back as latin1 (both plain byte copies, no UTF-8 decoding or
 * encoding); a stretch with other bytes is decoded as UTF-8 (invalid sequences become U+FFFD, which
 * COPY accepts) and written back as UTF-8. The rows go in first, then the feed's older rows they
 * replace are deleted (replacedRows: the same IP and activity start, or an earlier API answer for the
 * same day), and snds_feed_day records the days with their row counts. Loads of the same feed are
 * serialised.
 */

export interface DataLoadOptions {
  feed: string;
  timezone: string;
  downloadId: number;
  /** Where the input came from, already redacted (stored with each rejected row). */
  location: string;
  /** Awaited before the rows commit (the raw bytes, stored meanwhile on another connection). */
  beforeCommit?: () => Promise<void>;
  /** The day a per-day request asked for (the REST API): rows of a day further than one day from it
   * fail the input (an answer for another day would be filed under that day). */
  requestedDay?: string | null;
}

export interface DataLoadResult {
  outcome: 'loaded' | 'empty' | 'failed';
  rowsLoaded: number;
  rowsReplaced: number;
  rowsRejected: number;
  /** Days (in the feed's zone) this input holds, sorted. */
  days: string[];
  /** A few rejected rows, for messages. */
  sampleErrors: SndsRowError[];
  detail: string | null;
  /** Loaded, but worth a look: rows merged into a day instead of replacing it, extra columns. */
  warnings: string[];
  /** Failed because over half the lines are no IP Data rows: probably not an export at all. */
  notAnExport?: boolean;
}

/**
 * The COPY column order: first what the parser computes, then the export's own 14 columns in their
 * order, so that a clean line can be passed to COPY as it stands behind a computed prefix (no
 * per-field re-serialising), then extra columns.
 */
export const SNDS_ROW_COLUMNS = [
  'feed', 'day', 'complaint_rate_low', 'complaint_rate_high', 'download_id', 'line_no',
  'ip', 'activity_start_raw', 'activity_end_raw', 'rcpt_commands', 'data_commands', 'message_recipients', 'filter_result',
  'complaint_band', 'trap_start_raw', 'trap_end_raw', 'trap_hits', 'sample_helo', 'jmr_p1_sender', 'comments',
  'extra_columns',
] as const;

/** How much CSV to hand to COPY at a time: large enough to amortise, small enough to stay lean. */
const COPY_CHUNK_BYTES = 256 * 1024;

/** Line rejections kept for an input that fails as a whole (its rows are rolled back). */
export const FAILED_INPUT_KEPT_REJECTIONS = 100;

/** Nothing of the input loads; the message says why. */
class InputFailed extends Error {
  constructor(message: string, readonly notAnExport = false) {
    super(message);
  }
}

/** What the parse pass learnt about the input as a whole. */
interface InputFacts {
  repeatedLines: number;
  /** Rows loaded with more than DATA_COLUMNS fields, and the first one's line. */
  extraColumnLines: number;
  firstExtraColumnLine: number;
  /** The first line that puts the whole input in doubt (failsInput). */
  failure: string | null;
  /** Set when the input ends inside a line: a cut-off download. */
  cutOff: string | null;
  /** Set when a line runs over MAX_LINE_BYTES without a line break: the rest of the input is not read. */
  overlong: string | null;
}

export async function loadDataExport(database: Database, bytes: AsyncIterable<Buffer>, options: DataLoadOptions): Promise<DataLoadResult> {
  const spool = new RejectionSpool('snds_data', options.downloadId, options.location, undefined, FAILED_INPUT_KEPT_REJECTIONS);
  const dayCounts = new Map<string, number>();
  const facts: InputFacts = { repeatedLines: 0, extraColumnLines: 0, firstExtraColumnLine: 0, failure: null, cutOff: null, overlong: null };
  let rowsLoaded = 0;
  try {
    return await database.transaction(async (session) => {
      // Loads of one feed take turns (a manual backfill beside the scheduled re-fetch): otherwise each
      // reads the days held before the other commits, neither deletes the other's rows, and every row
      // of the days both hold counts twice. The lock ends with the transaction.
      await session.query(`select pg_advisory_xact_lock(hashtext('repwatch.snds_load'), hashtext($1))`, [options.feed]);
      const held = new Set(
        (await session.query<{ day: string }>(`select to_char(day, 'YYYY-MM-DD') as day from repwatch.snds_feed_day where feed = $1`, [options.feed])).map(
          (r) => r.day,
        ),
      );
      const rows = rowsAsCopyCsv(bytes, options, dayCounts, spool, facts);
      rowsLoaded = await session.copyCsv('repwatch.snds_row', SNDS_ROW_COLUMNS, rows);
      const days = [...dayCounts.keys()].sort();

      await options.beforeCommit?.();
      if (facts.overlong) throw new InputFailed(facts.overlong);
      if (facts.cutOff) throw new InputFailed(facts.cutOff);
      if (facts.failure) throw new InputFailed(`${facts.failure}. Nothing of this input loaded`);
      // Repeated lines are SNDS rows, rejected only so as not to count them twice.
      if (isMostlyBad(rowsLoaded, spool.count - facts.repeatedLines)) throw new InputFailed(mostlyBadDetail(spool, rowsLoaded), true);
      if (facts.extraColumnLines * 2 > rowsLoaded) {
        throw new InputFailed(
          `${facts.extraColumnLines} of ${rowsLoaded} rows have more than ${DATA_COLUMNS} fields (first: line ${facts.firstExtraColumnLine}): ` +
            'the layout has changed (Microsoft announced new columns), so the columns cannot be trusted by position; nothing of this input loaded',
        );
      }
      if (rowsLoaded === 0 && spool.count === 0) {
        await markDownload(session, options.downloadId, 'empty', { rowsLoaded: 0, daysLoaded: 0, rowsReplaced: 0, rowsRejected: 0, detail: 'no data lines' });
        return { outcome: 'empty' as const, rowsLoaded: 0, rowsReplaced: 0, rowsRejected: 0, days: [], sampleErrors: [], detail: 'no data lines', warnings: [] };
      }
      if (options.requestedDay) {
        const [from, to] = [addDays(options.requestedDay, -1), addDays(options.requestedDay, 1)];
        const elsewhere = days.filter((day) => day < from || day > to);
        if (elsewhere.length) {
          throw new InputFailed(
            `the answer for ${options.requestedDay} holds rows of ${elsewhere.length} other day(s) (${elsewhere.slice(0, 3).join(', ')}${elsewhere.length > 3 ? ', …' : ''}): ` +
              'not the day asked for (its activity periods start on it or the day before); nothing of it loaded',
          );
        }
      }
      const warnings: string[] = [];
      if (facts.extraColumnLines) {
        warnings.push(
          `${options.location}: ${facts.extraColumnLines} line(s) have more than ${DATA_COLUMNS} fields (first: line ${facts.firstExtraColumnLine}); ` +
            'the extra fields are kept in extra_columns: an unquoted comma in a comment, or a column Microsoft added',
        );
      }

      const replaced = await replaceRows(session, options, days.filter((day) => held.has(day)));
      const rowsReplaced = replaced.reduce((n, r) => n + r.n, 0);
      // A download that lost rows is no longer whole: the same bytes again are a load, not a duplicate.
      const lost = new Map<number, number>();
      for (const r of replaced) lost.set(r.download_id, (lost.get(r.download_id) ?? 0) + r.n);
      if (lost.size) {
        await session.query(
          `update repwatch.raw_download d set rows_lost = coalesce(d.rows_lost, 0) + l.n from unnest($1::bigint[], $2::int[]) as l(id, n) where d.id = l.id`,
          [[...lost.keys()], [...lost.values()]],
        );
      }
      // The days this input holds are now this download's latest word on them; their row counts are
      // exact (other downloads' rows merged into a day count too). Days an earlier API answer lost rows
      // from are counted again, and dropped when nothing is left of them.
      const touched = [...new Set([...days, ...replaced.map((r) => r.day)])].sort();
      const recount = touched.filter((day) => held.has(day));
      const counted = new Map(
        recount.length === 0
          ? []
          : (await session.query<{ day: string; n: number }>(
              `select to_char(day, 'YYYY-MM-DD') as day, count(*)::int as n from repwatch.snds_row where feed = $1 and day = any($2::date[]) group by day`,
              [options.feed, recount],
            )).map((r) => [r.day, r.n]),
      );
      const rowCount = (day: string) => (held.has(day) ? (counted.get(day) ?? 0) : dayCounts.get(day)!);
      await session.query(
        `insert into repwatch.snds_feed_day (feed, day, download_id, row_count, loaded_at)
         select $1, d.day, $2, d.n, now() from unnest($3::date[], $4::int[]) as d(day, n)
         on conflict (feed, day) do update set download_id = excluded.download_id, row_count = excluded.row_count, loaded_at = excluded.loaded_at`,
        [options.feed, options.downloadId, days, days.map(rowCount)],
      );
      const supersededOnly = touched.filter((day) => !dayCounts.has(day));
      if (supersededOnly.length) {
        await session.query(
          `update repwatch.snds_feed_day f set row_count = d.n from unnest($2::date[], $3::int[]) as d(day, n) where f.feed = $1 and f.day = d.day`,
          [options.feed, supersededOnly, supersededOnly.map(rowCount)],
        );
        await session.query(`delete from repwatch.snds_feed_day where feed = $1 and day = any($2::date[]) and row_count = 0`, [options.feed, supersededOnly]);
      }
      await notePendingDays(session, touched);
      if (spool.count) await session.copyCsv('repwatch.rejection', RejectionSpool.columns, spool.csv());
      const detail = spool.count ? `${spool.count} line(s) rejected, e.g. line ${spool.sample[0]!.line}: ${spool.sample[0]!.reason}` : null;
      await markDownload(session, options.downloadId, 'loaded', { rowsLoaded, daysLoaded: days.length, rowsReplaced, rowsRejected: spool.count, detail });
      return { outcome: 'loaded' as const, rowsLoaded, rowsReplaced, rowsRejected: spool.count, days, sampleErrors: spool.sample, detail, warnings };
    });
  } catch (error) {
    if (!(error instanceof InputFailed)) throw error;
    const detail = error.message;
    await markFailed(database, options, detail, spool.count, 'snds_data', spool.kept);
    return { outcome: 'failed', rowsLoaded: 0, rowsReplaced: 0, rowsRejected: spool.count, days: [], sampleErrors: spool.sample, detail, warnings: [], notAnExport: error.notAnExport };
  } finally {
    spool.dispose();
  }
}

function mostlyBadDetail(spool: RejectionSpool, rowsLoaded: number): string {
  return (
    `${spool.count} of ${rowsLoaded + spool.count} lines are not IP Data rows (over half): probably not an SNDS IP Data export; nothing loaded. ` +
    `First: line ${spool.sample[0]?.line}: ${spool.sample[0]?.reason}`
  );
}

/**
 * Delete the feed's older rows that this input's rows replace, and say how many per day and download.
 *
 * A row's day is the date its activity period starts, and periods are often not calendar days: a day's
 * export also holds rows that began the evening before, so two exports share days, in any proportion.
 * No input may therefore take a day away from another: a row replaces only the feed's rows of the same
 * IP and activity start (compared as written, else as instants, so spellings of one time match). The one
 * exception is a newer answer of the SNDS API for the same requested day (checked to hold that day's
 * rows): it supersedes the earlier answer whole, so a period a revision dropped goes too. A file or a
 * link's download never deletes rows it does not have: they stay until a row of theirs comes again.
 * Only days the feed already holds are looked at: a first load costs nothing here.
 */
async function replaceRows(session: Session, options: DataLoadOptions, heldDays: readonly string[]): Promise<{ day: string; download_id: number; n: number }[]> {
  const out: { day: string; download_id: number; n: number }[] = [];
  if (options.requestedDay) {
    out.push(
      ...(await session.query<{ day: string; download_id: number; n: number }>(
        `with earlier as (
           select d.id from repwatch.raw_download d
            where d.feed = $1 and d.kind = 'ip_data' and d.source = 'api' and d.requested_day = $2::date and d.id < $3
         ),
         gone as (
           delete from repwatch.snds_row r using earlier e
            where r.feed = $1 and r.download_id = e.id and r.day between $2::date - 1 and $2::date + 1
           returning r.day, r.download_id
         )
         select to_char(day, 'YYYY-MM-DD') as day, download_id::int as download_id, count(*)::int as n from gone group by 1, 2`,
        [options.feed, options.requestedDay, options.downloadId],
      )),
    );
  }
  if (heldDays.length === 0) return out;
  // A hash join on (day, ip); the instant is computed only for pairs whose texts differ. Right after a
  // large load the table's statistics are stale (the new rows look like one row), and the planner's
  // nested loop then compares every new row with every held one: 30,000 over a million held took over
  // ten minutes. Nested loops are off for this statement only.
  await session.query('set local enable_nestloop = off');
  const byKey = await session.query<{ day: string; download_id: number; n: number }>(
    `with fresh as materialized (
       select day, ip, activity_start_raw from repwatch.snds_row
        where feed = $1 and download_id = $3 and day = any($2::date[])
     ),
     gone as (
       delete from repwatch.snds_row r using fresh x
        where r.feed = $1 and r.day = any($2::date[]) and r.day = x.day and r.ip = x.ip and r.download_id <> $3
          and (r.activity_start_raw = x.activity_start_raw
               or repwatch.snds_time(r.activity_start_raw, 'UTC') = repwatch.snds_time(x.activity_start_raw, 'UTC'))
       returning r.day, r.download_id
     )
     select to_char(day, 'YYYY-MM-DD') as day, download_id::int as download_id, count(*)::int as n from gone group by 1, 2`,
    [options.feed, heldDays, options.downloadId],
  );
  await session.query('set local enable_nestloop to default');
  return [...out, ...byKey];
}

/** A failed input keeps its raw bytes, one rejection that says why (no line number), and the first
 * FAILED_INPUT_KEPT_REJECTIONS line rejections (its rows were rolled back). */
export async function markFailed(
  database: Database,
  options: { downloadId: number; location: string },
  detail: string,
  rejected: number,
  source = 'snds_data',
  lines: readonly SndsRowError[] = [],
): Promise<void> {
  // The detail quotes input text, which may hold a secret (a body echoing the link's key).
  const reason = redact(detail);
  await database.transaction(async (session) => {
    await markDownload(session, options.downloadId, 'failed', { rowsLoaded: 0, rowsRejected: rejected, detail: reason });
    await session.query('insert into repwatch.rejection (source, input_id, location, line_no, reason, raw) values ($1, $2, $3, null, $4, null)', [
      source,
      options.downloadId,
      options.location,
      reason,
    ]);
    const kept = lines.slice(0, FAILED_INPUT_KEPT_REJECTIONS);
    if (kept.length) {
      await session.query(
        `insert into repwatch.rejection (source, input_id, location, line_no, reason, raw)
         select $1, $2, $3, e.line_no, e.reason, e.raw from unnest($4::int[], $5::text[], $6::text[]) as e(line_no, reason, raw)`,
        [source, options.downloadId, options.location, kept.map((e) => e.line), kept.map((e) => redact(e.reason)), kept.map((e) => redact(e.raw))],
      );
    }
  });
}

export async function markDownload(
  session: Session,
  id: number,
  outcome: 'loaded' | 'empty' | 'failed',
  counts: { rowsLoaded?: number; daysLoaded?: number; rowsReplaced?: number; rowsRejected?: number; detail?: string | null },
): Promise<void> {
  await session.query(
    `update repwatch.raw_download set outcome = $2, rows_loaded = $3, days_loaded = $4, rows_replaced = $5, rows_rejected = $6, detail = $7 where id = $1`,
    [id, outcome, counts.rowsLoaded ?? null, counts.daysLoaded ?? null, counts.rowsReplaced ?? null, counts.rowsRejected ?? null, counts.detail ? redact(counts.detail) : null],
  );
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const EMPTY_BYTES = Buffer.alloc(0);

/**
 * Why the input looks cut off, or null: its last line has no line break and fewer fields than any
 * IP Data row (a download that stopped mid-line, e.g. a gzip stream decoded without its end). Such a
 * line is not one bad row among good ones: the rest of the day is missing, so nothing may replace it.
 */
export function cutOffLastLine(tail: Buffer): string | null {
  if (tail.length === 0 || tail[tail.length - 1] === 0x0a) return null;
  const text = tail.subarray(tail.lastIndexOf(0x0a) + 1).toString('utf8');
  if (text.trim() === '') return null;
  // The last line of a comment quoted over several lines (Comments is the last column): it closes the
  // quote and does not begin a row. Its record is whole; only a row's own first line is judged.
  const quotes = text.split('"').length - 1;
  const beginsRow = /^"?[0-9A-Fa-f:.]+"?,/.test(text);
  if (quotes % 2 === 1 && /"\s*$/.test(text) && !beginsRow) return null;
  let fields = 0;
  forEachCsvRecord(text, 1, (record) => {
    fields = record.fields.length;
  });
  // A row whose last quoted field never closes stopped inside it, however many fields came before.
  if (fields >= DATA_MIN_COLUMNS && !(beginsRow && quotes % 2 === 1)) return null;
  return (
    `the input ends inside a line (no line break after its last line, which has ${fields} of ${DATA_COLUMNS} fields: ${JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text)}): ` +
    'a cut-off download or file; nothing of it loaded'
  );
}

/** Parse streamed bytes into COPY CSV for snds_row, counting rows per day and spooling rejections. */
async function* rowsAsCopyCsv(
  bytes: AsyncIterable<Buffer>,
  options: DataLoadOptions,
  dayCounts: Map<string, number>,
  spool: RejectionSpool,
  facts: InputFacts,
): AsyncGenerator<Buffer> {
  const parse = dataRecordParser({ timezone: options.timezone });
  const seen = new SeenRows();
  /** True when the line repeats the IP and activity start (as an instant) of an earlier line: rejected, saying which. */
  const repeated = (ip: string, ipEnd: number, start: string, line: number, raw: string): boolean => {
    const first = seen.firstLineOf(ip, ipEnd, start, line);
    if (first === null) return false;
    facts.repeatedLines++;
    spool.add({ line, reason: `the same IP and activity start as line ${first} (a repeated line, or overlapping exports joined): not counted twice`, raw });
    return true;
  };
  const tz = options.timezone;
  const timestamps = [timestampParser(tz), timestampParser(tz), timestampParser(tz), timestampParser(tz)] as const;
  // "low,high" of each band, written as text once.
  const bandColumns = new Map<string | null, string>();
  const boundsCsv = (band: string | null) => {
    let text = bandColumns.get(band);
    if (text === undefined) {
      const bounds = band === null ? null : complaintBandBounds(band);
      text = `${csvNumber(bounds?.low ?? null)},${csvNumber(bounds?.high ?? null)}`;
      bandColumns.set(band === null ? null : detach(band), text);
    }
    return text;
  };
  const feed = csvText(options.feed);
  // Every line starts with the feed's name: latin1 output needs it to be ASCII too.
  const feedIsAscii = isAscii(Buffer.from(feed));
  // A stretch ends at a line break, so no UTF-8 sequence is split; a BOM other than the first is data.
  const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
  const downloadId = String(options.downloadId);
  const cutter = new RecordCutter();
  let line = 1;
  const out = new ByteChunks(COPY_CHUNK_BYTES);
  let first = true;
  // Rows of one day come together: count a run of them and add it to the map when the day changes.
  let runDay = '';
  let runCount = 0;
  const settle = () => {
    if (runCount) dayCounts.set(runDay, (dayCounts.get(runDay) ?? 0) + runCount);
    runCount = 0;
  };
  const count = (day: string) => {
    if (day !== runDay) {
      settle();
      runDay = day;
    }
    runCount++;
  };
  // A line in SNDS's exact shape goes to COPY as it stands behind the computed columns.
  const clean = (raw: string, lineNo: number): boolean => {
    const fast = cleanDataLine(raw, timestamps);
    if (!fast) return false;
    // The key is the line's IP (the regular expression allows only its canonical spelling), hashed in
    // place (no slice kept), and the activity start as an instant.
    if (repeated(raw, raw.indexOf(','), fast.start, lineNo, raw)) return true;
    count(fast.day);
    out.write(`${feed},${fast.day},${boundsCsv(fast.complaintBand)},${downloadId},${lineNo},${raw}${fast.short ? ',,' : ','}\n`);
    return true;
  };
  // Anything else: the full parser, and the export's columns written again from its values.
  const parsed = (record: CsvRecord) => {
    const row = parse(record);
    if (row === null) return;
    if ('reason' in row) {
      spool.add(row);
      if (row.failsInput && facts.failure === null) facts.failure = `line ${row.line}: ${row.reason}`;
      return;
    }
    if (repeated(row.ip, row.ip.length, row.activityStart, row.line, record.raw)) return;
    if (row.extraColumns && facts.extraColumnLines++ === 0) facts.firstExtraColumnLine = row.line;
    count(row.day);
    out.write(`${feed},${row.day},${csvNumber(row.complaintRateLow)},${csvNumber(row.complaintRateHigh)},${downloadId},${row.line},${exportColumnsCsv(row)}`);
  };
  /** The last bytes handed to the parser, to tell whether the input ends inside a line. */
  let lastPortion: Buffer = EMPTY_BYTES;
  const take = (portion: Buffer) => {
    if (first && portion.subarray(0, 3).equals(UTF8_BOM)) portion = portion.subarray(3);
    if (portion.length) first = false;
    lastPortion = portion;
    const ascii = isAscii(portion);
    const text = ascii ? portion.toString('latin1') : utf8.decode(portion);
    out.encoding = ascii && feedIsAscii ? 'latin1' : 'utf8';
    line += forEachCsvRecord(text, line, parsed, clean);
    out.settle();
  };
  // Lines ended by a lone CR (old Mac Excel) are told from the first bytes, which the cutter holds
  // until it sees a line feed anyway; such an input gets a line feed for every CR.
  let loneCr: boolean | null = null;
  const undecided: Buffer[] = [];
  let undecidedBytes = 0;
  const lineFeeds = (piece: Buffer): Buffer => (loneCr ? Buffer.from(piece.map((b) => (b === 0x0d ? 0x0a : b))) : piece);
  // The lines before an overlong one are parsed (their rejections are kept); then reading stops: the
  // input fails whole, and nothing after such a line is worth a pass over up to 256 MB.
  const stopped = () => {
    if (!cutter.overlong) return false;
    facts.overlong =
      `line ${line} runs over ${MAX_LINE_BYTES} bytes without a line break (an SNDS row is under 1 KB): not an SNDS IP Data export, ` +
      'or a damaged one; the rest of it was not read and nothing of it loaded';
    return true;
  };
  for await (const piece of bytes) {
    if (loneCr === null) {
      undecided.push(piece);
      undecidedBytes += piece.length;
      if (!piece.includes(0x0a) && undecidedBytes < 64 * 1024) continue;
      loneCr = endsLinesWithCr(Buffer.concat(undecided));
      for (const held of undecided.splice(0)) take(cutter.push(lineFeeds(held)));
    } else {
      take(cutter.push(lineFeeds(piece)));
    }
    yield* out.full();
    if (stopped()) break;
  }
  if (loneCr === null) {
    loneCr = endsLinesWithCr(Buffer.concat(undecided));
    for (const held of undecided.splice(0)) take(cutter.push(lineFeeds(held)));
  }
  if (!stopped()) {
    take(cutter.end());
    facts.cutOff = cutOffLastLine(lastPortion);
  }
  settle();
  yield* out.full();
  const rest = out.rest();
  if (rest) yield rest;
}

/**
 * COPY input collected as bytes: each line is written into a buffer as soon as it is made, so no
 * string of thousands of lines is kept alive between garbage collections (a measured third of the
 * parse time went to copying such survivors).
 */
class ByteChunks {
  private buffer: Buffer;
  private used = 0;
  private done: Buffer[] = [];
  constructor(private readonly size: number) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  private lines: string[] = [];

  /** How the lines of the current stretch of input are encoded: latin1 only when they are all ASCII. */
  encoding: 'latin1' | 'utf8' = 'utf8';

  /** Lines are gathered a few hundred at a time and written with one call. */
  write(text: string): void {
    this.lines.push(text);
    if (this.lines.length >= 256) this.settle();
  }

  /** Write out the lines gathered so far (at the latest when a stretch of input ends). */
  settle(): void {
    if (!this.lines.length) return;
    const text = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    const encoding = this.encoding;
    const most = encoding === 'latin1' ? text.length : text.length * 3;
    if (this.used + most > this.size) {
      if (this.used) this.done.push(this.buffer.subarray(0, this.used));
      this.buffer = Buffer.allocUnsafe(Math.max(this.size, most));
      this.used = 0;
    }
    this.used += encoding === 'latin1' ? this.buffer.write(text, this.used, 'latin1') : this.buffer.write(text, this.used, 'utf8');
  }

  /** Completed chunks, each ending at a line boundary. */
  *full(): Generator<Buffer> {
    const done = this.done;
    this.done = [];
    yield* done;
  }

  rest(): Buffer | null {
    this.settle();
    const rest = this.used ? this.buffer.subarray(0, this.used) : null;
    this.buffer = Buffer.allocUnsafe(this.size);
    this.used = 0;
    return rest;
  }
}

/** The export's columns and extra columns re-serialised from a parsed row (quoted fields, odd spacing). */
function exportColumnsCsv(r: SndsDataRow): string {
  return (
    [
      r.ip,
      csvText(r.activityStartRaw),
      csvText(r.activityEndRaw),
      csvNumber(r.rcptCommands),
      csvNumber(r.dataCommands),
      csvNumber(r.messageRecipients),
      r.filterResult ?? '',
      csvText(r.complaintBand),
      csvText(r.trapStartRaw),
      csvText(r.trapEndRaw),
      csvNumber(r.trapHits),
      csvText(r.sampleHelo),
      csvText(r.jmrP1Sender),
      csvText(r.comments),
      csvTextArray(r.extraColumns),
    ].join(',') + '\n'
  );
}
