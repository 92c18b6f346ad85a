import type { Session } from '../../db/connection.js';
import { encodeBinaryTuples, type BinaryColumnType, type BinaryValue } from '../../db/copy-binary.js';
import type { MailboxMessage } from './types.js';

/** The statements the drain loop runs against repwatch.mail_message (migration 0003). */

export interface MailMessageRow {
  message: MailboxMessage;
  classification: string;
  reason: string | null;
  quarantined: boolean;
  /** Message-ID + sha256 of the body (message-key.ts bodyKeyOf); null when unknown. */
  bodyKey?: string | null;
  /** What to keep in mail_message.raw when it differs from message.raw (personal data removed). */
  storedRaw?: Buffer | null;
}

type Queryable = Pick<Session, 'query'>;

/**
 * Text PostgreSQL will take: NUL, which hostile messages can hold, and a lone UTF-16 surrogate (a value
 * cut in the middle of an emoji; jsonb refuses its `\ud83d` escape and fails the whole batch) both
 * become U+FFFD.
 */
export function pgText(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const whole = (value as WellFormable).toWellFormed();
  return whole.includes('\u0000') ? whole.replace(/\u0000/g, '\uFFFD') : whole;
}

/** String.prototype.toWellFormed (ES2024, in Node 20) is not in the ES2023 typings the build uses. */
type WellFormable = string & { toWellFormed(): string };

/** Which of these keys (message_key) are already stored, and whether each was quarantined. */
export function findStoredKeys(db: Queryable, stream: string, keys: string[]): Promise<Map<string, { quarantined: boolean }>> {
  return findStored(db, stream, 'message_key', keys);
}

/** Which of these body keys are already stored (another delivery of the same message), and whether each was quarantined. */
export function findStoredBodies(db: Queryable, stream: string, bodyKeys: string[]): Promise<Map<string, { quarantined: boolean }>> {
  return findStored(db, stream, 'body_key', bodyKeys);
}

async function findStored(db: Queryable, stream: string, column: 'message_key' | 'body_key', values: string[]): Promise<Map<string, { quarantined: boolean }>> {
  const found = new Map<string, { quarantined: boolean }>();
  if (values.length === 0) return found;
  const rows = await db.query<{ value: string; quarantined: boolean }>(
    `select ${column} as value, quarantined from repwatch.mail_message where stream = $1 and ${column} = any($2::text[])`,
    [stream, values],
  );
  for (const row of rows) found.set(row.value, { quarantined: row.quarantined });
  return found;
}

/**
 * Insert a batch of messages; returns the new rows' ids by key. A message another run stored meanwhile
 * (unique (stream, message_key), or another delivery of it: unique (stream, body_key)) is skipped and
 * is absent from the map.
 *
 * Fast path: reserve the ids, COPY the rows straight into mail_message in binary (the raw bytes
 * dominate the batch: binary sends them as they are, where CSV escaped each message into a string;
 * see db/copy-binary.ts). Keys were checked just before, so a conflict means a concurrent run: then
 * the batch goes again through a staging table with ON CONFLICT DO NOTHING.
 */
export async function insertMailMessages(
  session: Pick<Session, 'query' | 'exec' | 'copyBinary'>,
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
  const tuples = encodeBinaryTuples(
    COPY_TYPES,
    rows.map((r, i) => copyValues(Number(reserved[i]!.id), stream, mailbox, r, keepRaw)),
  );
  await session.exec('savepoint mail_message_copy');
  try {
    await session.copyBinary('repwatch.mail_message', COPY_COLUMNS, oneChunk(tuples));
    await session.exec('release savepoint mail_message_copy');
    rows.forEach((r, i) => ids.set(r.message.key, Number(reserved[i]!.id)));
    return ids;
  } catch (error) {
    if ((error as { code?: string }).code !== '23505') throw error;
    await session.exec('rollback to savepoint mail_message_copy');
  }
  await session.exec(`create temp table if not exists mail_message_stage (like repwatch.mail_message including defaults) on commit drop`);
  await session.copyBinary('mail_message_stage', COPY_COLUMNS, oneChunk(tuples));
  const result = await session.query<{ id: number; message_key: string }>(
    `insert into repwatch.mail_message (${COPY_COLUMNS.join(', ')})
     select ${COPY_COLUMNS.join(', ')} from mail_message_stage order by id
     on conflict do nothing
     returning id, message_key`,
  );
  await session.exec('drop table mail_message_stage');
  for (const row of result) ids.set(row.message_key, Number(row.id));
  return ids;
}

/** The columns COPY fills, with their types in migration 0003 (binary COPY needs them exact). */
const COPY_COLUMNS = ['id', 'stream', 'mailbox', 'message_key', 'message_id', 'sha256', 'byte_size', 'raw', 'classification', 'reason', 'quarantined', 'location', 'delivered_at', 'body_key'];
const COPY_TYPES: BinaryColumnType[] = ['int8', 'text', 'text', 'text', 'text', 'text', 'int8', 'bytea', 'text', 'text', 'bool', 'text', 'timestamptz', 'text'];

/** One mail_message row for COPY. */
function copyValues(id: number, stream: string, mailbox: string, r: MailMessageRow, keepRaw: boolean): BinaryValue[] {
  return [
    id,
    stream,
    pgText(mailbox),
    pgText(r.message.key),
    pgText(r.message.messageId),
    r.message.sha256,
    // What the mailbox reports; a value that is not a size (a broken server) must not fail the batch.
    Number.isSafeInteger(r.message.size) && r.message.size >= 0 ? r.message.size : 0,
    // storedRaw null: bytes that must not be kept (personal data that could not be removed).
    keepRaw && r.storedRaw !== null ? (r.storedRaw ?? r.message.raw ?? null) : null,
    pgText(r.classification),
    pgText(r.reason),
    r.quarantined,
    pgText(r.message.location),
    // A mailbox's date that did not parse is unknown, not a reason to fail the batch.
    r.message.deliveredAt && !Number.isNaN(r.message.deliveredAt.getTime()) ? r.message.deliveredAt : null,
    pgText(r.bodyKey ?? null),
  ];
}

/** The COPY methods take an async iterable of whole-record chunks; a batch is one chunk. */
export async function* oneChunk<T extends string | Buffer>(chunk: T): AsyncGenerator<T> {
  yield chunk;
}
