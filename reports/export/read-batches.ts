import type { Database } from '../../db/connection.js';
import { isDay } from '../../lib/clock.js';
import type { ExportTable } from './tables.js';

export type ExportRow = Record<string, unknown>;

export interface ExportRange {
  from?: string | undefined;
  to?: string | undefined;
}

/**
 * Read a view in batches through a server-side cursor, inside one transaction (one consistent snapshot
 * of the whole export). Only one batch is ever in memory, whatever the size of the table. The batch
 * callback runs before the next FETCH, so a slow writer slows the reader instead of piling rows up.
 */
export async function readInBatches(
  database: Database,
  table: ExportTable,
  range: ExportRange,
  batchSize: number,
  onBatch: (rows: ExportRow[]) => Promise<void>,
): Promise<number> {
  const where: string[] = [];
  // Dates are checked, then inlined: DECLARE takes no bind parameters on every driver.
  for (const [value, op] of [[range.from, '>='], [range.to, '<=']] as const) {
    if (value === undefined) continue;
    if (!isDay(value)) throw new Error(`not a date as YYYY-MM-DD: ${value}`);
    where.push(`${table.dateColumn} ${op} date '${value}'`);
  }
  const select = `select ${table.columns.map((c) => (c.select === c.name ? c.name : `${c.select} as ${c.name}`)).join(', ')}
    from ${table.view} v${where.length ? ` where ${where.join(' and ')}` : ''} order by ${table.orderBy}`;
  return database.transaction(async (session) => {
    await session.query(`declare repwatch_export no scroll cursor for ${select}`);
    let total = 0;
    for (;;) {
      const rows = await session.query<ExportRow>(`fetch forward ${Math.trunc(batchSize)} from repwatch_export`);
      if (rows.length === 0) break;
      total += rows.length;
      await onBatch(rows);
      if (rows.length < batchSize) break;
    }
    await session.query('close repwatch_export');
    return total;
  });
}
