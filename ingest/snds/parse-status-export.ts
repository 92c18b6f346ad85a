import { forEachCsvRecord, stripBom, withLineFeeds, type CsvRecord } from './csv-records.js';
import { ipOrder, normaliseIp, textOrNull } from './row-checks.js';
import type { ParseResult, SndsRowError } from './parse-data-export.js';

/**
 * The IP Status export: `First IP, Last IP, Blocked, Details`, no header, one line per blocked range.
 * Blocked is Yes/No in the legacy feed and True/False in newer ones, in any case. Pure.
 */

export interface SndsStatusRow {
  line: number;
  firstIp: string;
  lastIp: string;
  blocked: boolean;
  details: string | null;
}

export function parseStatusExport(text: string): ParseResult<SndsStatusRow> {
  const rows: SndsStatusRow[] = [];
  const errors: SndsRowError[] = [];
  forEachCsvRecord(withLineFeeds(stripBom(text)), 1, (record) => {
    const result = parseStatusRecord(record);
    if (result === null) return;
    if ('reason' in result) errors.push(result);
    else rows.push(result);
  });
  return { rows, errors };
}

const BLOCKED: Record<string, boolean> = { yes: true, true: true, y: true, '1': true, no: false, false: false, n: false, '0': false };

export function parseStatusRecord(record: CsvRecord): SndsStatusRow | SndsRowError | null {
  const { fields, line, raw } = record;
  const fail = (reason: string): SndsRowError => ({ line, reason, raw });
  try {
    if (line === 1 && /^first\s*ip$/i.test((fields[0] ?? '').trim())) return null;
    if (fields.length < 3) return fail(`${fields.length} field${fields.length === 1 ? '' : 's'}; an IP Status line has 4 (First IP, Last IP, Blocked, Details)`);
    const firstIp = normaliseIp(fields[0]!);
    if (!firstIp) return fail(`column 1 (first IP): not an IP address: ${JSON.stringify(fields[0])}`);
    const lastIp = normaliseIp(fields[1]!);
    if (!lastIp) return fail(`column 2 (last IP): not an IP address: ${JSON.stringify(fields[1])}`);
    if (firstIp.includes(':') !== lastIp.includes(':')) return fail('first and last IP are of different families');
    if (ipOrder(firstIp) > ipOrder(lastIp)) return fail(`first IP ${firstIp} is after last IP ${lastIp}`);
    const blocked = BLOCKED[(fields[2] ?? '').trim().toLowerCase()];
    if (blocked === undefined) return fail(`column 3 (blocked): expected Yes, No, True or False: ${JSON.stringify(fields[2])}`);
    // Details is free text; unquoted commas in it would split it, so the rest of the line is joined back.
    const details = textOrNull(fields.slice(3).join(','));
    return { line, firstIp, lastIp, blocked, details };
  } catch (error) {
    return fail(`unexpected parser error: ${(error as Error).message}`);
  }
}
