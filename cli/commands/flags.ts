import { Option, type Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { CliError, ExitCode, UsageError } from '../exit-codes.js';
import { parseFormat, toCsv, toJson } from '../output.js';
import { isDay, utcDay } from '../../lib/clock.js';
import { computeDecisions, configuredSndsFeeds, decisionDates, feedGapText, FLAG_KEYS, sndsWindowCoverage, toFlagRecord } from '../../transform/decisions.js';
import { decisionsTable } from '../../transform/decisions-table.js';
import { wrapWords } from '../../lib/wrap.js';

/** `repwatch flags`: the decision for every sending IP on one date, most urgent first. */
export function registerFlags(program: Command, run: CommandRunner): void {
  program
    .command('flags')
    .description('the delisting decision for every IP: start_delisting, fix_first, at_risk, ok or no_data, with reasons and route')
    .option('--as-of <day>', 'decision date, YYYY-MM-DD (default: the latest day with SNDS data, or the day of a newer IP Status download within the window)')
    .addOption(new Option('--format <format>', 'output format (default: table on a terminal, json otherwise)').choices(['table', 'json', 'csv']))
    .action((options: { asOf?: string; format?: string }) =>
      run(async (ctx) => {
        if (options.asOf !== undefined && !isDay(options.asOf)) throw new UsageError(`--as-of must be a date as YYYY-MM-DD, got "${options.asOf}"`);
        if (options.asOf !== undefined) assertNotFuture(`--as-of ${options.asOf}`, options.asOf, ctx.clock.now());
        const format = parseFormat(options.format, ['table', 'json', 'csv'], Boolean(ctx.stdout.isTTY));
        const database = await ctx.database();
        const dates = await decisionDates(database, utcDay(ctx.clock.now()), ctx.config.thresholds.windowDays);
        const asOf = options.asOf ?? dates.asOf;
        if (!asOf) {
          throw new CliError('no SNDS data yet: load some with `repwatch ingest snds` (or run `repwatch transform --rebuild` after loading), or give --as-of YYYY-MM-DD', ExitCode.failed);
        }
        // Computed now rather than read back, so the answer follows the current data and thresholds;
        // it also stores them as that date's history in analytics.ip_flag.
        const decisions = await computeDecisions(database, ctx.config, asOf);
        const newestStatus = dates.statusDay;
        const newerStatus = newestStatus !== null && newestStatus > asOf;
        if (newerStatus) {
          ctx.logger.warn({ asOf, statusDownloadedOn: newestStatus }, 'an IP Status download newer than the as-of date is not used for it');
        }
        if (format === 'json') ctx.stdout.write(toJson(decisions.map(toFlagRecord)));
        else if (format === 'csv') ctx.stdout.write(toCsv(decisions.map(toFlagRecord), [...FLAG_KEYS]));
        else {
          ctx.stdout.write(decisionsTable(decisions, asOf, ctx.config.thresholds.windowDays));
          if (newerStatus) {
            ctx.stdout.write(`\nnote: IP Status list of ${newestStatus} is newer than ${asOf}: not used here;\n` +
              `      run with --as-of ${newestStatus} to decide with it.\n`);
          }
          const windowDays = ctx.config.thresholds.windowDays;
          const coverage = await sndsWindowCoverage(database, asOf, windowDays, configuredSndsFeeds(ctx.config));
          if (coverage.covered < windowDays) {
            ctx.stdout.write(`\nnote: SNDS data covers ${coverage.covered} of the window's ${windowDays} days; days without\n` +
              `      data count as clean here (start_delisting may be early)${coverage.latest && coverage.latest < asOf ? `: the latest\n      day with data from every feed is ${coverage.latest}` : ''}.\n`);
            if (coverage.feedGaps.length) ctx.stdout.write(`${wrapWords(`${feedGapText(coverage.feedGaps)}: the IPs of that feed count those days as clean.`, 80, 'note:', '      ')}\n`);
          }
        }
      }),
    );
}

/**
 * Refuse a decision date after today (the clock's UTC day): decisions computed for a future date are
 * stored in the decision history, and from then on become the latest as-of date that other commands
 * default to and that every recompute extends to. Usage error (exit 2); shared by flags, report weekly
 * and delist draft.
 */
export function assertNotFuture(what: string, day: string, now: Date): void {
  const today = utcDay(now);
  if (day > today) {
    throw new UsageError(`${what} is after today (${today}, UTC): decisions are only made for days that have come; give ${today} or an earlier day`);
  }
}
