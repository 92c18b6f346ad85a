import { beforeAll, describe, expect, it } from 'vitest';
import { encodeBinaryTuples, type BinaryColumnType, type BinaryValue } from '../../db/copy-binary.js';
import { oneChunk } from '../../ingest/mailbox/sql.js';
import { describeEachBackend } from '../support/backends.js';

const TYPES: BinaryColumnType[] = ['int4', 'int8', 'bool', 'text', 'bytea', 'timestamptz'];
const COLUMNS = ['n4', 'n8', 'flag', 'label', 'bytes', 'at'];

interface Row {
  n4: number | null;
  n8: number | null;
  flag: boolean | null;
  label: string | null;
  bytes: Uint8Array | null;
  at: Date | null;
}

describeEachBackend('binary COPY', (db) => {
  beforeAll(async () => {
    await db().query(`create table copy_binary_probe (n4 int, n8 bigint, flag boolean, label text, bytes bytea, at timestamptz)`);
  });

  const load = async (rows: BinaryValue[][]) => {
    await db().query('truncate copy_binary_probe');
    const copied = await db().transaction((s) => s.copyBinary('copy_binary_probe', COLUMNS, oneChunk(encodeBinaryTuples(TYPES, rows))));
    const stored = await db().query<Row>(`select ${COLUMNS.join(', ')} from copy_binary_probe order by n4 nulls last`);
    return { copied, stored };
  };

  it('every type, its extremes and NULL come back exactly as sent', async () => {
    const bytes = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
    const rows: BinaryValue[][] = [
      [-(2 ** 31), -(2 ** 53 - 1), false, '', Buffer.alloc(0), new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 999))],
      [0, 0, true, 'caf\u00e9 \u{1F600} "quoted", comma\\backslash\r\nline', bytes, new Date(Date.UTC(2000, 0, 1))],
      [2 ** 31 - 1, 2 ** 53 - 1, true, 'x'.repeat(10_000), Buffer.from('Subject: \u0000 NUL\r\n'), new Date(Date.UTC(2026, 10, 28, 10, 43, 33, 123))],
      [null, null, null, null, null, null],
    ];
    const { copied, stored } = await load(rows);
    expect(copied).toBe(4);
    expect(stored.map((r) => [r.n4, r.n8, r.flag, r.label, r.bytes === null ? null : Buffer.from(r.bytes).toString('hex'), r.at?.toISOString() ?? null])).toEqual(
      rows.map((r) => [r[0], r[1], r[2], r[3], r[4] === null ? null : (r[4] as Buffer).toString('hex'), r[5] === null ? null : (r[5] as Date).toISOString()]),
    );
  });

  it('an input longer than one PGlite slice (8 MB) is framed per statement and loads whole', async () => {
    const big = Buffer.alloc(1 << 20, 0x61);
    const chunks = async function* () {
      for (let i = 0; i < 12; i++) yield encodeBinaryTuples(TYPES, [[i, i, true, `row ${i}`, big, new Date(Date.UTC(2026, 0, 1 + i))]]);
    };
    await db().query('truncate copy_binary_probe');
    const copied = await db().transaction((s) => s.copyBinary('copy_binary_probe', COLUMNS, chunks()));
    expect(copied).toBe(12);
    const stored = await db().query<{ n: number; size: number }>('select count(*)::int as n, sum(length(bytes))::int as size from copy_binary_probe');
    expect(stored[0]).toEqual({ n: 12, size: 12 << 20 });
  });

  it('a column type that does not match the table is refused by the server, and nothing is loaded', async () => {
    await db().query('truncate copy_binary_probe');
    // int8 sent into an int column: the server must reject it, not read half the bytes.
    const wrong = encodeBinaryTuples(['int8'], [[1]]);
    await expect(db().transaction((s) => s.copyBinary('copy_binary_probe', ['n4'], oneChunk(wrong)))).rejects.toThrow();
    expect((await db().query<{ n: number }>('select count(*)::int as n from copy_binary_probe'))[0]!.n).toBe(0);
  });
});

describe('encodeBinaryTuples', () => {
  it('refuses values that do not fit their type before anything is sent', () => {
    expect(() => encodeBinaryTuples(['int4'], [[2 ** 31]])).toThrow(/not a valid int4/);
    expect(() => encodeBinaryTuples(['int4'], [[1.5]])).toThrow(/not a valid int4/);
    expect(() => encodeBinaryTuples(['int8'], [[2 ** 53]])).toThrow(/not a valid int8/);
    expect(() => encodeBinaryTuples(['timestamptz'], [[new Date(Number.NaN)]])).toThrow(/invalid Date/);
    expect(() => encodeBinaryTuples(['bytea'], [['text']])).toThrow(/not a valid bytea/);
    expect(() => encodeBinaryTuples(['text'], [['a\u0000b']])).toThrow(/NUL/);
    expect(() => encodeBinaryTuples(['text', 'text'], [['one']])).toThrow(/1 values for 2 columns/);
  });

  it('writes the field count, each length and the bytes in network order', () => {
    const tuple = encodeBinaryTuples(['int4', 'text', 'bytea'], [[258, 'é', null]]);
    expect(tuple.toString('hex')).toBe(['0003', '00000004', '00000102', '00000002', 'c3a9', 'ffffffff'].join(''));
  });
});
