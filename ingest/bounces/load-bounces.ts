import type { Session } from '../../db/connection.js';
import type { Classification, StoredMessage } from '../mailbox/drain.js';
import type { MailboxMessage } from '../mailbox/types.js';
import { groupsNotReadProblem, parseBounce, type BounceParseResult, type BounceRecipient } from './parse-bounce.js';

/** What the drain loop records for a bounce-stream message, with the parse result for the store step. */
export interface BounceClassification extends Classification {
  parsed: BounceParseResult;
}

/**
 * Classify one message for repwatch.mail_message: `dsn`, `plain_bounce`, `not_a_bounce` (kept and
 * archived with its reason: auto-replies land in bounce mailboxes too) or `malformed` (quarantined).
 */
export function classifyBounce(raw: Buffer, message: Pick<MailboxMessage, 'deliveredAt'>): BounceClassification {
  const parsed = parseBounce(raw, { deliveredAt: message.deliveredAt });
  if (parsed.kind === 'malformed') return { classification: 'malformed', quarantineReason: parsed.reason, parsed };
  if (parsed.kind === 'not_a_bounce') return { classification: 'not_a_bounce', reason: parsed.reason, parsed };
  const noIp = parsed.recipients.filter((r) => r.evidence && !r.ip).length;
  const notes = [
    ...(noIp > 0 ? [`${noIp} Microsoft code(s) without an IP named in the text: no block evidence`] : []),
    ...(parsed.groupsNotRead > 0 ? [groupsNotReadProblem(parsed.groupsNotRead)] : []),
  ];
  const reason = notes.length > 0 ? notes.join('; ') : null;
  return { classification: parsed.format === 'dsn' ? 'dsn' : 'plain_bounce', reason, parsed };
}

export interface StoredBounce {
  recipients: number;
  evidence: number;
  /** Days that got evidence (they need their decisions recomputed). */
  days: string[];
  /** Block evidence written: the relisting check looks at these. */
  blocks: { ip: string; day: string }[];
}

/**
 * Store the bounces of one committed batch: one repwatch.bounce row per recipient and one block
 * evidence row per distinct (ip, day, kind, route, reason) of a message, in the drain's transaction.
 * The message key guarantees a message is stored once, so its evidence is too.
 */
export async function storeBounces(
  session: Pick<Session, 'query'>,
  mailbox: string,
  items: { message: StoredMessage; result: BounceClassification }[],
): Promise<StoredBounce[]> {
  const rows: (BounceRecipient & { ref: number; mailbox: string; format: string; senderDomain: string | null })[] = [];
  const evidence: { ip: string; day: string; kind: string; route: string | null; reason: string | null; detail: string; ref: number }[] = [];
  const out: StoredBounce[] = [];
  for (const { message, result } of items) {
    const parsed = result.parsed;
    const stored: StoredBounce = { recipients: 0, evidence: 0, days: [], blocks: [] };
    out.push(stored);
    if (parsed.kind !== 'bounce') continue;
    const seen = new Set<string>();
    for (const r of parsed.recipients) {
      rows.push({ ...r, ref: message.ref, mailbox, format: parsed.format, senderDomain: parsed.senderDomain });
      stored.recipients += 1;
      if (!r.evidence || !r.ip || !r.day) continue;
      const key = `${r.ip}|${r.day}|${r.evidence.kind}|${r.evidence.route}|${r.evidence.reason}`;
      if (seen.has(key)) continue;
      seen.add(key);
      evidence.push({
        ip: r.ip,
        day: r.day,
        kind: r.evidence.kind,
        route: r.evidence.route,
        reason: r.evidence.reason,
        detail: `${r.evidence.code}: ${r.diagnostic ?? r.evidence.meaning}`.slice(0, 1000),
        ref: message.ref,
      });
      stored.evidence += 1;
      if (!stored.days.includes(r.day)) stored.days.push(r.day);
      if (r.evidence.kind === 'block') stored.blocks.push({ ip: r.ip, day: r.day });
    }
  }
  if (rows.length > 0) {
    await session.query(
      `insert into repwatch.bounce (message_ref, seq, mailbox, format, bounced_at, bounced_at_origin, day, ip, ip_origin,
         recipient_domain, sender_domain, action, smtp_code, enhanced_status, ms_codes, evidence_kind, route, reason, meaning, diagnostic)
       select t.ref, t.seq, t.mailbox, t.format, t.at, t.at_origin, t.day, t.ip, t.ip_origin, t.rcpt, t.sender, t.action, t.smtp,
              t.status, coalesce(string_to_array(nullif(t.codes, ''), ','), '{}'::text[]), t.kind, t.route, t.reason, t.meaning, t.diagnostic
       from unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::date[], $8::inet[], $9::text[],
                   $10::text[], $11::text[], $12::text[], $13::int[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
                   $19::text[], $20::text[])
         as t(ref, seq, mailbox, format, at, at_origin, day, ip, ip_origin, rcpt, sender, action, smtp, status, codes, kind, route,
              reason, meaning, diagnostic)
       on conflict (message_ref, seq) do nothing`,
      [
        rows.map((r) => r.ref),
        rows.map((r) => r.seq),
        rows.map((r) => r.mailbox),
        rows.map((r) => r.format),
        rows.map((r) => r.bouncedAt?.toISOString() ?? null),
        rows.map((r) => r.bouncedAtOrigin),
        rows.map((r) => r.day),
        rows.map((r) => r.ip),
        rows.map((r) => r.ipOrigin),
        rows.map((r) => r.recipientDomain),
        rows.map((r) => r.senderDomain),
        rows.map((r) => r.action),
        rows.map((r) => r.smtpCode),
        rows.map((r) => r.enhancedStatus),
        rows.map((r) => r.codes.map((c) => c.code).join(',')),
        rows.map((r) => r.evidence?.kind ?? null),
        rows.map((r) => r.evidence?.route ?? null),
        rows.map((r) => r.evidence?.reason ?? null),
        rows.map((r) => r.evidence?.meaning ?? null),
        rows.map((r) => r.diagnostic),
      ],
    );
  }
  if (evidence.length > 0) {
    await session.query(
      `insert into repwatch.block_evidence (ip, day, kind, route, reason, source, detail, ref_id)
       select t.ip, t.day, t.kind, t.route, t.reason, 'bounce', t.detail, t.ref
       from unnest($1::inet[], $2::date[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
         as t(ip, day, kind, route, reason, detail, ref)`,
      [
        evidence.map((e) => e.ip),
        evidence.map((e) => e.day),
        evidence.map((e) => e.kind),
        evidence.map((e) => e.route),
        evidence.map((e) => e.reason),
        evidence.map((e) => e.detail),
        evidence.map((e) => e.ref),
      ],
    );
  }
  return out;
}
