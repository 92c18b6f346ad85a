import type { Database } from '../../db/connection.js';

/**
 * Rows written straight into the core tables the ingest stages fill (raw_download, snds_row,
 * snds_status_range, mail_message + feedback_report, block_evidence), so the transform is tested on
 * exactly the data it will read without depending on the loaders.
 */
export class Fixture {
  private line = 0;
  private dataDownload: number | undefined;
  private message = 0;
  /** Days written since the last takeTouched(): what an ingest would pass to recomputeDays. */
  private touched = new Set<string>();

  constructor(private readonly database: Pick<Database, 'query'>) {}

  takeTouched(): string[] {
    const days = [...this.touched].sort();
    this.touched.clear();
    return days;
  }

  async download(kind: 'ip_data' | 'ip_status', fetchedAt: string, options: { feed?: string; outcome?: string } = {}): Promise<number> {
    const rows = await this.database.query<{ id: number }>(
      `insert into repwatch.raw_download (source, kind, feed, location, fetched_at, sha256, byte_size, outcome)
       values ('file', $1, $2, 'fixture', $3::timestamptz, md5(random()::text), 0, $4) returning id`,
      [kind, options.feed ?? 'main', fetchedAt, options.outcome ?? 'loaded'],
    );
    return rows[0]!.id;
  }

  async snds(row: {
    ip: string;
    day: string;
    recipients?: number | null;
    filter?: string | null;
    traps?: number | null;
    band?: string | null;
    rateLow?: number | null;
    rateHigh?: number | null;
    feed?: string;
    rcpt?: number | null;
  }): Promise<void> {
    this.dataDownload ??= await this.download('ip_data', '2026-01-01T00:00:00Z');
    this.touched.add(row.day);
    const recipients = row.recipients === undefined ? 1000 : row.recipients;
    await this.database.query(
      `insert into repwatch.snds_row (feed, day, ip, activity_start_raw, rcpt_commands, data_commands,
         message_recipients, filter_result, complaint_band, complaint_rate_low, complaint_rate_high, trap_hits, download_id, line_no)
       values ($1, $2::date, $3::inet, 'raw', $4, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        row.feed ?? 'main', row.day, row.ip, row.rcpt === undefined ? recipients : row.rcpt, recipients,
        row.filter === undefined ? 'GREEN' : row.filter, row.band === undefined ? '< 0.1%' : row.band,
        row.rateLow === undefined ? 0 : row.rateLow, row.rateHigh === undefined ? 0.001 : row.rateHigh,
        row.traps === undefined ? 0 : row.traps, this.dataDownload, ++this.line,
      ],
    );
    // As the loader records it: the feed holds this day.
    await this.database.query(
      `insert into repwatch.snds_feed_day (feed, day, download_id, row_count) values ($1, $2::date, $3, 1)
       on conflict (feed, day) do update set row_count = repwatch.snds_feed_day.row_count + 1`,
      [row.feed ?? 'main', row.day, this.dataDownload],
    );
  }

  /** An IP Status download fetched at `fetchedAt` holding these ranges (none: an empty export). */
  async status(fetchedAt: string, ranges: [string, string, boolean?, string?][], options: { feed?: string; outcome?: string } = {}): Promise<number> {
    const id = await this.download('ip_status', fetchedAt, { ...options, outcome: options.outcome ?? (ranges.length ? 'loaded' : 'empty') });
    this.touched.add(new Date(fetchedAt).toISOString().slice(0, 10));
    let line = 0;
    for (const [first, last, blocked, details] of ranges) {
      await this.database.query(
        `insert into repwatch.snds_status_range (download_id, feed, line_no, first_ip, last_ip, blocked, details)
         values ($1, $2, $3, $4::inet, $5::inet, $6, $7)`,
        [id, options.feed ?? 'main', ++line, first, last, blocked ?? true, details ?? 'Blocked due to user complaints or other evidence of spamming'],
      );
    }
    return id;
  }

  async complaint(row: { ip: string; day: string; incidents?: number; isComplaint?: boolean }): Promise<void> {
    this.touched.add(row.day);
    const key = `fixture-${++this.message}-${Math.random()}`;
    const ref = await this.database.query<{ id: number }>(
      `insert into repwatch.mail_message (stream, mailbox, message_key, sha256, byte_size, classification)
       values ('jmrp', 'fixture', $1, md5($1), 100, 'complaint') returning id`,
      [key],
    );
    await this.database.query(
      `insert into repwatch.feedback_report (message_ref, mailbox, report_format, feedback_type, is_complaint, source_ip, day, incidents, complained_at)
       values ($1, 'fixture', 'arf', $2, $3, $4::inet, $5::date, $6, $5::date::timestamp at time zone 'UTC')`,
      [ref[0]!.id, row.isComplaint === false ? 'not-spam' : 'abuse', row.isComplaint ?? true, row.ip, row.day, row.incidents ?? 1],
    );
  }

  async evidence(row: { ip: string; day: string; kind: 'block' | 'warning'; route?: string | null; reason?: string | null }): Promise<void> {
    this.touched.add(row.day);
    await this.database.query(
      `insert into repwatch.block_evidence (ip, day, kind, route, reason, source, detail) values ($1::inet, $2::date, $3, $4, $5, 'fixture', null)`,
      [row.ip, row.day, row.kind, row.route ?? null, row.reason ?? null],
    );
  }
}

/** Empty every table the transform reads or writes, so each test starts from nothing. */
export async function clearTables(database: Pick<Database, 'query'>): Promise<void> {
  await database.query(`truncate repwatch.ip_flag, repwatch.ip_day_fact, repwatch.block_evidence, repwatch.snds_row,
    repwatch.snds_status_range, repwatch.feedback_report, repwatch.mail_message, repwatch.raw_download_chunk, repwatch.raw_download,
    repwatch.recompute_pending cascade`);
}
