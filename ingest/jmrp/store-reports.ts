import { createHmac, randomBytes } from 'node:crypto';
import type { Database, Session } from '../../db/connection.js';
import { registerSecret } from '../../lib/redact.js';
import type { StoredMessage } from '../mailbox/drain.js';
import { extractAddress } from '../mailbox/mime.js';
import { oneChunk, pgText as text } from '../mailbox/sql.js';
import { csvText } from '../snds/copy-csv.js';
import { addressSpellings, RECIPIENT_FIELDS, reportRecipients, type FeedbackReport } from './parse-report.js';

/** The statements that put parsed reports into repwatch.feedback_report (migration 0003). */

export type RecipientMode = 'hash' | 'plain' | 'drop';


/** `hmac-sha256:<hex>` of the lower-cased address: the same complainer always hashes the same way
 * under one salt (so repeat complainers can be counted) and cannot be read back. `keptBytes`: the value
 * was read again from the protected bytes kept in mail_message.raw, where a hash (also as in
 * `Jane <hmac-sha256:…>`) stands for the address and stays as it is. Mail from outside is never
 * trusted that way: a report could otherwise choose the hash it is counted under. */
export function hashRecipient(address: string, salt: string, keptBytes = false): string {
  const already = keptBytes ? PROTECTED_TOKEN.exec(address) : null;
  if (already) return already[0];
  const bare = (extractAddress(address) ?? address.trim()).toLowerCase();
  // The same address is hashed for the column, the fields and the kept bytes of one report.
  const key = `${salt}\u0000${bare}`;
  let hash = recentHashes.get(key);
  if (hash === undefined) {
    hash = `hmac-sha256:${createHmac('sha256', salt).update(bare).digest('hex')}`;
    if (recentHashes.size >= 10_000) recentHashes.clear();
    recentHashes.set(key, hash);
  }
  return hash;
}

const recentHashes = new Map<string, string>();

const PROTECTED_TOKEN = /hmac-sha256:[0-9a-f]{64}/;

/** What replaces a complainer's address in the kept bytes when recipients are dropped. */
export const REMOVED_RECIPIENT = '[recipient removed]';

export function protectRecipient(address: string | undefined, mode: RecipientMode, salt: string, keptBytes = false): string | null {
  if (!address || mode === 'drop') return null;
  return mode === 'plain' ? address : hashRecipient(address, salt, keptBytes);
}

/**
 * What a report's stored texts look like with its complainers' addresses hashed (or removed), as
 * `jmrp.recipients` says: every field and column holding text from the report or its original (subject,
 * campaign, Message-IDs, return path, any ARF field) may spell an address, as is or VERP-encoded.
 */
export function recipientProtector(recipients: readonly string[], mode: RecipientMode, salt: string): (text: string | null) => string | null {
  if (mode === 'plain') return (text) => text;
  // Each spelling once: a report repeating one recipient must not search every text once per repeat
  // (this runs inside the batch's transaction). The first recipient to spell it wins, as before.
  const spellings = new Map<string, string>();
  for (const recipient of recipients) {
    const address = extractAddress(recipient);
    if (!address) continue;
    const replacement = mode === 'hash' ? hashRecipient(address, salt) : REMOVED_RECIPIENT;
    for (const spelling of addressSpellings(address)) if (!spellings.has(spelling)) spellings.set(spelling, replacement);
  }
  if (spellings.size === 0) return (text) => text;
  // Longest first: of x@y.co and x@y.com, the longer one is replaced whole.
  const forms = [...spellings].sort((a, b) => b[0].length - a[0].length);
  return (text) => {
    // Every spelling holds an @, an = or a & / % escape (none has another case): most texts need no search.
    if (text === null || !/[@=%&]/.test(text)) return text;
    // Lower-cased once to look for each spelling; replaced (another pass) only where one shows. (When
    // lower-casing changes the length, replaceIgnoringCase matches by pattern: every spelling is tried.)
    let lower = text.toLowerCase();
    let out = text;
    for (const [spelling, replacement] of forms) {
      if (lower.length === out.length && !lower.includes(spelling)) continue;
      out = replaceIgnoringCase(out, spelling, replacement);
      lower = out.toLowerCase();
    }
    return out;
  };
}

/** `needle` (lower-cased) replaced wherever it shows in `text`, ASCII case ignored. */
export function replaceIgnoringCase(text: string, needle: string, replacement: string): string {
  const lower = text.toLowerCase();
  // toLowerCase keeps the length for all but a few non-ASCII letters; then positions are not comparable.
  if (lower.length !== text.length) return text.replace(new RegExp(needle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi'), () => replacement);
  let at = lower.indexOf(needle);
  if (at === -1) return text;
  let out = '';
  let from = 0;
  for (; at !== -1; at = lower.indexOf(needle, from)) {
    out += text.slice(from, at) + replacement;
    from = at + needle.length;
  }
  return out + text.slice(from);
}

/** The ARF fields as stored: recipient fields hashed (or dropped) like the recipient column, and the
 * complainers' addresses in any other field protected like every stored text. */
export function protectFields(fields: Record<string, string | string[]>, mode: RecipientMode, salt: string, keptBytes = false, protect: (text: string | null) => string | null = (t) => t): Record<string, string | string[]> {
  if (mode === 'plain') return fields;
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const [name, value] of Object.entries(fields)) {
    if (!RECIPIENT_FIELDS.includes(name)) out[name] = Array.isArray(value) ? value.map((v) => protect(v)!) : protect(value)!;
    else if (mode === 'hash') out[name] = Array.isArray(value) ? value.map((v) => hashRecipient(v, salt, keptBytes)) : hashRecipient(value, salt, keptBytes);
  }
  return out;
}

/** How recipients are stored: `jmrp.recipients`, the salt, and whether the report was read again from
 * bytes repwatch itself kept (where hashes stand for addresses). */
export interface RecipientPrivacy {
  mode: RecipientMode;
  salt: string;
  keptBytes?: boolean;
}

/**
 * The salt for recipient hashes: `jmrp.recipientSalt` when configured, otherwise one generated on first
 * use and kept in repwatch.stored_secret, so hashes stay comparable across runs without setup.
 */
export async function recipientSalt(database: Database, configured: string | undefined): Promise<string> {
  if (configured) {
    registerSecret(configured);
    return configured;
  }
  await database.query(
    `insert into repwatch.stored_secret (name, value) values ('jmrp.recipient_salt', $1) on conflict (name) do nothing`,
    [randomBytes(32).toString('hex')],
  );
  const rows = await database.query<{ value: string }>(`select value from repwatch.stored_secret where name = 'jmrp.recipient_salt'`);
  const salt = rows[0]!.value;
  registerSecret(salt);
  return salt;
}

/** Our sending IPs as the SNDS data knows them (for the preference when deriving a sending IP). */
export async function sndsIps(database: Database): Promise<string[]> {
  const rows = await database.query<{ ip: string }>('select distinct host(ip) as ip from repwatch.snds_row');
  return rows.map((r) => r.ip);
}


export interface ReportRow {
  /** The mail_message row the report was read from (only its id is stored). */
  message: Pick<StoredMessage, 'ref'>;
  report: FeedbackReport;
}

const REPORT_COLUMNS = [
  'message_ref', 'mailbox', 'report_format', 'feedback_type', 'is_complaint', 'user_agent', 'report_version', 'source_ip',
  'source_ip_origin', 'complained_at', 'complained_at_origin', 'day', 'incidents', 'reported_domain', 'original_mail_from',
  'original_from_domain', 'original_message_id', 'campaign', 'recipient', 'subject', 'fields', 'report_key', 'content_key',
];

/** The identity of a report (migration 0012): its own Message-ID with the original's, as stored (a
 * Message-ID may spell the complainer's address: protected like every stored text); null without one. */
export function reportKeyOf(report: Pick<FeedbackReport, 'reportMessageId' | 'originalMessageId'>, protect: (text: string | null) => string | null = (t) => t): string | null {
  return report.reportMessageId ? `${protect(report.reportMessageId)}|${protect(report.originalMessageId) ?? ''}` : null;
}

/**
 * Of these reports, the ones already stored under the same report key or content key, or repeated
 * earlier in the list: one report read from two messages is counted once. Returns the positions to
 * leave out, with the id of the message that holds the stored report (or null for one earlier in the list).
 */
export async function repeatedReports(session: Pick<Session, 'query'>, reports: readonly FeedbackReport[], privacy: RecipientPrivacy): Promise<Map<number, number | null>> {
  const reportKeys = reports.map((r) => reportKeyOf(r, recipientProtector(reportRecipients(r), privacy.mode, privacy.salt)));
  const keys = reports.map((r, i) => [reportKeys[i]!, r.contentKey].filter((k): k is string => k !== null));
  const repeated = new Map<number, number | null>();
  if (keys.every((k) => k.length === 0)) return repeated;
  const rows = await session.query<{ report_key: string | null; content_key: string | null; message_ref: number }>(
    'select report_key, content_key, message_ref from repwatch.feedback_report where report_key = any($1::text[]) or content_key = any($2::text[])',
    [[...new Set(reportKeys.filter((k) => k !== null))], [...new Set(reports.map((r) => r.contentKey).filter((k) => k !== null))]],
  );
  const stored = new Map<string, number>();
  for (const row of rows) {
    if (row.report_key) stored.set(row.report_key, Number(row.message_ref));
    if (row.content_key) stored.set(row.content_key, Number(row.message_ref));
  }
  const seen = new Set<string>();
  keys.forEach((own, i) => {
    const found = own.find((k) => stored.has(k));
    if (found !== undefined) repeated.set(i, stored.get(found)!);
    else if (own.some((k) => seen.has(k))) repeated.set(i, null);
    for (const k of own) seen.add(k);
  });
  return repeated;
}

/** Insert one feedback_report row per stored report by COPY (the rows are new: their message_ref was
 * created in this transaction, so no conflict handling is needed). */
export async function insertFeedbackReports(session: Pick<Session, 'copyCsv'>, mailbox: string, rows: ReportRow[], privacy: RecipientPrivacy): Promise<void> {
  if (rows.length === 0) return;
  const t = (value: string | null | undefined) => csvText(text(value));
  const lines = rows.map(({ message, report: r }) => {
    const protect = recipientProtector(reportRecipients(r), privacy.mode, privacy.salt);
    const originalMessageId = protect(r.originalMessageId);
    return (
      [
        message.ref,
        t(mailbox),
        r.format,
        t(r.feedbackType),
        r.isComplaint ? 't' : 'f',
        t(protect(r.userAgent)),
        t(r.version),
        r.sourceIp ?? '',
        r.sourceIpOrigin ?? '',
        r.complainedAt?.toISOString() ?? '',
        r.complainedAtOrigin ?? '',
        r.day ?? '',
        r.incidents,
        t(protect(r.reportedDomain)),
        t(protect(r.originalMailFrom)),
        t(r.originalFromDomain),
        t(originalMessageId),
        t(protect(r.campaign)),
        t(protectRecipient(r.recipients[0], privacy.mode, privacy.salt, privacy.keptBytes)),
        t(protect(r.originalSubject)),
        csvText(fieldsJson(protectFields(r.fields, privacy.mode, privacy.salt, privacy.keptBytes, protect))),
        t(reportKeyOf(r, protect)),
        t(r.contentKey),
      ].join(',') + '\n'
    );
  });
  await session.copyCsv('repwatch.feedback_report', REPORT_COLUMNS, oneChunk(lines.join('')));
}

/** The fields as jsonb text. Values with NUL or a lone surrogate (which jsonb refuses) are cleaned like
 * every stored text; only a document whose JSON shows one of their escapes pays for the replacer. */
function fieldsJson(fields: Record<string, string | string[]>): string {
  const json = JSON.stringify(fields);
  return /\\u(?:0000|d[89a-f])/i.test(json) ? JSON.stringify(fields, (_, v: unknown) => (typeof v === 'string' ? text(v) : v)) : json;
}
