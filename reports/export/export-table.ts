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

/**
 * Stream one analytics view into a file. The file is written aside and renamed when complete, so a
 * failed export never leaves a truncated file where a BI job expects a good one.
 */
export async function exportTable(database: Database, options: ExportOptions): Promise<{ rows: number; path: string }> {
  const table = EXPORT_TABLES[options.table];
  const partial = `${options.out}.partial`;
  const writer = createBatchWriter(options.format, partial, table.columns);
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
