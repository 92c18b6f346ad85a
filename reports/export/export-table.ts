import { rename, rm } from 'node:fs/promises';
import type { Database } from '../../db/connection.js';
import { readInBatches, type ExportRange } from './read-batches.js';
import { EXPORT_TABLES, type ExportTableName } from './tables.js';
import { createBatchWriter, type ExportFormat } from './writers.js';

export interface ExportOptions extends ExportRange {
  table: ExportTableName;
  format: ExportFormat;
  out: string;
  /** Rows per database fetch, Arrow record batch and Parquet row group. */
  batchSize?: number;
}

export const DEFAULT_EXPORT_BATCH = 10_000;

/** The output file could not be created (its folder is missing, is a file, or is not writable). */
export class ExportFileError extends Error {
  constructor(readonly path: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const why =
      code === 'ENOENT' ? 'its folder does not exist'
      : code === 'ENOTDIR' ? 'a part of its folder path is a file, not a folder'
      : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
      : code === 'EISDIR' ? 'it is a folder'
      : cause instanceof Error ? cause.message : String(cause);
    super(`cannot write ${path}: ${why}`, { cause });
    this.name = 'ExportFileError';
  }
}

/**
 * Stream one analytics view into a file. The file is written aside and renamed when complete, so a
 * failed export never leaves a truncated file where a BI job expects a good one.
 */
export async function exportTable(database: Database, options: ExportOptions): Promise<{ rows: number; path: string }> {
  const table = EXPORT_TABLES[options.table];
  const partial = `${options.out}.partial`;
  let writer;
  try {
    writer = await createBatchWriter(options.format, partial, table.columns);
  } catch (error) {
    throw new ExportFileError(options.out, error);
  }
  try {
    const rows = await readInBatches(database, table, options, options.batchSize ?? DEFAULT_EXPORT_BATCH, (batch) => writer.write(batch));
    await writer.finish();
    await rename(partial, options.out);
    return { rows, path: options.out };
  } catch (error) {
    await writer.finish().catch(() => undefined);
    await rm(partial, { force: true });
    throw error;
  }
}
