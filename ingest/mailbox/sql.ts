import type { Session } from '../../db/connection.js';
import type { MailboxMessage } from './types.js';

/** The statements the drain loop runs against repwatch.mail_message (migration 0003). */

export interface MailMessageRow {
  message: MailboxMessage;
  classification: string;
  reason: string | null;
  quarantined: boolean;
}

type Queryable = Pick<Session, 'query'>;

/** PostgreSQL text cannot hold NUL, and hostile messages can: NUL becomes U+FFFD. */
export function pgText(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return value.includes('\u0000') ? value.replace(/\u0000/g, '\uFFFD') : value;
}

/** Which of these keys are already stored, and whether each was quarantined. */
export async function findStoredKeys(db: Queryable, stream: string, keys: string[]): Promise<Map<string, { quarantined: boolean }>> {
  const found = new Map<string, { quarantined: boolean }>();
  if (keys.length === 0) return found;
  const rows = await db.query<{ message_key: string; quarantined: boolean }>(
    'select message_key, quarantined from repwatch.mail_message where stream = $1 and message_key = any($2::text[])',
    [stream, keys],
  );
  for (const row of rows) found.set(row.message_key, { quarantined: row.quarantined });
  return found;
}

/**
 * Insert messages in one statement (arrays unnested server-side: one round trip per batch). A key that
 * another run stored meanwhile is skipped by the unique (stream, message_key) and comes back absent
 * from the returned map. Raw bytes travel as base64 text, which both backends decode the same way.
 */
export async function insertMailMessages(session: Queryable, stream: string, mailbox: string, rows: MailMessageRow[], keepRaw: boolean): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  if (rows.length === 0) return ids;
  const result = await session.query<{ id: number; message_key: string }>(
    `insert into repwatch.mail_message
       (stream, mailbox, message_key, message_id, sha256, byte_size, raw, classification, reason, quarantined, location, delivered_at)
     select $1, $2, t.k, t.mid, t.sha, t.sz, decode(t.r, 'base64'), t.c, t.rs, t.q, t.loc, t.d
     from unnest($3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::boolean[], $11::text[], $12::timestamptz[])
       as t(k, mid, sha, sz, r, c, rs, q, loc, d)
     on conflict (stream, message_key) do nothing
     returning id, message_key`,
    [
      stream,
      mailbox,
      rows.map((r) => pgText(r.message.key)),
      rows.map((r) => pgText(r.message.messageId)),
      rows.map((r) => r.message.sha256),
      rows.map((r) => r.message.size),
      rows.map((r) => (keepRaw && r.message.raw ? r.message.raw.toString('base64') : null)),
      rows.map((r) => pgText(r.classification)),
      rows.map((r) => pgText(r.reason)),
      rows.map((r) => r.quarantined),
      rows.map((r) => pgText(r.message.location)),
      rows.map((r) => r.message.deliveredAt?.toISOString() ?? null),
    ],
  );
  for (const row of result) ids.set(row.message_key, Number(row.id));
  return ids;
}
