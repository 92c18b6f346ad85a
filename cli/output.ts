import Papa from 'papaparse';
import { UsageError } from './exit-codes.js';

/** Results go to stdout: a table on a TTY, JSON or CSV when asked. These helpers format; the command
 * writes. */

export type OutputFormat = 'table' | 'json' | 'csv';

export function toJson(value: unknown): string {
  return `${JSON.stringify(value, (_, v) => (v instanceof Date ? v.toISOString() : v), 2)}\n`;
}

/** A plain-text table that fits the terminal: columns padded, long cells cut with an ellipsis. */
export function toTable(rows: Record<string, unknown>[], columns: { key: string; title?: string; max?: number; align?: 'left' | 'right' }[]): string {
  const cell = (value: unknown, max?: number): string => {
    let text = value === null || value === undefined ? '' : Array.isArray(value) ? value.join(',') : value instanceof Date ? value.toISOString() : String(value);
    text = text.replace(/[\r\n\t]+/g, ' ');
    if (max && text.length > max) text = `${text.slice(0, max - 1)}…`;
    return text;
  };
  const header = columns.map((c) => c.title ?? c.key);
  const body = rows.map((row) => columns.map((c) => cell(row[c.key], c.max)));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (columns[i]!.align === 'right' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n') + '\n';
}

/** CSV with a header row; arrays joined with ';' so a cell stays one value; a text cell that a spreadsheet
 * would run as a formula (= + - @ tab CR first) gets a leading '. */
export function toCsv(rows: Record<string, unknown>[], columns: string[]): string {
  const data = rows.map((row) =>
    columns.map((key) => {
      const value = row[key];
      if (value === null || value === undefined) return '';
      if (Array.isArray(value)) return value.join(';');
      if (value instanceof Date) return value.toISOString();
      return value;
    }),
  );
  return `${Papa.unparse({ fields: columns, data }, { newline: '\n', escapeFormulae: true })}\n`;
}

/** The --format option: a table on a terminal, JSON in a pipe, a usage error (exit 2) for anything else. */
export function parseFormat<F extends OutputFormat>(value: string | undefined, allowed: readonly F[], isTty: boolean | undefined): F {
  if (!value) return (isTty ? 'table' : 'json') as F;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--format must be one of ${allowed.join(', ')}`);
  return value as F;
}
