import { pendingDays } from '../transform/recompute.js';
import type { Database } from '../db/connection.js';
import type { Config, MailboxConfig } from '../config/schema.js';
import { redactError } from '../lib/redact.js';
import { addDays, daysBetween, utcDay } from '../lib/clock.js';
import type { JobDefinition } from './types.js';
import { hasSucceeded, jobSummaries, type LedgerRun } from './ledger.js';

/** How far back `status` looks for the tick a job should have finished (covers weekly schedules). */
const STALE_LOOKBACK_MS = 32 * 86_400_000;
/** A scheduler whose heartbeat is older than this is presumed dead (it beats every 30 s). */
const HEARTBEAT_DEAD_MS = 120_000;

export interface JobStatus {
  job: string;
  kind: string;
  schedule: string;
  state: 'ok' | 'stale' | 'running' | 'not run yet';
  stale: boolean;
  lastSuccessAt: Date | null;
  lastSuccessPeriod: string | null;
  lastSuccessAgeSeconds: number | null;
  lastFailureAt: Date | null;
  lastFailurePeriod: string | null;
  lastFailureAgeSeconds: number | null;
  lastFailureDetail: string | null;
  runningSince: Date | null;
  runningOn: string | null;
  /** The period that should have succeeded by now (its tick is at least staleAfterMinutes old). */
  expectedPeriod: string | null;
  nextRunAt: Date | null;
}

export interface FeedStatus {
  feed: string;
  expiresOn: string | null;
  daysLeft: number | null;
  linkState: string;
  lastDataDay: string | null;
  /** Whole days between the last day with data and yesterday (SNDS publishes a day after). */
  daysWithoutData: number | null;
  /** Days of the last week (up to yesterday) without any row from this feed. */
  missingDays: string[];
  /** When the feed's link last answered like a broken link (and nothing has loaded since), and why. */
  brokenSince: Date | null;
  brokenDetail: string | null;
}

export interface MailboxStatus {
  mailbox: string;
  stream: 'jmrp' | 'bounces';
  kind: 'imap' | 'maildir' | 'mbox';
  /** Messages waiting (Maildir files, IMAP STATUS); null for mbox, which is read whole every run. */
  backlog: number | null;
  lastMessageAt: Date | null;
}

export interface SchedulerStatus {
  instance: string;
  startedAt: Date;
  heartbeatAt: Date;
  alive: boolean;
}

export interface StatusReport {
  now: Date;
  ok: boolean;
  /** Why `ok` is false: a stale job, an expired link. */
  problems: string[];
  /** Worth knowing, not failing: a link expiring soon, a job that failed and is being retried. */
  warnings: string[];
  jobs: JobStatus[];
  feeds: FeedStatus[];
  mailboxes: MailboxStatus[];
  schedulers: SchedulerStatus[];
  /** Days whose derived tables wait for a recompute (an ingest notes them and recomputes within a minute). */
  pendingRecompute: { days: number; oldest: Date | null };
}

/** Pending days older than this were left by a run that stopped before its recompute. */
const PENDING_RECOMPUTE_WARN_MS = 10 * 60_000;

export interface LinkState {
  feed: string;
  expiresOn: string | null;
  daysLeft: number | null;
  state: string;
}

/** What status asks other modules: SNDS link expiry, mailbox backlog (passed in by the job adapter). */
export interface StatusProbes {
  linkStates: (config: Config, today: string) => LinkState[];
  backlog?: (mailbox: MailboxConfig) => Promise<number | null>;
}

/** A mailbox that does not answer within this long shows no backlog rather than holding status up. */
const BACKLOG_TIMEOUT_MS = 10_000;

export async function collectStatus(
  database: Database,
  config: Config,
  jobs: readonly JobDefinition[],
  now: Date,
  probes: StatusProbes,
): Promise<StatusReport> {
  const { linkStates } = probes;
  const problems: string[] = [];
  const warnings: string[] = [];
  const summaries = await jobSummaries(database);
  const staleAfterMs = config.schedule.staleAfterMinutes * 60_000;
  const installedAt = await installedAtOf(database);

  const jobStatuses: JobStatus[] = [];
  for (const job of jobs) {
    const summary = summaries.get(job.name);
    const success = summary?.lastSuccess ?? null;
    const failure = summary?.lastFailure ?? null;
    const tick = job.schedule.previousTick(new Date(now.getTime() - staleAfterMs), STALE_LOOKBACK_MS);
    const expectedPeriod = tick ? job.periodOf(tick) : null;
    let stale = false;
    // A tick from before this database existed was owed by nobody: a new install (or the demo's home)
    // is not late for last Monday's report. Once a job has run, every tick counts.
    const owed = tick !== null && (summary !== undefined || installedAt === null || tick.getTime() >= installedAt.getTime());
    if (tick && expectedPeriod && owed) {
      // A drain (catchUp 'latest') that succeeded after the tick caught up: it takes everything waiting.
      // A job of 'every' period (an SNDS day, a report week) caught up when that period or a later one
      // succeeded (periods sort as text: 2026-11-28, 2026-W48); a success of an older one after the
      // tick (a catch-up run, a retry) says nothing about this one.
      const caughtUp =
        success !== null && (job.catchUp === 'latest' ? success.started_at.getTime() >= tick.getTime() : success.period >= expectedPeriod);
      stale = !caughtUp && !(await hasSucceeded(database, job.name, expectedPeriod));
    }
    const running = summary?.running ?? null;
    const state: JobStatus['state'] = stale ? 'stale' : running ? 'running' : success ? 'ok' : 'not run yet';
    if (stale) {
      problems.push(
        `${job.name}: period ${expectedPeriod} (due ${tick!.toISOString()}) has not succeeded` +
          (failure ? `; last failure ${failure.period}: ${failure.detail ?? 'no detail'}` : success ? '' : '; the job has never succeeded'),
      );
    } else if (failure && (!success || failure.started_at > success.started_at)) {
      warnings.push(`${job.name}: last run failed (${failure.period}): ${failure.detail ?? 'no detail'}`);
    }
    jobStatuses.push({
      job: job.name,
      kind: job.kind,
      schedule: `${job.schedule.expression} (${job.schedule.timezone})`,
      state,
      stale,
      lastSuccessAt: finishedAt(success),
      lastSuccessPeriod: success?.period ?? null,
      lastSuccessAgeSeconds: ageSeconds(now, finishedAt(success)),
      lastFailureAt: finishedAt(failure),
      lastFailurePeriod: failure?.period ?? null,
      lastFailureAgeSeconds: ageSeconds(now, finishedAt(failure)),
      lastFailureDetail: failure?.detail ?? null,
      runningSince: running?.started_at ?? null,
      runningOn: running?.instance ?? null,
      expectedPeriod,
      nextRunAt: job.schedule.nextTick(now),
    });
  }

  const today = utcDay(now);
  const feeds = await feedStatuses(database, config, today, linkStates);
  for (const feed of feeds) {
    if (feed.linkState === 'broken') {
      problems.push(
        `SNDS feed ${feed.feed}: its link answered like a broken link on ${feed.brokenSince!.toISOString()}${feed.brokenDetail ? ` (${feed.brokenDetail})` : ''}; ` +
          "refresh the link on the SNDS portal's Automated Data Access page, then update snds.feeds[].linkCreatedOn",
      );
    } else if (feed.linkState === 'expired') {
      problems.push(`SNDS feed ${feed.feed}: the automated-access link expired on ${feed.expiresOn}; refresh it on the SNDS portal's Automated Data Access page, then update snds.feeds[].linkCreatedOn`);
    } else if (feed.daysLeft !== null && feed.daysLeft <= config.snds.linkWarnDays) {
      warnings.push(`SNDS feed ${feed.feed}: the link expires on ${feed.expiresOn} (${feed.daysLeft} days left); refresh it on the SNDS portal and update linkCreatedOn`);
    }
    if (feed.daysWithoutData !== null && feed.daysWithoutData >= 3) warnings.push(`SNDS feed ${feed.feed}: no data for ${feed.daysWithoutData} days (last day ${feed.lastDataDay})`);
  }

  const pendingRecompute = await pendingDays(database);
  if (pendingRecompute.oldest && now.getTime() - pendingRecompute.oldest.getTime() > PENDING_RECOMPUTE_WARN_MS) {
    warnings.push(
      `${pendingRecompute.days} day(s) of data wait for a recompute since ${pendingRecompute.oldest.toISOString()} (a run stopped before recomputing): ` +
        'the next ingest does it, or run `repwatch transform --pending`',
    );
  }

  return {
    now,
    ok: problems.length === 0,
    problems,
    warnings,
    jobs: jobStatuses,
    feeds,
    mailboxes: await mailboxStatuses(database, config, probes.backlog, warnings),
    schedulers: await schedulerStatuses(database, now),
    pendingRecompute,
  };
}

/** When the first migration ran here: the database's birth, as far as repwatch knows. */
async function installedAtOf(database: Database): Promise<Date | null> {
  const rows = await database.query<{ at: Date | null }>('select min(applied_at) as at from repwatch.schema_migration');
  return rows[0]?.at ?? null;
}

async function feedStatuses(database: Database, config: Config, today: string, linkStates: (config: Config, today: string) => LinkState[]): Promise<FeedStatus[]> {
  const yesterday = addDays(today, -1);
  const weekStart = addDays(today, -7);
  const last = await database.query<{ feed: string; last_day: string }>('select feed, max(day) as last_day from repwatch.snds_row group by feed');
  const recent = await database.query<{ feed: string; day: string }>('select distinct feed, day from repwatch.snds_row where day >= $1', [weekStart]);
  const lastByFeed = new Map(last.map((r) => [r.feed, r.last_day]));
  const links = new Map(linkStates(config, today).map((l) => [l.feed, l]));
  // The feed's latest link download: a broken link shows here before its expiry date says so.
  const latest = await database.query<{ feed: string; outcome: string; fetched_at: Date; detail: string | null }>(
    `select distinct on (feed) feed, outcome, fetched_at, detail from repwatch.raw_download
      where source = 'url' and outcome <> 'duplicate' order by feed, fetched_at desc, id desc`,
  );
  const latestByFeed = new Map(latest.map((r) => [r.feed, r]));
  return config.snds.feeds.map((feed) => {
    const link = links.get(feed.name);
    const fetched = latestByFeed.get(feed.name);
    const broken = fetched?.outcome === 'link_broken' ? fetched : null;
    const lastDataDay = lastByFeed.get(feed.name) ?? null;
    const present = new Set(recent.filter((r) => r.feed === feed.name).map((r) => r.day));
    const missingDays: string[] = [];
    for (let day = weekStart; day <= yesterday; day = addDays(day, 1)) if (!present.has(day)) missingDays.push(day);
    return {
      feed: feed.name,
      expiresOn: link?.expiresOn ?? null,
      daysLeft: link?.daysLeft ?? null,
      linkState: broken && link?.state !== 'expired' ? 'broken' : (link?.state ?? 'unknown'),
      lastDataDay,
      daysWithoutData: lastDataDay ? Math.max(0, daysBetween(lastDataDay, yesterday)) : null,
      missingDays,
      brokenSince: broken?.fetched_at ?? null,
      brokenDetail: broken?.detail ?? null,
    };
  });
}

async function mailboxStatuses(
  database: Database,
  config: Config,
  backlog: StatusProbes['backlog'],
  warnings: string[],
): Promise<MailboxStatus[]> {
  const last = await database.query<{ stream: string; mailbox: string; last: Date }>(
    'select stream, mailbox, max(stored_at) as last from repwatch.mail_message group by stream, mailbox',
  );
  const lastOf = (stream: string, mailbox: string) => last.find((r) => r.stream === stream && r.mailbox === mailbox)?.last ?? null;
  const out: MailboxStatus[] = [];
  for (const [stream, mailboxes] of [
    ['jmrp', config.jmrp.mailboxes],
    ['bounces', config.bounces.mailboxes],
  ] as const) {
    for (const m of mailboxes) {
      let waiting: number | null = null;
      if (backlog) {
        try {
          waiting = await withTimeout(backlog(m), BACKLOG_TIMEOUT_MS);
        } catch (error) {
          warnings.push(`mailbox ${m.name}: could not count its backlog: ${redactError(error)}`);
        }
      }
      out.push({
        mailbox: m.name,
        stream,
        kind: m.imap ? 'imap' : m.maildir ? 'maildir' : 'mbox',
        backlog: waiting,
        lastMessageAt: lastOf(stream, m.name),
      });
    }
  }
  return out;
}

/** The promise's value, or an error when it takes longer than `ms` (the promise itself goes on). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms))),
  ]);
}

async function schedulerStatuses(database: Database, now: Date): Promise<SchedulerStatus[]> {
  const rows = await database.query<{ instance: string; started_at: Date; heartbeat_at: Date }>(
    'select instance, started_at, heartbeat_at from repwatch.scheduler_instance order by started_at',
  );
  return rows.map((r) => ({
    instance: r.instance,
    startedAt: r.started_at,
    heartbeatAt: r.heartbeat_at,
    alive: now.getTime() - r.heartbeat_at.getTime() < HEARTBEAT_DEAD_MS,
  }));
}

/** Complaint incidents on the last `days` days up to today (UTC), from the BI view. */
export async function complaintsLastDays(database: Database, now: Date, days: number): Promise<number> {
  const [row] = await database.query<{ n: number | null }>('select sum(incidents)::bigint as n from analytics.complaint where day > $1', [
    addDays(utcDay(now), -days),
  ]);
  return row?.n ?? 0;
}

function finishedAt(run: LedgerRun | null): Date | null {
  return run ? (run.finished_at ?? run.started_at) : null;
}

function ageSeconds(now: Date, at: Date | null): number | null {
  return at ? Math.max(0, Math.round((now.getTime() - at.getTime()) / 1000)) : null;
}
