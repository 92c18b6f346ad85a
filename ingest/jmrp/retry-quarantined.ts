import type { Config } from '../../config/schema.js';
import type { Database } from '../../db/connection.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { notePendingDays, recomputeDays } from '../../transform/recompute.js';
import { parseMime } from '../mailbox/mime.js';
import { pgText } from '../mailbox/sql.js';
import { loadKnownIps } from './ingest-mailbox.js';
import { parseReport, reportRecipients } from './parse-report.js';
import { protectRawMessage } from './protect-raw.js';
import { hashRecipient, insertFeedbackReports, recipientSalt, repeatedReports } from './store-reports.js';

/**
 * Quarantined complaint messages read again from the bytes kept in mail_message.raw, with today's
 * parser and configuration: after a parser fix, or a report a person repaired, what now reads as a
 * report is stored and counted (once: the row is the same message, no new key), what now reads as not
 * a report is released as such (never counted), and what is still malformed, or cannot be stored,
 * keeps its quarantine with the new reason. A report already stored from another message (a forwarded
 * copy) is released and not counted again. Released bytes are protected as the ingest protects them.
 * The copy in the mailbox's quarantine folder is left where it is; should it be moved back to the inbox, its key is known and it is archived, not counted.
 * Messages kept without bytes (over the size cap, or personal data that could not be removed) cannot
 * be read again here: they are counted as `withoutBytes`.
 */

export interface RetryQuarantinedResult {
  /** Quarantined messages read again. */
  retried: number;
  /** Out of quarantine: stored as reports, or recorded as not a report (archived, never counted). */
  released: number;
  /** Now stored as reports (complaints among them). */
  stored: number;
  /** Released, but their report was already stored from another message: not counted again. */
  repeatedReports: number;
  complaints: number;
  /** Still not readable: kept in quarantine, with the reason of this reading. */
  stillQuarantined: number;
  withoutBytes: number;
  days: string[];
}

const BATCH = 200;

/** The mailbox name given matches no stored message (a typo): a usage error, not an empty success. */
export class UnknownMailboxError extends Error {}

export async function retryQuarantined(options: { database: Database; config: Config; clock: Clock; logger?: Logger; mailbox?: string }): Promise<RetryQuarantinedResult> {
  const { database, config, clock } = options;
  // The bytes read here are the ones repwatch kept: hashes in them stand for addresses.
  const privacy = { mode: config.jmrp.recipients, salt: await recipientSalt(database, config.jmrp.recipientSalt), keptBytes: true };
  const isKnownIp = await loadKnownIps(database, config);
  const result: RetryQuarantinedResult = { retried: 0, released: 0, stored: 0, repeatedReports: 0, complaints: 0, stillQuarantined: 0, withoutBytes: 0, days: [] };
  const days = new Set<string>();
  const [{ n: withoutBytes } = { n: 0 }] = await database.query<{ n: number }>(
    `select count(*)::int as n from repwatch.mail_message where stream = 'jmrp' and quarantined and raw is null and ($1::text is null or mailbox = $1)`,
    [options.mailbox ?? null],
  );
  result.withoutBytes = withoutBytes;
  if (options.mailbox !== undefined && !config.jmrp.mailboxes.some((m) => m.name === options.mailbox)) {
    const [known] = await database.query(`select 1 from repwatch.mail_message where stream = 'jmrp' and mailbox = $1 limit 1`, [options.mailbox]);
    if (!known) throw new UnknownMailboxError(`no JMRP mailbox is configured or stored under the name "${options.mailbox}"`);
  }
  const at = clock.now().toISOString();
  let after = 0;
  for (;;) {
    const rows = await database.query<{ id: number; mailbox: string; raw: Uint8Array; delivered_at: Date | null }>(
      `select id, mailbox, raw, delivered_at from repwatch.mail_message
        where stream = 'jmrp' and quarantined and raw is not null and id > $1 and ($2::text is null or mailbox = $2)
        order by id limit ${BATCH}`,
      [after, options.mailbox ?? null],
    );
    if (rows.length === 0) break;
    after = Number(rows.at(-1)!.id);
    await database.transaction(async (session) => {
      for (const row of rows) {
        result.retried += 1;
        const raw = Buffer.from(row.raw);
        const mime = parseMime(raw);
        const parsed = parseReport(raw, { campaignHeaders: config.jmrp.campaignHeaders, isKnownIp, deliveredAt: row.delivered_at, readAt: clock.now(), mime, recipientToken: (address) => hashRecipient(address, privacy.salt) });
        if (parsed.kind === 'malformed') {
          result.stillQuarantined += 1;
          // Bytes kept by an earlier version may hold what today's protection removes.
          const kept = protectRawMessage(raw, [], privacy.mode, privacy.salt, true, mime);
          const reason = [parsed.reason, kept.note ?? '', `read again ${at}`].filter(Boolean).join('; ');
          await session.query(`update repwatch.mail_message set reason = $2, raw = case when $3 then raw else $4::bytea end where id = $1`, [row.id, pgText(reason), kept.bytes === undefined, kept.bytes ?? null]);
          continue;
        }
        let report = 'report' in parsed ? parsed.report : null;
        // Kept before its bytes were protected as they are now: protect them before the row is released.
        const kept = protectRawMessage(raw, report ? reportRecipients(report) : [], privacy.mode, privacy.salt, report === null, mime);
        // A report stored meanwhile from another message (a forwarded copy) is released, not counted again.
        const storedIn = report ? (await repeatedReports(session, [report], privacy)).get(0) : undefined;
        const repeated = storedIn !== undefined ? `the same report is already stored from message #${storedIn}: not counted again` : '';
        if (storedIn !== undefined) {
          report = null;
          result.repeatedReports += 1;
        }
        const note = [report ? report.notes.join('; ') : parsed.kind === 'not_a_report' ? parsed.reason : '', repeated, kept.note ?? '', `released from quarantine ${at}`].filter(Boolean).join('; ');
        // One savepoint per message: a row that cannot be stored keeps its quarantine, with the reason,
        // and the others go on.
        await session.query('savepoint retry_one');
        try {
          if (report) await insertFeedbackReports(session, row.mailbox, [{ message: { ref: Number(row.id) }, report }], privacy);
          await session.query(
            `update repwatch.mail_message set quarantined = false, classification = $2, reason = $3, raw = case when $4 then raw else $5::bytea end where id = $1`,
            [row.id, parsed.kind, pgText(note), kept.bytes === undefined, kept.bytes ?? null],
          );
          await session.query('release savepoint retry_one');
        } catch (error) {
          await session.query('rollback to savepoint retry_one');
          result.stillQuarantined += 1;
          await session.query(`update repwatch.mail_message set reason = $2 where id = $1`, [row.id, pgText(`could not be stored: ${(error as Error).message}; read again ${at}`.slice(0, 2000))]);
          continue;
        }
        result.released += 1;
        if (report) result.stored += 1;
        if (report?.isComplaint) result.complaints += 1;
        if (report?.isComplaint && report.day) days.add(report.day);
      }
      await notePendingDays(session, [...days]);
    });
  }
  result.days = [...days].sort();
  await recomputeDays(database, config, result.days); // with no day of its own: days an earlier run left pending
  options.logger?.info({ source: 'jmrp', ...result, days: result.days.length }, 'quarantined messages read again');
  return result;
}
