import { isAscii } from 'node:buffer';
import type { Database, Session } from '../../db/connection.js';
import { RecordCutter, forEachCsvRecord, type CsvRecord } from './csv-records.js';
import { csvNumber, csvText, csvTextArray } from './copy-csv.js';
import { cleanDataLine, complaintBandBounds, dataRecordParser, isMostlyBad, type SndsDataRow, type SndsRowError } from './parse-data-export.js';
import { detach, timestampParser } from './parse-timestamp.js';
import { RejectionSpool } from './rejection-spool.js';
import { SeenRows } from './seen-rows.js';
import { notePendingDays } from '../../transform/recompute.js';
import { redact } from '../../lib/redact.js';

/**
 * Load one stored IP Data input into repwatch.snds_row in one transaction, streaming: bytes are cut at
 * record boundaries, parsed, and written as CSV straight into one COPY, so parsing in Node and
 * writing in PostgreSQL overlap and memory stays flat. Exports are ASCII nearly always: an ASCII
 * stretch is read as latin1 and written back as latin1 (both plain byte copies, no UTF-8 decoding or
 * encoding); a stretch with other bytes is decoded as UTF-8 (invalid sequences become U+FFFD, which
 * COPY accepts) and written back as UTF-8. Replacing a re-fetched day needs no merge:
 * the rows go in first, then the feed's older rows for the days this input holds are deleted, and
 * snds_feed_day records which download now holds each day. Loads of the same feed are serialised.
 */

export interface DataLoadOptions {
  feed: string;
  timezone: string;
  downloadId: number;
  /** Where the input came from, already redacted (stored with each rejected row). */
  location: string;
  /** Awaited before the rows commit (the raw bytes, stored meanwhile on another connection). */
  beforeCommit?: () => Promise<void>;
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

class MostlyBad extends Error {}

export async function loadDataExport(database: Database, bytes: AsyncIterable<Buffer>, options: DataLoadOptions): Promise<DataLoadResult> {
  const spool = new RejectionSpool('snds_data', options.downloadId, options.location);
  const dayCounts = new Map<string, number>();
  const repeats = { lines: 0 };
  let rowsLoaded = 0;
  try {
    return await database.transaction(async (session) => {
      // Loads of one feed take turns (a manual backfill beside the scheduled re-fetch): otherwise each
      // reads the days held before the other commits, neither deletes the other's rows, and every row
      // of the days both hold counts twice. The lock ends with the transaction.
      await session.query(`select pg_advisory_xact_lock(hashtext('repwatch.snds_load'), hashtext($1))`, [options.feed]);
      const held = new Set(
        (await session.query<{ day: string }>('select day from repwatch.snds_feed_day where feed = $1', [options.feed])).map((r) => r.day),
      );
      const rows = rowsAsCopyCsv(bytes, options, dayCounts, spool, repeats);
      rowsLoaded = await session.copyCsv('repwatch.snds_row', SNDS_ROW_COLUMNS, rows);
      const days = [...dayCounts.keys()].sort();

      await options.beforeCommit?.();
      // Repeated lines are SNDS rows, rejected only so as not to count them twice.
      if (isMostlyBad(rowsLoaded, spool.count - repeats.lines)) throw new MostlyBad();
      if (rowsLoaded === 0 && spool.count === 0) {
        await markDownload(session, options.downloadId, 'empty', { rowsLoaded: 0, daysLoaded: 0, rowsReplaced: 0, rowsRejected: 0, detail: 'no data lines' });
        return { outcome: 'empty' as const, rowsLoaded: 0, rowsReplaced: 0, rowsRejected: 0, days: [], sampleErrors: [], detail: 'no data lines' };
      }

      const replacing = days.filter((day) => held.has(day));
      let rowsReplaced = 0;
      if (replacing.length) {
        const [deleted] = await session.query<{ n: number }>(
          `with gone as (delete from repwatch.snds_row where feed = $1 and day = any($2::date[]) and download_id <> $3 returning 1)
           select count(*)::int as n from gone`,
          [options.feed, replacing, options.downloadId],
        );
        rowsReplaced = deleted?.n ?? 0;
      }
      await session.query(
        `insert into repwatch.snds_feed_day (feed, day, download_id, row_count, loaded_at)
         select $1, d.day, $2, d.n, now() from unnest($3::date[], $4::int[]) as d(day, n)
         on conflict (feed, day) do update set download_id = excluded.download_id, row_count = excluded.row_count, loaded_at = excluded.loaded_at`,
        [options.feed, options.downloadId, days, days.map((d) => dayCounts.get(d)!)],
      );
      await notePendingDays(session, days);
      if (spool.count) await session.copyCsv('repwatch.rejection', RejectionSpool.columns, spool.csv());
      const detail = spool.count ? `${spool.count} line(s) rejected, e.g. line ${spool.sample[0]!.line}: ${spool.sample[0]!.reason}` : null;
      await markDownload(session, options.downloadId, 'loaded', { rowsLoaded, daysLoaded: days.length, rowsReplaced, rowsRejected: spool.count, detail });
      return { outcome: 'loaded' as const, rowsLoaded, rowsReplaced, rowsRejected: spool.count, days, sampleErrors: spool.sample, detail };
    });
  } catch (error) {
    if (!(error instanceof MostlyBad)) throw error;
    const detail =
      `${spool.count} of ${rowsLoaded + spool.count} lines are not IP Data rows (over half): probably not an SNDS IP Data export; nothing loaded. ` +
      `First: line ${spool.sample[0]?.line}: ${spool.sample[0]?.reason}`;
    await markFailed(database, options, detail, spool.count);
    return { outcome: 'failed', rowsLoaded: 0, rowsReplaced: 0, rowsRejected: spool.count, days: [], sampleErrors: spool.sample, detail };
  } finally {
    spool.dispose();
  }
}

/** A failed input keeps its raw bytes and one rejection that says why (its rows were rolled back). */
export async function markFailed(database: Database, options: { downloadId: number; location: string }, detail: string, rejected: number, source = 'snds_data'): Promise<void> {
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

/** Parse streamed bytes into COPY CSV for snds_row, counting rows per day and spooling rejections. */
async function* rowsAsCopyCsv(
  bytes: AsyncIterable<Buffer>,
  options: DataLoadOptions,
  dayCounts: Map<string, number>,
  spool: RejectionSpool,
  repeats: { lines: number },
): AsyncGenerator<Buffer> {
  const parse = dataRecordParser({ timezone: options.timezone });
  const seen = new SeenRows();
  /** True when the line repeats the IP and activity start of an earlier line: rejected, saying which. */
  const repeated = (key: string, end: number, line: number, raw: string): boolean => {
    const first = seen.firstLine(key, end, line);
    if (first === null) return false;
    repeats.lines++;
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
    // The key is the line's first two fields, "ip,activity start", hashed in place (no slice kept).
    if (repeated(raw, raw.indexOf(',', raw.indexOf(',') + 1), lineNo, raw)) return true;
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
      return;
    }
    const key = `${row.ip},${row.activityStartRaw}`;
    if (repeated(key, key.length, row.line, record.raw)) return;
    count(row.day);
    out.write(`${feed},${row.day},${csvNumber(row.complaintRateLow)},${csvNumber(row.complaintRateHigh)},${downloadId},${row.line},${exportColumnsCsv(row)}`);
  };
  const take = (portion: Buffer) => {
    if (first && portion.subarray(0, 3).equals(UTF8_BOM)) portion = portion.subarray(3);
    if (portion.length) first = false;
    const ascii = isAscii(portion);
    const text = ascii ? portion.toString('latin1') : utf8.decode(portion);
    out.encoding = ascii && feedIsAscii ? 'latin1' : 'utf8';
    line += forEachCsvRecord(text, line, parsed, clean);
    out.settle();
  };
  for await (const piece of bytes) {
    take(cutter.push(piece));
    yield* out.full();
  }
  take(cutter.end());
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
