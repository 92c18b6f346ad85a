/**
 * Rows in PostgreSQL's binary COPY format, for the few bulk paths whose columns are simple types and
 * whose bulk is bytes (the raw messages of mail_message).
 *
 * Why not CSV: a raw message in CSV must be escaped byte by byte into a JavaScript string, joined into
 * the batch's text and encoded back to bytes, and the server then parses the escapes; measured on the
 * 20,000-report JMRP benchmark, that string work and the garbage it leaves were the largest share of
 * the ingest's CPU. In binary each field is its length and its bytes: a message's bytes are copied
 * once, as they are.
 *
 * Only these types are written, with the encodings PostgreSQL's *send/*recv functions use (network
 * byte order; timestamptz as microseconds since 2000-01-01 UTC, the integer-datetimes build every
 * supported server has). A value that does not fit its type throws here, before anything is sent.
 */

export type BinaryColumnType = 'int4' | 'int8' | 'bool' | 'text' | 'bytea' | 'timestamptz';

/** One value per column; null is SQL NULL. */
export type BinaryValue = string | number | boolean | Buffer | Date | null | undefined;

/** The 11-byte signature, then flags (0: no OIDs) and the header extension length (0). */
export const COPY_BINARY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
/** A field count of -1 ends the data. */
export const COPY_BINARY_TRAILER = Buffer.from([0xff, 0xff]);

const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1);
const INT4_MIN = -(2 ** 31);
const INT4_MAX = 2 ** 31 - 1;

/**
 * The tuples of `rows` (no header or trailer: the session frames each COPY statement, and PGlite may
 * cut a long input into several). Each row has one value per type, in order.
 */
export function encodeBinaryTuples(types: readonly BinaryColumnType[], rows: readonly (readonly BinaryValue[])[]): Buffer {
  const pieces: Buffer[] = [];
  let size = 0;
  const push = (piece: Buffer) => {
    pieces.push(piece);
    size += piece.length;
  };
  for (const row of rows) {
    if (row.length !== types.length) throw new Error(`binary COPY row has ${row.length} values for ${types.length} columns`);
    // The fixed-size part of the tuple (count, lengths, numbers) goes into one small buffer; text and
    // bytes are separate pieces, so a message's bytes are copied only by the final concat.
    const head = Buffer.allocUnsafe(2);
    head.writeInt16BE(types.length, 0);
    push(head);
    types.forEach((type, i) => {
      const value = row[i];
      if (value === null || value === undefined) return push(NULL_LENGTH);
      const bytes = encodeValue(type, value, i);
      const length = Buffer.allocUnsafe(4);
      length.writeInt32BE(bytes.length, 0);
      push(length);
      push(bytes);
    });
  }
  return Buffer.concat(pieces, size);
}

const NULL_LENGTH = Buffer.from([0xff, 0xff, 0xff, 0xff]);

function encodeValue(type: BinaryColumnType, value: Exclude<BinaryValue, null | undefined>, column: number): Buffer {
  switch (type) {
    case 'text':
      if (typeof value !== 'string') break;
      // PostgreSQL text cannot hold NUL; callers replace it (pgText). Refuse rather than send a row the
      // server rejects for the whole batch.
      if (value.includes('\u0000')) throw new Error(`binary COPY column ${column}: text contains NUL`);
      return Buffer.from(value, 'utf8');
    case 'bytea':
      if (!Buffer.isBuffer(value)) break;
      return value;
    case 'bool':
      if (typeof value !== 'boolean') break;
      return Buffer.from([value ? 1 : 0]);
    case 'int4': {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < INT4_MIN || value > INT4_MAX) break;
      const out = Buffer.allocUnsafe(4);
      out.writeInt32BE(value, 0);
      return out;
    }
    case 'int8': {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) break;
      const out = Buffer.allocUnsafe(8);
      out.writeBigInt64BE(BigInt(value), 0);
      return out;
    }
    case 'timestamptz': {
      if (!(value instanceof Date) || Number.isNaN(value.getTime())) break;
      const out = Buffer.allocUnsafe(8);
      out.writeBigInt64BE(BigInt(value.getTime() - POSTGRES_EPOCH_MS) * 1000n, 0);
      return out;
    }
  }
  throw new Error(`binary COPY column ${column}: ${describe(value)} is not a valid ${type}`);
}

function describe(value: unknown): string {
  if (Buffer.isBuffer(value)) return 'a Buffer';
  if (value instanceof Date) return 'an invalid Date';
  return `a ${typeof value} (${String(value).slice(0, 40)})`;
}
