import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { CliError, UsageError } from '../exit-codes.js';
import { isDay } from '../../lib/clock.js';
import { ExportFileError, exportTable } from '../../reports/export/export-table.js';
import { EXPORT_TABLE_NAMES, type ExportTableName } from '../../reports/export/tables.js';
import { EXPORT_FORMATS, type ExportFormat } from '../../reports/export/writers.js';

interface ExportCliOptions {
  format: string;
  table: string;
  from?: string;
  to?: string;
  out: string;
  batchSize: string;
}

/** --out's folder must exist and be a folder (export creates no folders): exit 1 before any database work. */
async function checkOutFolder(out: string): Promise<void> {
  const folder = dirname(resolve(out));
  const info = await stat(folder).catch(() => undefined);
  if (!info) throw new CliError(`cannot write ${out}: its folder ${folder} does not exist`);
  if (!info.isDirectory()) throw new CliError(`cannot write ${out}: ${folder} is not a folder`);
}

/** `repwatch export`: stream an analytics view into a Parquet, Arrow IPC or CSV file. */
export function registerExport(program: Command, run: CommandRunner): void {
  program
    .command('export')
    .description('stream an analytics view into a Parquet, Arrow IPC or CSV file (in batches, never all in memory)')
    .requiredOption('--format <format>', EXPORT_FORMATS.join('|'))
    .option('--table <table>', EXPORT_TABLE_NAMES.join('|'), 'ip_day')
    .option('--from <YYYY-MM-DD>', 'first day (day, or as_of for ip_flag)')
    .option('--to <YYYY-MM-DD>', 'last day')
    .requiredOption('--out <file>', 'output file (its folder must exist)')
    .option('--batch-size <rows>', 'rows per fetch, record batch and row group', '10000')
    .action((options: ExportCliOptions) =>
      run(async (ctx) => {
        if (!(EXPORT_FORMATS as readonly string[]).includes(options.format)) throw new UsageError(`--format must be one of ${EXPORT_FORMATS.join(', ')}`);
        if (!(EXPORT_TABLE_NAMES as readonly string[]).includes(options.table)) throw new UsageError(`--table must be one of ${EXPORT_TABLE_NAMES.join(', ')}`);
        for (const [name, value] of [['--from', options.from], ['--to', options.to]] as const) {
          if (value !== undefined && !isDay(value)) throw new UsageError(`${name} must be a date as YYYY-MM-DD (got ${value})`);
        }
        if (options.from && options.to && options.from > options.to) throw new UsageError('--from is after --to');
        const batchSize = Number(options.batchSize);
        if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError('--batch-size must be a positive integer');
        // "-" means stdin for `ingest --file`; here it would quietly make a file named "-".
        if (options.out === '-') throw new UsageError('--out - : export writes a file (written whole, then renamed into place), not standard output; give a path such as ./ip_day.csv');
        await checkOutFolder(options.out);
        const database = await ctx.database();
        const t0 = Date.now();
        const result = await exportTable(database, {
          table: options.table as ExportTableName,
          format: options.format as ExportFormat,
          from: options.from,
          to: options.to,
          out: options.out,
          batchSize,
        }).catch((error: unknown) => {
          throw error instanceof ExportFileError ? new CliError(error.message) : error;
        });
        ctx.logger.info({ job: 'export', table: options.table, format: options.format, rows: result.rows, ms: Date.now() - t0 }, 'export written');
        ctx.stdout.write(`${result.path}\t${result.rows} rows\n`);
      }),
    );
}
