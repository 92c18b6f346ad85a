import type { Session } from '../../db/connection.js';
import { csvText } from '../snds/copy-csv.js';
import type { MailboxMessage } from './types.js';

/** The statements the drain loop runs against repwatch.mail_message (migration 0003). */

export interface MailMessageRow {
  message: MailboxMessage;
  classification: string;
  reason: string | null;
  quarantined: boolean;
  /** What to keep in mail_message.raw when it differs from message.raw (personal data removed). */
  storedRaw?: Buffer;
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
 * Insert a batch of messages; returns the new rows' ids by key. A key another run stored meanwhile is
 * skipped (unique (stream, message_key)) and is absent from the map.
 *
 * Fast path: reserve the ids, COPY the rows straight into mail_message (the raw bytes dominate the
 * batch, and COPY's input path is far cheaper than bind parameters or array literals: measured, the
 * insert took longer than parsing the reports). Keys were checked just before, so a conflict means a
 * concurrent run: then the batch goes again through a staging table with ON CONFLICT DO NOTHING.
 */
export async function insertMailMessages(
  session: Pick<Session, 'query' | 'exec' | 'copyCsv'>,
  stream: string,
  mailbox: string,
  rows: MailMessageRow[],
  keepRaw: boolean,
): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  if (rows.length === 0) return ids;
  const reserved = await session.query<{ id: number }>(
    `select nextval(pg_get_serial_sequence('repwatch.mail_message', 'id')) as id from generate_series(1, $1)`,
    [rows.length],
  );
  const lines = rows.map((r, i) => csvLine(reserved[i]!.id, stream, mailbox, r, keepRaw));
  await session.exec('savepoint mail_message_copy');
  try {
    await session.copyCsv('repwatch.mail_message', COPY_COLUMNS, oneChunk(lines.join('')));
    await session.exec('release savepoint mail_message_copy');
    rows.forEach((r, i) => ids.set(r.message.key, Number(reserved[i]!.id)));
    return ids;
  } catch (error) {
    if ((error as { code?: string }).code !== '23505') throw error;
    await session.exec('rollback to savepoint mail_message_copy');
  }
  await session.exec(`create temp table if not exists mail_message_stage (like repwatch.mail_message including defaults) on commit drop`);
  await session.copyCsv('mail_message_stage', COPY_COLUMNS, oneChunk(lines.join('')));
  const result = await session.query<{ id: number; message_key: string }>(
    `insert into repwatch.mail_message (${COPY_COLUMNS.join(', ')})
     select ${COPY_COLUMNS.join(', ')} from mail_message_stage order by id
     on conflict (stream, message_key) do nothing
     returning id, message_key`,
  );
  await session.exec('drop table mail_message_stage');
  for (const row of result) ids.set(row.message_key, Number(row.id));
  return ids;
}

const COPY_COLUMNS = ['id', 'stream', 'mailbox', 'message_key', 'message_id', 'sha256', 'byte_size', 'raw', 'classification', 'reason', 'quarantined', 'location', 'delivered_at'];

/** Bytes that byteain's escape format takes literally inside a quoted CSV field: printable ASCII, CR,
 * LF and TAB. The rest (NUL, controls, 8-bit bytes, which COPY would also check as UTF-8) and the
 * backslash are written as `\ooo` / `\\`. */
const BYTEA_ESCAPES = /[\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff]/g;

/**
 * A bytea as one CSV cell. Mail is nearly all printable ASCII, so the escape format (bytes as they are,
 * the few others as `\ooo`) is about the size of the message, where hex is twice it: the server spends
 * its time parsing and storing these bytes, so this halves the bulk of a batch. Mostly-binary data
 * (more than one byte in eight to escape) goes as hex.
 */
export function byteaCsv(bytes: Buffer): string {
  const text = bytes.toString('latin1');
  let escapes = 0;
  BYTEA_ESCAPES.lastIndex = 0;
  while (BYTEA_ESCAPES.exec(text) !== null) if (++escapes > text.length / 8) return `\\x${bytes.toString('hex')}`;
  const escaped = escapes === 0 ? text : text.replace(BYTEA_ESCAPES, (c) => (c === '\\' ? '\\\\' : `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`));
  return `"${escaped.replace(/"/g, '""')}"`;
}

/** One COPY CSV record for mail_message. */
function csvLine(id: number, stream: string, mailbox: string, r: MailMessageRow, keepRaw: boolean): string {
  return (
    [
      id,
      csvText(stream),
      csvText(mailbox),
      csvText(pgText(r.message.key)),
      csvText(pgText(r.message.messageId)),
      r.message.sha256,
      r.message.size,
      keepRaw && (r.storedRaw ?? r.message.raw) ? byteaCsv(r.storedRaw ?? r.message.raw!) : '',
      csvText(pgText(r.classification)),
      csvText(pgText(r.reason)),
      r.quarantined ? 't' : 'f',
      csvText(pgText(r.message.location)),
      r.message.deliveredAt?.toISOString() ?? '',
    ].join(',') + '\n'
  );
}

/** copyCsv takes an async iterable of whole-record chunks; a batch is one chunk. */
export async function* oneChunk(text: string): AsyncGenerator<string> {
  yield text;
}
