import type { Config, MailboxConfig, SndsFeedConfig } from '../config/schema.js';
import { linkExpiry } from '../ingest/snds/link-expiry.js';
import { ingestSndsFeed, refetchDays, type SndsFeedResult } from '../ingest/snds/ingest-feed.js';
import { API_FEED, ingestSndsApi, tokenStoreFor, type SndsApiConfig } from '../ingest/snds/ingest-api.js';
import { buildWeeklyReport, writeWeeklyReport, REPORT_FORMATS } from '../reports/weekly-report.js';
import { sendWeeklyReport } from '../reports/email.js';
import { sundayOfIsoWeek } from '../reports/week.js';
import { ingestJmrpMailbox, mailboxBacklog } from '../ingest/jmrp/ingest-mailbox.js';
import { ingestBounces } from '../ingest/bounces/ingest-bounces.js';
import { batchSizeOf, openMailboxSource } from '../ingest/mailbox/open-source.js';
import { runBlocklistCheck } from '../checks/dnsbl/check-blocklists.js';
import { CronSchedule } from './cron.js';
import { dayOfTick, minuteOfTick, reportWeekOfTick } from './periods.js';
import type { LinkState } from './status.js';
import type { JobContext, JobDefinition, JobResult } from './types.js';
import { NeedsPersonError } from '../cli/exit-codes.js';

/**
 * The one adapter between the scheduler and the pipeline: which jobs a configuration has, and how each
 * calls the same function its `repwatch ingest` / `report` verb calls. Everything else in jobs/ knows
 * nothing about SNDS, mailboxes or reports.
 */

const DAY_MS = 86_400_000;
/** A mailbox drain catches up everything, so only the latest tick of the last day matters. */
const LATEST_TICK_LOOKBACK_MS = DAY_MS;

/** The work behind each kind of job; tests pass their own, the CLI the real ones. */
export interface JobImplementations {
  snds?: (context: JobContext, feed: SndsFeedConfig) => Promise<JobResult>;
  sndsApi?: (context: JobContext, api: SndsApiConfig) => Promise<JobResult>;
  jmrp?: (context: JobContext, mailbox: MailboxConfig) => Promise<JobResult>;
  bounces?: (context: JobContext, mailbox: MailboxConfig) => Promise<JobResult>;
  report?: (context: JobContext) => Promise<JobResult>;
  blocklists?: (context: JobContext) => Promise<JobResult>;
}

export const pipelineJobs: JobImplementations = {
  snds: fetchSndsFeed,
  sndsApi: fetchSndsApi,
  jmrp: drainJmrpMailbox,
  bounces: drainBounceMailbox,
  blocklists: checkBlocklists,
  report: runWeeklyReport,
};

/** The jobs a configuration asks for, in a stable order: SNDS feeds, mailboxes, blocklists, report. */
export function configuredJobs(config: Config, implementations: JobImplementations = pipelineJobs): JobDefinition[] {
  const s = config.schedule;
  const tz = s.timezone;
  const jobs: JobDefinition[] = [];
  const snds = implementations.snds;
  if (snds) {
    const schedule = new CronSchedule(s.snds, tz);
    for (const feed of config.snds.feeds) {
      jobs.push({
        name: `snds:${feed.name}`,
        kind: 'snds',
        schedule,
        periodOf: (tick) => dayOfTick(tick, tz),
        catchUp: 'every',
        horizonMs: s.sndsCatchUpDays * DAY_MS,
        run: (context) => snds(context, feed),
      });
    }
  }
  const sndsApi = implementations.sndsApi;
  const api = config.snds.api;
  if (sndsApi && api) {
    jobs.push({
      name: `snds:${API_FEED}`,
      kind: 'snds',
      schedule: new CronSchedule(s.snds, tz),
      periodOf: (tick) => dayOfTick(tick, tz),
      catchUp: 'every',
      horizonMs: s.sndsCatchUpDays * DAY_MS,
      run: (context) => sndsApi(context, api),
    });
  }
  for (const [kind, mailboxes, run, cron] of [
    ['jmrp', config.jmrp.mailboxes, implementations.jmrp, s.jmrp],
    ['bounces', config.bounces.mailboxes, implementations.bounces, s.bounces],
  ] as const) {
    if (!run) continue;
    const schedule = new CronSchedule(cron, tz);
    for (const mailbox of mailboxes) {
      jobs.push({
        name: `${kind}:${mailbox.name}`,
        kind,
        schedule,
        periodOf: minuteOfTick,
        catchUp: 'latest',
        horizonMs: LATEST_TICK_LOOKBACK_MS,
        run: (context) => run(context, mailbox),
      });
    }
  }
  const blocklists = implementations.blocklists;
  if (blocklists) {
    jobs.push({
      name: 'blocklists',
      kind: 'blocklists',
      schedule: new CronSchedule(s.blocklists, tz),
      periodOf: (tick) => dayOfTick(tick, tz),
      catchUp: 'latest',
      horizonMs: DAY_MS,
      run: blocklists,
    });
  }
  const report = implementations.report;
  if (report) {
    jobs.push({
      name: 'report:weekly',
      kind: 'report',
      schedule: new CronSchedule(s.report, tz),
      periodOf: (tick) => reportWeekOfTick(tick, tz),
      catchUp: 'every',
      horizonMs: s.reportCatchUpWeeks * 7 * DAY_MS,
      run: report,
    });
  }
  return jobs;
}

/** Expiry of every SNDS link, for `status` and the metrics (the rule lives with SNDS ingestion). */
export function sndsLinkStates(config: Config, today: string): LinkState[] {
  return config.snds.feeds.map((feed) => {
    const expiry = linkExpiry(feed, today, config.snds.linkLifetimeDays, config.snds.linkWarnDays);
    return { feed: feed.name, ...expiry };
  });
}

/**
 * One SNDS feed for the period's day: the snds.refetchDays days before it (SNDS publishes late and
 * revises), so a caught-up period fetches the days it would have fetched on time. Downloads that
 * failed fail the run (it is retried); an expired or broken link throws the ingest's NeedsPersonError.
 */
async function fetchSndsFeed(context: JobContext, feed: SndsFeedConfig): Promise<JobResult> {
  const r = await ingestSndsFeed({
    database: context.database,
    config: context.config,
    feed,
    days: refetchDays(context.period, context.config.snds.refetchDays),
    fetch: context.fetch,
    clock: context.clock,
    logger: context.logger,
  });
  return sndsJobResult(feed.name, r);
}

/** The REST API (snds.api), stored as feed `api`; a lost sign-in throws the ingest's NeedsPersonError. */
async function fetchSndsApi(context: JobContext, api: SndsApiConfig): Promise<JobResult> {
  const r = await ingestSndsApi({
    database: context.database,
    config: context.config,
    api,
    tokenStore: tokenStoreFor(api, context.database, context.home),
    days: refetchDays(context.period, context.config.snds.refetchDays),
    fetch: context.fetch,
    clock: context.clock,
    logger: context.logger,
  });
  return sndsJobResult(API_FEED, r);
}

function sndsJobResult(feed: string, r: SndsFeedResult): JobResult {
  const summary = `days ${r.days.join(', ') || 'none'}: ${r.rowsLoaded} rows loaded (${r.rowsReplaced} replaced), ${r.rowsRejected} rejected`;
  if (r.failures.length) throw new Error(`SNDS feed ${feed}: ${r.failures.join('; ')} (${summary})`);
  return {
    rowsIn: r.rowsLoaded + r.rowsRejected,
    rowsLoaded: r.rowsLoaded,
    rowsRejected: r.rowsRejected,
    detail: [summary, ...r.warnings].join('; '),
  };
}

/** Messages waiting in a mailbox, where the mailbox can tell cheaply (Maildir, IMAP STATUS; not mbox). */
export async function mailboxBacklogOf(mailbox: MailboxConfig): Promise<number | null> {
  if (mailbox.mbox) return null;
  return mailboxBacklog(mailbox);
}

/** One drain of a JMRP mailbox. The drain records what it could before a mailbox or database error;
 * the error fails the run so it is retried, and the messages already stored are recognised then. */
async function drainJmrpMailbox(context: JobContext, mailbox: MailboxConfig): Promise<JobResult> {
  const r = await ingestJmrpMailbox({ database: context.database, config: context.config, mailbox, logger: context.logger, clock: context.clock });
  if (r.error) throw drainError(mailbox, r);
  return {
    rowsIn: r.seen,
    rowsLoaded: r.stored,
    rowsRejected: r.quarantined,
    complaints: r.complaints,
    detail: `${r.seen} messages: ${r.stored} new, ${r.duplicates} already stored, ${r.quarantined} quarantined; ${r.complaints} complaints (${r.incidents} incidents)`,
  };
}

/** A drain that stopped: a login, folder or TLS problem is recorded as needing a person. */
function drainError(mailbox: MailboxConfig, r: { error?: string; needsPerson?: boolean; stored: number }): Error {
  // r.error already names the mailbox (the drain writes "mailbox NAME: …").
  const message = `${r.error} (${r.stored} new messages were stored before it stopped)`;
  return r.needsPerson ? new NeedsPersonError(message) : new Error(message);
}

async function drainBounceMailbox(context: JobContext, mailbox: MailboxConfig): Promise<JobResult> {
  const source = openMailboxSource(mailbox, { logger: context.logger });
  const r = await ingestBounces(context, source, { batchSize: batchSizeOf(mailbox) });
  if (r.error) throw drainError(mailbox, r);
  return {
    rowsIn: r.seen,
    rowsLoaded: r.stored,
    rowsRejected: r.quarantined,
    detail: `${r.seen} messages: ${r.stored} new, ${r.duplicates} already stored, ${r.quarantined} quarantined; ${r.evidence} block evidence, ${r.relistedCases.length} relisted cases`,
  };
}

async function checkBlocklists(context: JobContext): Promise<JobResult> {
  const r = await runBlocklistCheck(context);
  const listed = r.results.filter((x) => x.listed).length;
  const errors = r.results.filter((x) => x.outcome === 'error').length;
  // Not one answer (resolver down or unreachable): the day was not checked. Failing lets the runner
  // retry it with backoff, where "succeeded with N errors" would have marked it done.
  if (r.results.length > 0 && errors === r.results.length) {
    throw new Error(`no blocklist lookup was answered (${errors} errors, e.g. ${r.results[0]!.error ?? 'no answer'}): check blocklists.resolver and the network`);
  }
  return {
    rowsIn: r.results.length,
    rowsLoaded: r.results.length - errors,
    rowsRejected: errors,
    detail:
      r.zones.length === 0
        ? 'no zones configured (blocklists.zones: []): nothing looked up'
        : `${r.results.length} lookups in ${r.zones.length} zones: ${listed} listed (${r.newListings} new), ${errors} lookup errors`,
  };
}

/** The weekly report of the ISO week in `period`, written to reports.outDir, and e-mailed if configured. */
async function runWeeklyReport(context: JobContext): Promise<JobResult> {
  const asOf = sundayOfIsoWeek(context.period);
  if (!asOf) throw new Error(`report period ${context.period} is not an ISO week (YYYY-Www)`);
  const { config } = context;
  const report = await buildWeeklyReport(context.database, config, asOf, context.clock.now());
  const written = await writeWeeklyReport(report, config.reports.outDir!, REPORT_FORMATS);
  const files = Object.values(written).filter((f): f is string => Boolean(f));
  let mailed = '';
  if (config.reports.email) {
    // A stop, or a lost job lock (another instance may be sending it now), while the report was built:
    // the files are written, the mail is left to the run that records the period.
    context.signal.throwIfAborted();
    const sent = await sendWeeklyReport(config.reports.email, report);
    mailed = `; e-mailed to ${sent.accepted.length} recipient(s)`;
  }
  return { rowsLoaded: files.length, detail: `wrote ${files.join(', ')}${mailed}` };
}
