import { createHmac, randomBytes } from 'node:crypto';
import type { Database, Session } from '../../db/connection.js';
import { registerSecret } from '../../lib/redact.js';
import type { StoredMessage } from '../mailbox/drain.js';
import { extractAddress } from '../mailbox/mime.js';
import { pgText as text } from '../mailbox/sql.js';
import type { FeedbackReport } from './parse-report.js';

/** The statements that put parsed reports into repwatch.feedback_report (migration 0003). */

export type RecipientMode = 'hash' | 'plain' | 'drop';

/** Fields of the report part that carry a complainer's address (personal data). */
const RECIPIENT_FIELDS = ['original-rcpt-to', 'removal-recipient', 'redacted-address', 'x-hmxmroriginalrecipient'];

/** `hmac-sha256:<hex>` of the lower-cased address: the same complainer always hashes the same way
 * under one salt (so repeat complainers can be counted) and cannot be read back. */
export function hashRecipient(address: string, salt: string): string {
  const bare = extractAddress(address) ?? address.trim();
  return `hmac-sha256:${createHmac('sha256', salt).update(bare.toLowerCase()).digest('hex')}`;
}

export function protectRecipient(address: string | undefined, mode: RecipientMode, salt: string): string | null {
  if (!address || mode === 'drop') return null;
  return mode === 'plain' ? address : hashRecipient(address, salt);
}

/** The ARF fields as stored: recipient fields hashed (or dropped) like the recipient column. */
export function protectFields(fields: Record<string, string | string[]>, mode: RecipientMode, salt: string): Record<string, string | string[]> {
  if (mode === 'plain') return fields;
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const [name, value] of Object.entries(fields)) {
    if (!RECIPIENT_FIELDS.includes(name)) out[name] = value;
    else if (mode === 'hash') out[name] = Array.isArray(value) ? value.map((v) => hashRecipient(v, salt)) : hashRecipient(value, salt);
  }
  return out;
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
  message: StoredMessage;
  report: FeedbackReport;
}

/** Insert one feedback_report row per stored report, in one statement. */
export async function insertFeedbackReports(session: Pick<Session, 'query'>, mailbox: string, rows: ReportRow[], privacy: { mode: RecipientMode; salt: string }): Promise<void> {
  if (rows.length === 0) return;
  const col = <T>(f: (r: ReportRow) => T) => rows.map(f);
  await session.query(
    `insert into repwatch.feedback_report
       (message_ref, mailbox, report_format, feedback_type, is_complaint, user_agent, report_version, source_ip, source_ip_origin,
        complained_at, complained_at_origin, day, incidents, reported_domain, original_mail_from, original_from_domain,
        original_message_id, campaign, recipient, subject, fields)
     select t.ref, $1, t.fmt, t.ft, t.ic, t.ua, t.ver, t.ip::inet, t.ipo, t.at, t.ato, t.day::date, t.inc, t.rd, t.omf, t.ofd, t.omid, t.camp, t.rcpt, t.subj, t.f::jsonb
     from unnest($2::bigint[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                 $11::text[], $12::text[], $13::int[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[])
       as t(ref, fmt, ft, ic, ua, ver, ip, ipo, at, ato, day, inc, rd, omf, ofd, omid, camp, rcpt, subj, f)
     on conflict (message_ref) do nothing`,
    [
      mailbox,
      col((r) => r.message.ref),
      col((r) => r.report.format),
      col((r) => text(r.report.feedbackType)),
      col((r) => r.report.isComplaint),
      col((r) => text(r.report.userAgent)),
      col((r) => text(r.report.version)),
      col((r) => r.report.sourceIp),
      col((r) => r.report.sourceIpOrigin),
      col((r) => r.report.complainedAt?.toISOString() ?? null),
      col((r) => r.report.complainedAtOrigin),
      col((r) => r.report.day),
      col((r) => r.report.incidents),
      col((r) => text(r.report.reportedDomain)),
      col((r) => text(r.report.originalMailFrom)),
      col((r) => text(r.report.originalFromDomain)),
      col((r) => text(r.report.originalMessageId)),
      col((r) => text(r.report.campaign)),
      col((r) => text(protectRecipient(r.report.recipients[0], privacy.mode, privacy.salt))),
      col((r) => text(r.report.originalSubject)),
      col((r) => JSON.stringify(protectFields(r.report.fields, privacy.mode, privacy.salt)).replace(/\\u0000/g, '\\ufffd')),
    ],
  );
}
