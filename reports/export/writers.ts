import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import Papa from 'papaparse';
import {
  Bool, DateDay, Field, Float64, Int32, Int64, List, makeData, RecordBatch, RecordBatchFileWriter, Schema, Struct,
  TimestampMillisecond, Utf8, vectorFromArray, type DataType,
} from 'apache-arrow';
import { ParquetWriter, fileWriter } from 'hyparquet-writer';
import type { ExportColumn, ColumnType } from './tables.js';
import type { ExportRow } from './read-batches.js';

/** One output format: takes batches in order, then finishes the file. */
export interface BatchWriter {
  write(rows: ExportRow[]): Promise<void>;
  finish(): Promise<void>;
}

export const EXPORT_FORMATS = ['parquet', 'arrow', 'csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Open the file before any row is read: a missing folder or a path that is not writable fails here, at once. */
export async function createBatchWriter(format: ExportFormat, path: string, columns: readonly ExportColumn[]): Promise<BatchWriter> {
  if (format === 'parquet') return parquetWriter(path, columns);
  const out = await openFile(path);
  return format === 'arrow' ? arrowWriter(out, columns) : csvWriter(out, columns);
}

/**
 * A write stream whose errors are never lost: it is open (or its error thrown) before it is returned, and
 * a later error (disk full) rejects the next write or the finish instead of leaving a promise unsettled.
 */
interface OpenFile {
  stream: WriteStream;
  /** Throws the stream's error, if it had one. */
  check(): void;
  /** Wait for 'drain', or throw the stream's error. */
  drain(): Promise<void>;
  /** End the stream (unless a pipe ends it) and wait until the file is written (or throw the stream's error). */
  close(options?: { endedByPipe?: boolean }): Promise<void>;
}

export async function openFile(path: string): Promise<OpenFile> {
  const stream = createWriteStream(path);
  let failure: Error | undefined;
  stream.on('error', (error) => {
    failure ??= error;
  });
  await once(stream, 'open'); // rejects with the open error (ENOENT, ENOTDIR, EACCES…)
  const check = () => {
    if (failure) throw failure;
  };
  return {
    stream,
    check,
    async drain() {
      check();
      if (stream.writableNeedDrain) {
        // Both waits stop listening once one of them is done: left listening, every drain of a long
        // export added four listeners to the stream (Node warned of a leak after ten).
        const done = new AbortController();
        const drained = once(stream, 'drain', { signal: done.signal });
        const ended = finished(stream, { signal: done.signal });
        drained.catch(() => undefined);
        ended.catch(() => undefined);
        try {
          await Promise.race([drained, ended]);
        } finally {
          done.abort();
        }
      }
      check();
    },
    async close({ endedByPipe = false } = {}) {
      check();
      if (!endedByPipe && !stream.writableEnded) stream.end();
      await finished(stream);
      check();
    },
  };
}

/** A day 'YYYY-MM-DD' as the Date at its UTC midnight (what Arrow DateDay and Parquet DATE take). */
function dayDate(value: unknown): Date | null {
  return value === null || value === undefined ? null : new Date(`${String(value)}T00:00:00Z`);
}

function convert(type: ColumnType, value: unknown): unknown {
  if (value === null || value === undefined) return type === 'text[]' ? [] : null;
  switch (type) {
    case 'date':
      return dayDate(value);
    case 'int64':
      return BigInt(value as number);
    case 'timestamp':
      return value instanceof Date ? value : new Date(String(value));
    default:
      return value;
  }
}

// ---- Arrow IPC file (Feather v2): one record batch per database batch.

function arrowType(type: ColumnType): DataType {
  switch (type) {
    case 'text': return new Utf8();
    case 'date': return new DateDay();
    case 'timestamp': return new TimestampMillisecond('UTC');
    case 'int32': return new Int32();
    case 'int64': return new Int64();
    case 'float64': return new Float64();
    case 'bool': return new Bool();
    case 'text[]': return new List(new Field('item', new Utf8(), true));
  }
}

function arrowWriter(out: OpenFile, columns: readonly ExportColumn[]): BatchWriter {
  const fields = columns.map((c) => new Field(c.name, arrowType(c.type), c.nullable));
  const schema = new Schema(fields);
  const writer = new RecordBatchFileWriter();
  writer.pipe(out.stream);
  let batches = 0;
  const toBatch = (rows: ExportRow[]) => {
    const children = columns.map((c, i) => {
      const values = rows.map((r) => {
        const v = convert(c.type, r[c.name]);
        return c.type === 'timestamp' && v instanceof Date ? v.getTime() : v;
      });
      return vectorFromArray(values, fields[i]!.type).data[0]!;
    });
    return new RecordBatch(schema, makeData({ type: new Struct(fields), length: rows.length, nullCount: 0, children }));
  };
  return {
    async write(rows) {
      out.check();
      writer.write(toBatch(rows));
      batches++;
      await out.drain();
    },
    async finish() {
      out.check();
      if (batches === 0) writer.write(toBatch([])); // an empty table still carries its schema
      await writer.finish();
      writer.close(); // ends the piped file stream once the footer is through
      await out.close({ endedByPipe: true });
    },
  };
}

// ---- Parquet: one row group per database batch, flushed to the file as it is written.

function parquetElement(c: ExportColumn): Record<string, unknown>[] {
  const repetition_type = c.nullable ? 'OPTIONAL' : 'REQUIRED';
  switch (c.type) {
    case 'text': return [{ name: c.name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type }];
    case 'date': return [{ name: c.name, type: 'INT32', converted_type: 'DATE', repetition_type }];
    case 'timestamp': return [{ name: c.name, type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', repetition_type }];
    case 'int32': return [{ name: c.name, type: 'INT32', repetition_type }];
    case 'int64': return [{ name: c.name, type: 'INT64', repetition_type }];
    case 'float64': return [{ name: c.name, type: 'DOUBLE', repetition_type }];
    case 'bool': return [{ name: c.name, type: 'BOOLEAN', repetition_type }];
    case 'text[]':
      return [
        { name: c.name, repetition_type, converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      ];
  }
}

function parquetWriter(path: string, columns: readonly ExportColumn[]): BatchWriter {
  const schema = [{ name: 'root', num_children: columns.length }, ...columns.flatMap(parquetElement)];
  const writer = new ParquetWriter({ writer: fileWriter(path), schema: schema as never, createdBy: 'repwatch' });
  return {
    async write(rows) {
      const columnData = columns.map((c) => ({ name: c.name, data: rows.map((r) => convert(c.type, r[c.name])) }));
      await writer.write({ columnData: columnData as never, rowGroupSize: rows.length });
    },
    async finish() {
      await writer.finish();
    },
  };
}

// ---- CSV (papaparse): a header, then each batch appended; arrays joined with ';' as elsewhere. Text
// from complaint reports is hostile and CSV files get opened in spreadsheets: a text cell starting with
// = + - @, a tab or a CR gets a leading ' (papaparse's escapeFormulae), so it is never run as a formula.

function csvWriter(out: OpenFile, columns: readonly ExportColumn[]): BatchWriter {
  const fields = columns.map((c) => c.name);
  let first = true;
  const put = async (text: string) => {
    out.check();
    if (!out.stream.write(text)) await out.drain();
  };
  const cell = (c: ExportColumn, v: unknown) => {
    if (v === null || v === undefined) return '';
    if (Array.isArray(v)) return v.join(';');
    if (v instanceof Date) return v.toISOString();
    return v;
  };
  return {
    async write(rows) {
      const data = rows.map((r) => columns.map((c) => cell(c, r[c.name])));
      await put(`${Papa.unparse({ fields, data }, { header: first, newline: '\n', escapeFormulae: true })}\n`);
      first = false;
    },
    async finish() {
      if (first) await put(`${Papa.unparse({ fields, data: [] }, { newline: '\n' })}\n`);
      await out.close();
    },
  };
}
