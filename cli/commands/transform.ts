import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { UsageError } from '../exit-codes.js';
import { addDays, daysBetween, isDay } from '../../lib/clock.js';
import { rebuildAll, recompute, type RecomputeSummary } from '../../transform/recompute.js';

/** `repwatch transform`: recompute daily facts and decisions (ingests do it for the days they touch). */
export function registerTransform(program: Command, run: CommandRunner): void {
  program
    .command('transform')
    .description('recompute the per-IP daily facts, pools and decisions from the loaded data')
    .option('--rebuild', 'recompute every day and every as-of date')
    .option('--day <days...>', 'recompute these days (YYYY-MM-DD) and the decisions they affect')
    .option('--from <day>', 'first day of a range to recompute (with --to)')
    .option('--to <day>', 'last day of a range to recompute (with --from)')
    .option('--pending', 'recompute only the days an interrupted ingest left noted as pending')
    .action((options: { rebuild?: boolean; day?: string[]; from?: string; to?: string; pending?: boolean }) =>
      run(async (ctx) => {
        const days = selectedDays(options);
        const database = await ctx.database();
        const started = Date.now();
        const summary = days === null ? await rebuildAll(database, ctx.config) : await recompute(database, ctx.config, { days });
        ctx.stdout.write(`${describe(summary)} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      }),
    );
}

/** The days asked for; pending days are always added by the recompute itself (so --pending is []). */
function selectedDays(options: { rebuild?: boolean; day?: string[]; from?: string; to?: string; pending?: boolean }): string[] | null {
  const ways = [options.rebuild, options.day, options.from ?? options.to, options.pending].filter((x) => x !== undefined).length;
  if (ways !== 1) throw new UsageError('give exactly one of --rebuild, --pending, --day D..., or --from D --to D');
  if (options.rebuild) return null;
  if (options.pending) return [];
  if (options.day) {
    const days = options.day.flatMap((d) => d.split(',')).map((d) => d.trim()).filter(Boolean);
    const bad = days.filter((d) => !isDay(d));
    if (bad.length) throw new UsageError(`--day takes dates as YYYY-MM-DD, got ${bad.join(', ')}`);
    return days;
  }
  if (!options.from || !options.to || !isDay(options.from) || !isDay(options.to)) throw new UsageError('--from and --to take dates as YYYY-MM-DD, both');
  const span = daysBetween(options.from, options.to);
  if (span < 0) throw new UsageError('--from must not be after --to');
  return Array.from({ length: span + 1 }, (_, i) => addDays(options.from!, i));
}

function describe(summary: RecomputeSummary): string {
  const which = summary.days === null ? 'all days' : `${summary.days.length} day(s)`;
  const dates = summary.asOfDates.length ? ` (${summary.asOfDates[0]} … ${summary.asOfDates.at(-1)})` : '';
  return `recomputed facts for ${which} (${summary.factRows} IP-days) and decisions for ${summary.asOfDates.length} as-of date(s)${dates}: ${summary.decisions} decisions`;
}
