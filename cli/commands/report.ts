import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { UsageError, CliError } from '../exit-codes.js';
import { isDay } from '../../lib/clock.js';
import { redactError } from '../../lib/redact.js';
import { lastCompleteWeekEnd, sundayOfIsoWeek } from '../../reports/week.js';
import { buildWeeklyReport, writeWeeklyReport, REPORT_FORMATS, type ReportFormat } from '../../reports/weekly-report.js';
import { sendWeeklyReport } from '../../reports/email.js';
import { assertNotFuture } from './flags.js';

interface WeeklyOptions {
  week?: string;
  asOf?: string;
  out?: string;
  format?: string;
}

/** `repwatch report weekly`: write the weekly report (and send it when reports.email is set). */
export function registerReport(program: Command, run: CommandRunner): void {
  const report = program.command('report').description('write reports');
  report
    .command('weekly')
    .description('the weekly report: an ISO week (--week), or the seven days ending with --as-of (default: the last complete ISO week)')
    .option('--week <YYYY-Www>', 'ISO week, e.g. 2026-W47')
    .option('--as-of <YYYY-MM-DD>', 'last day of the seven-day period (today or earlier)')
    .option('--out <dir>', 'output directory (default: reports.outDir)')
    .option('--format <list>', `comma-separated subset of ${REPORT_FORMATS.join(',')}`, REPORT_FORMATS.join(','))
    .action((options: WeeklyOptions) =>
      run(async (ctx) => {
        const asOf = resolveAsOf(options, ctx.clock.now());
        const formats = parseFormats(options.format);
        const database = await ctx.database();
        const built = await buildWeeklyReport(database, ctx.config, asOf, ctx.clock.now());
        const written = await writeWeeklyReport(built, options.out ?? ctx.config.reports.outDir!, formats);
        for (const format of formats) ctx.stdout.write(`${written[format]}\n`);
        ctx.logger.info({ job: 'report', period: built.period.week ?? `${built.period.from}/${built.period.to}`, asOf, decisions: built.data.decisions.items.length }, 'weekly report written');
        if (ctx.config.reports.email) {
          try {
            const sent = await sendWeeklyReport(ctx.config.reports.email, built);
            ctx.logger.info({ job: 'report', messageId: sent.messageId, to: sent.accepted }, 'weekly report sent');
          } catch (error) {
            throw new CliError(`report written, but sending it by e-mail failed: ${redactError(error)} (check reports.email)`);
          }
        }
      }),
    );
}

function resolveAsOf(options: WeeklyOptions, now: Date): string {
  if (options.week && options.asOf) throw new UsageError('give --week or --as-of, not both');
  if (options.week) {
    const sunday = sundayOfIsoWeek(options.week);
    if (!sunday) throw new UsageError(`--week must be an ISO week such as 2026-W47 (got ${options.week})`);
    // The week's last day is the as-of date: a week not yet over would store decisions for a future day.
    assertNotFuture(`--week ${options.week} (ending ${sunday})`, sunday, now);
    return sunday;
  }
  if (options.asOf) {
    if (!isDay(options.asOf)) throw new UsageError(`--as-of must be a date as YYYY-MM-DD (got ${options.asOf})`);
    assertNotFuture(`--as-of ${options.asOf}`, options.asOf, now);
    return options.asOf;
  }
  return lastCompleteWeekEnd(now);
}

function parseFormats(value: string | undefined): ReportFormat[] {
  const list = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = list.filter((f) => !(REPORT_FORMATS as readonly string[]).includes(f));
  if (bad.length || list.length === 0) throw new UsageError(`--format takes a comma-separated subset of ${REPORT_FORMATS.join(',')} (got ${value})`);
  return [...new Set(list)] as ReportFormat[];
}
