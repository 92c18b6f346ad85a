import { createReadStream } from 'node:fs';
import type { Database } from '../../db/connection.js';
import type { Config, SndsFeedConfig } from '../../config/schema.js';
import type { Clock } from '../../lib/clock.js';
import { addDays, utcDay } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { redact, redactUrl } from '../../lib/redact.js';
import { NeedsPersonError } from '../../cli/exit-codes.js';
import { recomputeDays } from '../../transform/recompute.js';
import { fetchExport, FetchFailedError, realSleep, type FetchLike, type Sleep, type FetchedBody } from './fetch-export.js';
import { classifyResponse, NEW_LAYOUT_HINT } from './classify-response.js';
import { emptyResult, ingestLocalInput, redactedCopy, type InputResult } from './ingest-input.js';
import { finishDownload, storeRawDownload, type RawDownloadInfo, type SndsKind } from './raw-store.js';
import { cutOffLastLine } from './load-data-export.js';
import { normaliseIp } from './row-checks.js';
import { describeLinkExpiry, linkExpiry, linkFixAdvice, type LinkExpiry } from './link-expiry.js';
import { emptyDaysWarning } from './empty-days.js';
import { daysAffectedByStatus } from './load-status-export.js';

/**
 * The SNDS job for one configured feed (automated links): the CLI and the scheduler both call this.
 * Returns a per-feed result and never throws for bad rows, empty days or a failed download; it throws
 * SndsNeedsPersonError when the link is expired or broken, because only a person can fix that.
 */

export interface SndsJobContext {
  database: Database;
  config: Config;
  fetch: FetchLike;
  clock: Clock;
  logger: Logger;
  sleep?: Sleep;
}

export interface SndsFeedResult {
  feed: string;
  inputs: InputResult[];
  rowsLoaded: number;
  rowsReplaced: number;
  rowsRejected: number;
  /** Days whose rows this run loaded or replaced (sorted). */
  days: string[];
  warnings: string[];
  /** Downloads or inputs that failed for reasons other than a broken link. */
  failures: string[];
  link: LinkExpiry;
}

/** A source a person must fix. Carries what was done before it was found. */
export class SndsNeedsPersonError extends NeedsPersonError {
  constructor(message: string, readonly feed: string, readonly result: SndsFeedResult) {
    super(message);
    this.name = 'SndsNeedsPersonError';
  }
}

export interface IngestSndsFeedOptions extends SndsJobContext {
  feed: SndsFeedConfig;
  /** Days to fetch (YYYY-MM-DD); default: the last snds.refetchDays days before today (UTC). */
  days?: readonly string[];
  /** Skip recomputing ip_day facts (the caller recomputes once for several feeds). */
  skipRecompute?: boolean;
}

export async function ingestSndsFeed(options: IngestSndsFeedOptions): Promise<SndsFeedResult> {
  const { feed, config, clock, logger } = options;
  const today = utcDay(clock.now());
  const link = linkExpiry(feed, today, config.snds.linkLifetimeDays, config.snds.linkWarnDays);
  const result = newFeedResult(feed.name, link);
  const expiryNote = describeLinkExpiry(feed.name, link);
  if (link.state === 'expired') throw new SndsNeedsPersonError(expiryNote!, feed.name, result);
  if (link.state === 'warn') result.warnings.push(expiryNote!);
  if (!feed.dataUrl && !feed.statusUrl) {
    result.failures.push(`SNDS feed "${feed.name}" has neither dataUrl nor statusUrl`);
    return result;
  }

  const days = options.days ?? refetchDays(today, config.snds.refetchDays);
  const broken = (reason: string) =>
    new SndsNeedsPersonError(
      `SNDS feed "${feed.name}": ${reason}. The link ${link.expiresOn ? `${link.state === 'ok' || link.state === 'warn' ? 'should expire' : 'expired'} on ${link.expiresOn}` : 'has no linkCreatedOn, so its expiry date is unknown'}; ${linkFixAdvice(feed.name)}.`,
      feed.name,
      result,
    );

  if (feed.dataUrl) {
    if (usesDateParameter(feed)) {
      for (const day of days) {
        const url = withDateParameter(feed.dataUrl, day);
        const input = await fetchAndIngest(options, { source: 'url', kind: 'ip_data', feed: feed.name, location: url, requestedDay: day, timezone: feed.timezone }, 'link', broken);
        addInput(result, input);
      }
    } else {
      // A link that cannot be asked for a day answers with what the portal has: one request per run.
      // Asking it once per re-fetched day would fetch the same bytes again and file them under days
      // they need not belong to (an empty answer would count as several empty days at once).
      const input = await fetchAndIngest(options, { source: 'url', kind: 'ip_data', feed: feed.name, location: feed.dataUrl, requestedDay: null, timezone: feed.timezone }, 'link', broken);
      addInput(result, input);
    }
  }
  if (feed.statusUrl) {
    const input = await fetchAndIngest(options, { source: 'url', kind: 'ip_status', feed: feed.name, location: feed.statusUrl, requestedDay: null, timezone: feed.timezone }, 'link', broken);
    addInput(result, input);
  }
  const quiet = await emptyDaysWarning(options.database, feed.name);
  if (quiet) result.warnings.push(quiet);
  noteFutureDays(result, today);
  if (!options.skipRecompute) await recompute(options, result);
  for (const warning of result.warnings) logger.warn({ feed: feed.name }, warning);
  return result;
}

/** The last `n` days before today, oldest first (SNDS publishes a day or two late and revises). */
export function refetchDays(today: string, n: number): string[] {
  const count = Math.max(1, n);
  return Array.from({ length: count }, (_, i) => addDays(today, i - count));
}

/** The hosts of the legacy automated links (deprecated by Microsoft on 22 June 2026), which take `date=MMDDYY`. */
const LEGACY_LINK_HOSTS = /^(sendersupport\.olc\.protection\.outlook\.com|postmaster\.live\.com)$/i;
/** The host of the new portal's links, for which a date parameter is unverified. */
const NEW_PORTAL_HOSTS = /^substrate\.office\.com$/i;

/**
 * Whether a feed's IP Data link is asked for each day with `date=MMDDYY`. The parameter is known from
 * the legacy links only, and even there it is "likely, unverified". A feed may say so itself with
 * `dateParameter: true|false`; otherwise legacy links (their hosts, or a `/snds/data.aspx` path) get
 * it, and the new portal's links (substrate.office.com) and any other host do not.
 */
export function usesDateParameter(feed: Pick<SndsFeedConfig, 'dataUrl' | 'dateParameter'>): boolean {
  if (typeof feed.dateParameter === 'boolean') return feed.dateParameter;
  if (!feed.dataUrl) return false;
  let url: URL;
  try {
    url = new URL(feed.dataUrl);
  } catch {
    return false;
  }
  if (LEGACY_LINK_HOSTS.test(url.hostname) || /\/snds\/data\.aspx$/i.test(url.pathname)) return true;
  if (NEW_PORTAL_HOSTS.test(url.hostname)) return false;
  return DATE_PARAMETER_FOR_OTHER_HOSTS;
}

/** Hosts that are neither legacy nor the new portal (a proxy, a test server): no `date=` unless the
 * feed's `dateParameter` asks for it. */
const DATE_PARAMETER_FOR_OTHER_HOSTS = false;

/** Legacy links take the day as `date=MMDDYY`; a portal that ignores it returns the latest day, which
 * the raw store then recognises as content it already has. */
export function withDateParameter(url: string, day: string): string {
  // Appended to the query as written: re-encoding it (URLSearchParams) would send the key in another
  // form than the one configured, and one the redaction would have to know about.
  const date = `date=${day.slice(5, 7)}${day.slice(8, 10)}${day.slice(2, 4)}`;
  const hash = url.indexOf('#');
  const base = hash === -1 ? url : url.slice(0, hash);
  const withoutDate = base.replace(/([?&])date=[^&]*(&|$)/i, (_, lead: string, tail: string) => (tail ? lead : '')).replace(/[?&]$/, '');
  return `${withoutDate}${withoutDate.includes('?') ? '&' : '?'}${date}`;
}

export function newFeedResult(feed: string, link: LinkExpiry = { expiresOn: null, daysLeft: null, state: 'unknown' }): SndsFeedResult {
  return { feed, inputs: [], rowsLoaded: 0, rowsReplaced: 0, rowsRejected: 0, days: [], warnings: [], failures: [], link };
}

export function addInput(result: SndsFeedResult, input: InputResult): void {
  result.inputs.push(input);
  result.rowsLoaded += input.rowsLoaded;
  result.rowsReplaced += input.rowsReplaced;
  result.rowsRejected += input.rowsRejected;
  result.days = [...new Set([...result.days, ...input.days])].sort();
  if (input.outcome === 'failed' || input.outcome === 'fetch_failed') {
    result.failures.push(`${input.kind === 'ip_data' ? 'IP Data' : 'IP Status'} ${input.location}${input.requestedDay ? ` (${input.requestedDay})` : ''}: ${input.detail ?? input.outcome}`);
  } else if (input.rowsRejected > 0) {
    result.warnings.push(`${input.location}: ${input.detail}`);
  }
  result.warnings.push(...(input.warnings ?? []));
}

/**
 * A warning when a result loaded IP Data days after today (a day's margin for feeds in time zones ahead
 * of UTC): SNDS reports past days only, so such rows come from a wrong clock or a damaged export. They
 * are kept as loaded (nothing is dropped), and the default as-of of flags and drafts never goes past
 * today, so they cannot move every decision into the future.
 */
export function noteFutureDays(result: SndsFeedResult, today: string): void {
  const future = result.days.filter((day) => day > addDays(today, 1));
  if (future.length === 0) return;
  result.warnings.push(
    `IP Data for ${future.length} day(s) after today (${today}): ${future.slice(0, 5).join(', ')}${future.length > 5 ? ', …' : ''}; ` +
      'SNDS reports past days only: check the export and the clock of whatever produced it (flags and drafts ignore these days unless given --as-of)',
  );
}

/** An IP Status input that became the current list of its feed (an empty list too). */
export function changedStatusList(input: InputResult): boolean {
  return input.kind === 'ip_status' && (input.outcome === 'loaded' || input.outcome === 'empty');
}

/**
 * The days to recompute after an ingest: the IP Data days it loaded or replaced, and for every new IP
 * Status list the as-of dates it changes. The status load has noted those as pending already, in its
 * own transaction (recomputeDays would take them anyway); naming them here keeps the summary exact.
 */
export async function daysToRecompute(database: Pick<Database, 'query'>, results: readonly SndsFeedResult[]): Promise<string[]> {
  const days = new Set(results.flatMap((r) => r.days));
  for (const input of results.flatMap((r) => r.inputs)) {
    if (!changedStatusList(input) || input.downloadId === null) continue;
    for (const day of await daysAffectedByStatus(database, input.downloadId)) days.add(day);
  }
  return [...days].sort();
}

/** Recompute what the ingest changed, and any days still noted as pending from an earlier run that
 * stopped before its recompute (so even an ingest that loaded nothing new leaves nothing stale). */
export async function recompute(context: Pick<SndsJobContext, 'database' | 'config'>, result: SndsFeedResult): Promise<void> {
  try {
    await recomputeDays(context.database, context.config, await daysToRecompute(context.database, [result]));
  } catch (error) {
    result.failures.push(`recomputing facts and decisions${result.days.length ? ` for ${result.days.length} day(s)` : ''} failed: ${redact((error as Error).message)}`);
  }
}

/** The "mostly bad" outcome of a load (over half the lines were not SNDS rows), not an input failed
 * for another reason (a bad IP Status line, a cut-off body, a changed header). */
function isNotAnExport(input: InputResult): boolean {
  return input.outcome === 'failed' && input.notAnExport === true && input.downloadId !== null;
}

/**
 * Why a body that starts like an export (its first field is an IP address) ends inside a line, or
 * null: then it is a download cut short, retried, rather than an export with one bad last row. A
 * body that does not start like an export (an error page) is left to classifyResponse.
 */
export function cutOffBody(kind: SndsKind, head: Buffer, tail: Buffer): string | null {
  const first = head.toString('utf8').replace(/^\uFEFF/, '').split(/[,\r\n]/, 1)[0] ?? '';
  if (normaliseIp(first.replace(/^"|"$/g, '')) === null) return null;
  if (kind === 'ip_data') return cutOffLastLine(tail);
  if (tail.length === 0 || tail[tail.length - 1] === 0x0a || tail[tail.length - 1] === 0x0d) return null;
  const last = tail.subarray(tail.lastIndexOf(0x0a) + 1).toString('utf8');
  // First IP, last IP, blocked: a status line without its third field stopped early.
  return last.trim() !== '' && last.split(',').length < 3 ? `the body ends inside a line (${JSON.stringify(last.slice(0, 60))}, no line break after it)` : null;
}

/**
 * Download one export, store it as received, and load it; a broken link is stored (its page
 * redacted) and thrown as what `broken` makes of the reason. In link mode a body that is mostly not
 * SNDS rows is a broken link too.
 */
export async function fetchAndIngest(
  context: SndsJobContext,
  info: Omit<RawDownloadInfo, 'fetchedAt' | 'httpStatus' | 'contentType'> & { timezone: string },
  mode: 'link' | 'api',
  broken: (reason: string) => Error,
  headers?: Record<string, string>,
): Promise<InputResult> {
  const { config, logger } = context;
  let body: FetchedBody;
  try {
    body = await fetchExport(info.location, {
      fetch: context.fetch,
      sleep: context.sleep ?? realSleep,
      clock: context.clock,
      logger,
      connectTimeoutMs: config.snds.connectTimeoutMs,
      timeoutMs: config.snds.timeoutMs,
      retries: config.snds.retries,
      cutOff: (head, tail) => cutOffBody(info.kind, head, tail),
      ...(headers ? { headers } : {}),
    });
  } catch (error) {
    if (!(error instanceof FetchFailedError)) throw error;
    logger.error({ feed: info.feed, url: redactUrl(info.location), problem: error.message }, 'SNDS download failed');
    return emptyResult(info, 'fetch_failed', error.message);
  }
  try {
    const fetched = { ...info, httpStatus: body.status, contentType: body.contentType, fetchedAt: context.clock.now() };
    const meaning = classifyResponse(body, { mode, kind: info.kind });
    if (meaning.kind === 'broken' || meaning.kind === 'failed') {
      // Kept for diagnosis, with anything secret the page may echo (the key in a URL) redacted: the
      // same redacted copy a data body that echoes its key gets.
      const page = await redactedCopy(body.file);
      let stored;
      try {
        stored = await storeRawDownload(context.database, fetched, createReadStream(page.file));
      } finally {
        page.dispose();
      }
      await finishDownload(context.database, stored.id, meaning.kind === 'broken' ? 'link_broken' : 'failed', { detail: meaning.reason });
      if (meaning.kind === 'broken') throw broken(meaning.reason);
      return emptyResult(info, 'failed', meaning.reason, stored.id);
    }
    if (meaning.kind === 'no_data') {
      // Only a per-day IP Data request gets here (classifyResponse): an IP Status 404 is a failure, so
      // that the previous block list stays current.
      const stored = await storeRawDownload(context.database, fetched, []);
      await finishDownload(context.database, stored.id, 'empty', { detail: 'HTTP 404: no data for that day' });
      return emptyResult(info, 'no_data', 'no data for that day', stored.id);
    }
    const input = await ingestLocalInput(context.database, fetched, body.file, info.timezone);
    if (mode === 'link' && isNotAnExport(input)) {
      // A link whose body is mostly not SNDS rows (an error text in a format the head did not give away)
      // is a broken link: a person must refresh it. Files and the API keep it as a failed input (exit 1).
      await finishDownload(context.database, input.downloadId!, 'link_broken', { rowsLoaded: 0, rowsRejected: input.rowsRejected, detail: input.detail });
      throw broken(`the link answered with something that is not an SNDS export (${input.detail ?? 'most lines are not SNDS rows'}; ${NEW_LAYOUT_HINT})`);
    }
    return input;
  } finally {
    body.dispose();
  }
}
