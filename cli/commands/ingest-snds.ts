import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import type { CommandContext } from '../context.js';
import { CliError, ExitCode, NeedsPersonError, UsageError } from '../exit-codes.js';
import { parseFormat, toJson, toTable } from '../output.js';
import { addDays, isDay, utcDay } from '../../lib/clock.js';
import { redact, registerSecretUrl } from '../../lib/redact.js';
import { realSleep } from '../../ingest/snds/fetch-export.js';
import { addInput, daysToRecompute, fetchAndIngest, ingestSndsFeed, newFeedResult, SndsNeedsPersonError, type SndsFeedResult, type SndsJobContext } from '../../ingest/snds/ingest-feed.js';
import { ingestSndsFiles, type FileInput } from '../../ingest/snds/ingest-files.js';
import { API_FEED, ingestSndsApi, tokenStoreFor } from '../../ingest/snds/ingest-api.js';
import { recomputeDays } from '../../transform/recompute.js';

interface Options {
  feed?: string;
  date?: string;
  since?: string;
  file?: string[];
  statusFile?: string[];
  url?: string;
  statusUrl?: string;
  timezone?: string;
  format?: string;
  allowEmptyStatus?: boolean;
}

/** `repwatch ingest snds`: configured feeds (automated links and the REST API), one-off URLs, or files. */
export function registerIngestSnds(ingest: Command, run: CommandRunner): void {
  ingest
    .command('snds')
    .description('load Microsoft SNDS IP Data and IP Status exports (configured feeds, the REST API, a URL, or files)')
    .option('--feed <name>', 'only this configured feed ("api" for the REST API); with --file/--url, the feed name to store under')
    .option('--date <YYYY-MM-DD>', 'fetch this one day')
    .option('--since <YYYY-MM-DD>', 'fetch every day from this one to yesterday (backfill from links or the API)')
    .option('--file <path...>', 'an IP Data export saved from the portal ("-" reads stdin)')
    .option('--status-file <path...>', 'an IP Status export saved from the portal ("-" reads stdin)')
    .option('--allow-empty-status', 'load an empty --status-file as "nothing blocked" (it clears the feed\'s block list)')
    .option('--url <url>', 'pull an IP Data export from this URL once, without configuration')
    .option('--status-url <url>', 'pull an IP Status export from this URL once')
    .option('--timezone <iana>', 'time zone of the export timestamps for --file/--url (default: the feed\'s, else UTC)')
    .option('--format <format>', 'summary as table or json (default: table on a terminal, else json)')
    .addHelpText(
      'after',
      '\n"-" reads stdin, for one --file or --status-file only.\n' +
        '\nExit codes: 0 data loaded (rows may have been rejected), 1 a download or input failed (a file that is\n' +
        'mostly not SNDS rows too), 3 an SNDS link is expired or broken whatever it returns (a sign-in page, a\n' +
        'JSON or text error, a 4xx, a redirect to a login host), or the API needs a new login (the message says\n' +
        'what to do), 2 bad options (a malformed --url, "-" given twice).',
    )
    .action((options: Options) => run((ctx) => ingestSnds(ctx, options)));
}

async function ingestSnds(ctx: CommandContext, options: Options): Promise<number> {
  const format = parseFormatOrUsage(options.format, ctx.stdout.isTTY ?? false);
  const days = requestedDays(options, utcDay(ctx.clock.now()));
  if (options.timezone) checkTimezone(options.timezone);
  checkOneOffInputs(options);
  const oneOff = Boolean(options.file?.length || options.statusFile?.length || options.url || options.statusUrl);
  const database = await ctx.database();
  const job: SndsJobContext = { database, config: ctx.config, fetch: globalThis.fetch, clock: ctx.clock, logger: ctx.logger, sleep: realSleep };
  const results: SndsFeedResult[] = [];
  const needsPerson: string[] = [];
  const attempt = async (work: () => Promise<SndsFeedResult>) => {
    try {
      results.push(await work());
    } catch (error) {
      if (!(error instanceof SndsNeedsPersonError)) throw error;
      results.push(error.result);
      needsPerson.push(error.message);
    }
  };

  if (oneOff) {
    const feedName = options.feed ?? 'manual';
    const configured = ctx.config.snds.feeds.find((f) => f.name === feedName);
    const timezone = options.timezone ?? configured?.timezone ?? 'UTC';
    const files: FileInput[] = [
      ...(options.file ?? []).map((path) => ({ kind: 'ip_data' as const, path })),
      ...(options.statusFile ?? []).map((path) => ({ kind: 'ip_status' as const, path })),
    ];
    for (const file of files) if (file.path !== '-') checkReadable(resolve(file.path));
    if (files.length) {
      await attempt(() => ingestSndsFiles({ database, config: ctx.config, clock: ctx.clock, feed: feedName, timezone, files, stdin: ctx.stdin, skipRecompute: true }));
    }
    if (options.url || options.statusUrl) {
      await attempt(() => ingestOneOffUrls(job, feedName, timezone, options));
    }
  } else {
    const feeds = ctx.config.snds.feeds.filter((f) => !options.feed || f.name === options.feed);
    const api = ctx.config.snds.api;
    const useApi = Boolean(api) && (!options.feed || options.feed === API_FEED);
    if (!feeds.length && !useApi) {
      throw new UsageError(
        options.feed
          ? `no SNDS feed named "${options.feed}" in the configuration (known: ${ctx.config.snds.feeds.map((f) => f.name).join(', ') || 'none'}${api ? ', api' : ''})`
          : 'no SNDS feeds are configured: add snds.feeds (or snds.api) to the configuration, or give --file or --url',
      );
    }
    for (const feed of feeds) await attempt(() => ingestSndsFeed({ ...job, feed, ...(days ? { days } : {}), skipRecompute: true }));
    if (useApi && api) {
      await attempt(() => ingestSndsApi({ ...job, api, tokenStore: tokenStoreFor(api, database, ctx.home), ...(days ? { days } : {}), skipRecompute: true }));
    }
  }

  // Facts are recomputed once, for every day any feed touched. A new IP Status list touches no IP Data
  // day but changes `blocked` in the decisions from its fetch date on: those as-of dates are recomputed
  // too, so a status-only ingest (--status-file, --status-url) leaves no stale decision behind.
  // Also when nothing new loaded: days left pending by a run that stopped before its recompute are
  // taken then.
  const touched = [...new Set(results.flatMap((r) => r.days))].sort();
  try {
    await recomputeDays(database, ctx.config, await daysToRecompute(database, results));
  } catch (error) {
    results.at(-1)!.failures.push(`recomputing facts and decisions failed: ${redact((error as Error).message)}`);
  }
  writeSummary(ctx, format, results, touched);
  if (needsPerson.length) throw new NeedsPersonError(needsPerson.join('\n'));
  const failures = results.flatMap((r) => r.failures);
  if (failures.length) throw new CliError(`SNDS ingest finished with ${failures.length} failure(s):\n  ${failures.join('\n  ')}`, ExitCode.failed);
  return ExitCode.ok;
}

async function ingestOneOffUrls(job: SndsJobContext, feed: string, timezone: string, options: Options): Promise<SndsFeedResult> {
  const result = newFeedResult(feed);
  const broken = (reason: string) =>
    new SndsNeedsPersonError(
      `SNDS link given on the command line (feed "${feed}"): ${reason}. Create or refresh the link on the SNDS portal's Automated Data Access page and try again with the new link.`,
      feed,
      result,
    );
  for (const [kind, url] of [['ip_data', options.url], ['ip_status', options.statusUrl]] as const) {
    if (!url) continue;
    registerSecretUrl(url);
    addInput(result, await fetchAndIngest(job, { source: 'url', kind, feed, location: url, requestedDay: null, timezone }, 'link', broken));
  }
  return result;
}

function requestedDays(options: Options, today: string): string[] | undefined {
  if (options.date && options.since) throw new UsageError('give --date or --since, not both');
  if (options.date) {
    if (!isDay(options.date)) throw new UsageError(`--date: not a date as YYYY-MM-DD: ${options.date}`);
    // SNDS publishes a day once it is over: today and later have nothing to fetch.
    if (options.date >= today) throw new UsageError(`--date ${options.date} is not before today (${today}, UTC): SNDS reports past days only`);
    return [options.date];
  }
  if (options.since) {
    if (!isDay(options.since)) throw new UsageError(`--since: not a date as YYYY-MM-DD: ${options.since}`);
    const last = addDays(today, -1);
    if (options.since > last) throw new UsageError(`--since ${options.since} is not before today (${today})`);
    const days: string[] = [];
    for (let day = options.since; day <= last; day = addDays(day, 1)) days.push(day);
    if (days.length > 366) throw new UsageError('--since: at most 366 days at once (SNDS keeps about 90 days anyway)');
    return days;
  }
  return undefined;
}

/** Usage errors in --file/--status-file/--url/--status-url, found before any database or network work. */
function checkOneOffInputs(options: Options): void {
  // A one-off input is loaded whole (every day in the file, or whatever the URL returns): a day
  // filter that would be silently ignored is refused instead.
  const oneOff = Boolean(options.file?.length || options.statusFile?.length || options.url || options.statusUrl);
  if (oneOff && (options.date || options.since)) {
    throw new UsageError('--date and --since choose what to fetch from configured feeds; --file, --status-file, --url and --status-url load their input whole');
  }
  // An empty IP Status export means "nothing of yours is blocked" and clears the feed's block list.
  // From a link that is SNDS's answer; a file saved by hand is more likely a failed save: asked for.
  for (const path of options.statusFile ?? []) {
    if (path === '-' || options.allowEmptyStatus) continue;
    const info = (() => {
      try {
        return statSync(path);
      } catch {
        return null; // reported as unreadable later, with the others
      }
    })();
    if (info?.isFile() && info.size < 64 && readFileSync(path, 'utf8').trim() === '') {
      throw new UsageError(
        `--status-file ${path} is empty: loaded, it says nothing of yours is blocked and clears the feed's current block list. If that is so, add --allow-empty-status`,
      );
    }
  }
  const stdinUses = [...(options.file ?? []), ...(options.statusFile ?? [])].filter((path) => path === '-').length;
  if (stdinUses > 1) throw new UsageError('"-" (stdin) can be given only once across --file and --status-file: save the other export to a file');
  for (const [flag, url] of [['--url', options.url], ['--status-url', options.statusUrl]] as const) {
    if (url === undefined) continue;
    let protocol: string | undefined;
    try {
      protocol = new URL(url).protocol;
    } catch {
      protocol = undefined;
    }
    // The value is not echoed: an SNDS link holds its access key.
    if (protocol !== 'https:' && protocol !== 'http:') throw new UsageError(`${flag} is not an http(s):// URL`);
  }
}

function checkTimezone(zone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw new UsageError(`--timezone: not an IANA time zone: ${zone}`);
  }
}

function checkReadable(path: string): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, ExitCode.failed);
  }
}

function parseFormatOrUsage(value: string | undefined, isTty: boolean) {
  try {
    return parseFormat(value, ['table', 'json'], isTty);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function writeSummary(ctx: CommandContext, format: 'table' | 'json' | 'csv', results: SndsFeedResult[], days: string[]): void {
  const totals = {
    feeds: new Set(results.map((r) => r.feed)).size,
    days: days.length,
    rowsLoaded: results.reduce((n, r) => n + r.rowsLoaded, 0),
    rowsReplaced: results.reduce((n, r) => n + r.rowsReplaced, 0),
    rowsRejected: results.reduce((n, r) => n + r.rowsRejected, 0),
    warnings: results.reduce((n, r) => n + r.warnings.length, 0),
    failures: results.reduce((n, r) => n + r.failures.length, 0),
  };
  if (format === 'json') {
    ctx.stdout.write(redact(toJson({ ...totals, touchedDays: days, results })));
    return;
  }
  const rows = results.flatMap((r) =>
    r.inputs.map((i) => ({
      feed: i.feed,
      kind: i.kind === 'ip_data' ? 'IP Data' : 'IP Status',
      day: i.requestedDay ?? '',
      outcome: i.outcome,
      loaded: i.rowsLoaded,
      replaced: i.rowsReplaced,
      rejected: i.rowsRejected,
      detail: i.detail ?? '',
    })),
  );
  const loadedOf = (kind: 'ip_data' | 'ip_status') => results.flatMap((r) => r.inputs).filter((i) => i.kind === kind).reduce((n, i) => n + i.rowsLoaded, 0);
  let text = rows.length
    ? toTable(rows, [
        { key: 'feed' },
        { key: 'kind' },
        { key: 'day' },
        { key: 'outcome' },
        { key: 'loaded', align: 'right' },
        { key: 'replaced', align: 'right' },
        { key: 'rejected', align: 'right' },
        { key: 'detail', max: 70 },
      ])
    : '';
  text +=
    `SNDS: ${totals.feeds} feed(s), ${totals.days} day(s), ${loadedOf('ip_data')} IP Data row(s) loaded, ${loadedOf('ip_status')} IP Status range(s), ${totals.rowsReplaced} replaced, ` +
    `${totals.rowsRejected} rejected, ${totals.warnings} warning(s)\n`;
  for (const warning of results.flatMap((r) => r.warnings)) text += `warning: ${warning}\n`;
  ctx.stdout.write(redact(text));
}
