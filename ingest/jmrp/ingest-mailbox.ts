import type { Config } from '../../config/schema.js';
import type { Database } from '../../db/connection.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { notePendingDays, recomputeDays } from '../../transform/recompute.js';
import { drainMailbox, type Classification, type MessageResult } from '../mailbox/drain.js';
import { batchSizeOf, openMailboxSource, type MailboxConfig } from '../mailbox/open-source.js';
import type { MailboxSource } from '../mailbox/types.js';
import { knownIpMatcher, type KnownIpMatcher } from './derive-source-ip.js';
import { parseReport, reportRecipients, type ParsedReport } from './parse-report.js';
import { parseMime } from '../mailbox/mime.js';
import { protectRawMessage, type ProtectedRaw } from './protect-raw.js';
import { hashRecipient, insertFeedbackReports, recipientSalt, repeatedReports, sndsIps, type RecipientMode, type ReportRow } from './store-reports.js';

/**
 * Seconds between two recomputes of the touched days during a long drain (and once at the end of every
 * run). Each batch notes its days in the database as it commits (recompute_pending), so coalescing
 * loses nothing if the run dies: the next recompute takes them.
 */
const RECOMPUTE_EVERY_MS = 60_000;

export interface JmrpClassification extends Classification {
  parsed: ParsedReport;
  /** What mail_message.raw keeps (complainers' addresses hashed or removed; see protect-raw.ts). */
  kept: ProtectedRaw;
}

export interface JmrpIngestResult {
  mailbox: string;
  /** Messages read from the mailbox in this run. */
  seen: number;
  /** New messages recorded (reports, non-reports and quarantined ones). */
  stored: number;
  /** Already recorded by an earlier run or delivered twice: not counted again. */
  duplicates: number;
  quarantined: number;
  /** New complaint reports (rows in analytics.complaint) and the complaints they stand for (Incidents). */
  complaints: number;
  incidents: number;
  /** New reports that are not complaints (auth-failure, not-spam, opt-out…). */
  otherReports: number;
  /** Messages holding a report already stored from another message (migration 0012): not counted. */
  repeatedReports: number;
  notAReport: number;
  malformed: number;
  oversize: number;
  failed: number;
  archived: number;
  settleFailures: number;
  /** Complaint days this run touched (recomputed after each batch). */
  days: string[];
  /** Quarantined messages of this run with their reasons (for the CLI summary). */
  quarantine: { location: string; reason: string | null }[];
  error?: string;
  /** `error` is one only a person can fix (IMAP login, folder, TLS): exit 3, not retried blindly. */
  needsPerson?: boolean;
}

export interface IngestJmrpOptions {
  database: Database;
  config: Config;
  /** A configured mailbox (jmrp.mailboxes[] entry) or a source built by the caller (CLI one-offs). */
  mailbox: MailboxConfig | MailboxSource;
  logger?: Logger;
  clock?: Clock;
  batchSize?: number;
  /** Skip the recompute hook (benchmarks measure the load alone). */
  recompute?: boolean;
}

/**
 * Drain one JMRP mailbox once: every message recorded exactly once, reports parsed into
 * repwatch.feedback_report (complaints show in analytics.complaint), unparseable ones quarantined with
 * their reason, days recomputed after each committed batch, then archived. The scheduler's job and the
 * CLI call this. Never throws for bad mail; `error` says when the mailbox or database stopped the run.
 */
export async function ingestJmrpMailbox(options: IngestJmrpOptions): Promise<JmrpIngestResult> {
  const { database, config, logger } = options;
  const source = isSource(options.mailbox) ? options.mailbox : openMailboxSource(options.mailbox, logger ? { logger } : {});
  const configured = isSource(options.mailbox) ? undefined : options.mailbox;
  const started = (options.clock ?? { now: () => new Date() }).now();

  const salt = await recipientSalt(database, config.jmrp.recipientSalt);
  const isKnownIp = await loadKnownIps(database, config);
  const privacy = { mode: config.jmrp.recipients, salt };
  const campaignHeaders = config.jmrp.campaignHeaders;
  const days = new Set<string>();
  const counts = { complaints: 0, incidents: 0, otherReports: 0, repeatedReports: 0 };
  const pendingDays = new Set<string>();
  let lastRecompute = performance.now();
  // The last flush runs even with no day of its own: it takes days an earlier run left pending.
  const flushRecompute = async (last = false) => {
    lastRecompute = performance.now();
    if ((pendingDays.size === 0 && !last) || options.recompute === false) return;
    const touched = [...pendingDays].sort();
    pendingDays.clear();
    await recomputeDays(database, config, touched);
  };

  const result = await drainMailbox<JmrpClassification, ReportRow | null>({
    database,
    source,
    stream: 'jmrp',
    maxMessageBytes: config.jmrp.maxMessageBytes,
    batchSize: options.batchSize ?? batchSizeOf(configured),
    ...(logger ? { logger } : {}),
    classify: (raw, message) => classifyComplaintMessage(raw, message.deliveredAt, { campaignHeaders, isKnownIp, readAt: started, privacy }),
    storedRaw: (_raw, result) => result.kept.bytes,
    storeBatch: async (session, items) => {
      const rows: (ReportRow | null)[] = items.map(({ message, result }) =>
        result.parsed.kind === 'arf' || result.parsed.kind === 'jmrp_legacy' ? { message, report: result.parsed.report } : null,
      );
      // A report already stored from another message (sent, and forwarded as an attachment too) is
      // recorded with its message but not counted again.
      const present = rows.flatMap((row, i) => (row ? [i] : []));
      const repeated = await repeatedReports(session, present.map((i) => rows[i]!.report), privacy);
      for (const [n, storedIn] of repeated) {
        const i = present[n]!;
        const note = `the same report is already stored${storedIn === null ? ' from an earlier message of this batch' : ` from message #${storedIn}`}: not counted again`;
        await session.query(`update repwatch.mail_message set reason = concat_ws('; ', reason, $2::text) where id = $1`, [rows[i]!.message.ref, note]);
        rows[i] = null;
      }
      await insertFeedbackReports(session, source.name, rows.filter((r): r is ReportRow => r !== null), privacy);
      await notePendingDays(session, rows.flatMap((r) => (r?.report.isComplaint && r.report.day ? [r.report.day] : [])));
      return rows;
    },
    onCommitted: async (results) => {
      for (const r of results) {
        const report = r.outcome === 'stored' ? r.stored?.report : undefined;
        if (r.outcome === 'stored' && !report && (r.classification === 'arf' || r.classification === 'jmrp_legacy')) counts.repeatedReports += 1;
        if (!report) continue;
        if (report.isComplaint) {
          counts.complaints += 1;
          counts.incidents += report.incidents;
        } else {
          counts.otherReports += 1;
        }
      }
      for (const day of complaintDays(results)) {
        days.add(day);
        pendingDays.add(day);
      }
      // Recompute is per touched day, not per message: coalesce it over a minute of draining.
      if (performance.now() - lastRecompute >= RECOMPUTE_EVERY_MS) await flushRecompute();
    },
  });

  // Also after a run that stopped early: what was committed must reach the derived tables.
  try {
    await flushRecompute(true);
  } catch (error) {
    logger?.error({ source: 'jmrp', mailbox: result.mailbox, err: (error as Error).message }, 'recompute after JMRP ingest failed');
    result.error ??= `mailbox ${result.mailbox}: recompute failed: ${(error as Error).message}`;
  }

  const out: JmrpIngestResult = {
    mailbox: result.mailbox,
    seen: result.seen,
    stored: result.stored + result.quarantined,
    duplicates: result.duplicates,
    quarantined: result.quarantined,
    ...counts,
    notAReport: result.byClassification.not_a_report ?? 0,
    malformed: result.byClassification.malformed ?? 0,
    oversize: result.byClassification.oversize ?? 0,
    failed: result.failed,
    archived: result.archived,
    settleFailures: result.settleFailures,
    days: [...days].sort(),
    quarantine: result.messages.filter((m) => m.outcome === 'quarantined').map((m) => ({ location: m.location, reason: m.reason })),
    ...(result.error ? { error: result.error } : {}),
    ...(result.needsPerson ? { needsPerson: true } : {}),
  };
  logger?.info(
    { source: 'jmrp', mailbox: out.mailbox, seen: out.seen, stored: out.stored, duplicates: out.duplicates, quarantined: out.quarantined, complaints: out.complaints, ms: Date.now() - started.getTime() },
    'JMRP mailbox drained',
  );
  return out;
}

/** What classifying a complaint message needs besides its bytes. */
export interface ComplaintContext {
  campaignHeaders: readonly string[];
  isKnownIp: KnownIpMatcher;
  /** When the run started (the complaint time of last resort). */
  readAt: Date;
  privacy: { mode: RecipientMode; salt: string };
}

/**
 * One message of a JMRP mailbox: what it is (parseReport) and the bytes kept of it (protectRawMessage),
 * from one MIME tree of the message. Pure, like the parser: the drain loop and the hostile-input
 * benchmark call it.
 */
export function classifyComplaintMessage(raw: Buffer, deliveredAt: Date | null, context: ComplaintContext): JmrpClassification {
  const { privacy } = context;
  const mime = parseMime(raw);
  const recipientToken = (address: string) => hashRecipient(address, privacy.salt);
  const parsed = parseReport(raw, { campaignHeaders: context.campaignHeaders, isKnownIp: context.isKnownIp, deliveredAt, readAt: context.readAt, mime, recipientToken });
  const report = parsed.kind === 'arf' || parsed.kind === 'jmrp_legacy' ? parsed.report : null;
  // The complainer's address is personal data: the kept bytes carry it hashed or not at all, also
  // for a message that is quarantined or not a report (it may still hold recipient fields).
  const kept = protectRawMessage(raw, report ? reportRecipients(report) : [], privacy.mode, privacy.salt, report === null, mime);
  const note = (text: string | null) => [text, kept.note].filter(Boolean).join('; ') || null;
  return {
    parsed,
    kept,
    classification: parsed.kind,
    quarantineReason: parsed.kind === 'malformed' ? note(parsed.reason) : null,
    reason: parsed.kind === 'not_a_report' ? note(parsed.reason) : parsed.kind === 'malformed' ? null : note(parsed.report.notes.join('; ') || null),
  };
}

function isSource(mailbox: MailboxConfig | MailboxSource): mailbox is MailboxSource {
  return typeof (mailbox as MailboxSource).batches === 'function';
}

function complaintDays(results: MessageResult<JmrpClassification, ReportRow | null>[]): string[] {
  const days = new Set<string>();
  for (const r of results) {
    const report = r.outcome === 'stored' ? r.stored?.report : undefined;
    if (report?.isComplaint && report.day) days.add(report.day);
  }
  return [...days].sort();
}

/** Our sending IPs: every IP SNDS reported for us, and the configured pools (except the implicit "all"). */
export async function loadKnownIps(database: Database, config: Config): Promise<KnownIpMatcher> {
  const pools = Object.entries(config.pools)
    .filter(([name]) => name !== 'all')
    .flatMap(([, cidrs]) => cidrs);
  return knownIpMatcher(await sndsIps(database), pools);
}

/** How many messages wait in a configured mailbox (IMAP STATUS, Maildir file count; null for mbox). */
export async function mailboxBacklog(mailbox: MailboxConfig, logger?: Logger): Promise<number | null> {
  const source = openMailboxSource(mailbox, logger ? { logger } : {});
  try {
    return (await source.backlog?.()) ?? null;
  } finally {
    await source.close();
  }
}
