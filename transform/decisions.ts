import { API_FEED } from '../ingest/snds/api-feed.js';
import type { Config } from '../config/schema.js';
import type { Database, Session } from '../db/connection.js';
import { addDays, daysBetween, isDay } from '../lib/clock.js';
import { decide, urgency, type DecisionStatus, type DecisionThresholds } from './decide.js';

/**
 * Decisions for one as-of date D: SQL sums the window W (the windowDays days ending with D) for every
 * IP at once, `decide` applies the rules, and the result replaces D's rows in repwatch.ip_flag.
 *
 * The IPs decided are those with SNDS rows or complaints in the 28 days ending with D, plus those with
 * block evidence in W (an IP that bounces with a block code is worth listing even without SNDS data).
 */

/**
 * Start of every transaction that writes facts or decisions. The advisory lock (re-entrant within a
 * transaction) makes an ingest's recompute, `flags` and a report computing the same date wait for
 * each other instead of colliding on primary keys. For this transaction only: JIT compiling these
 * statements cost seconds and saved nothing (measured: 6.8 s of JIT for 0.1 s of work); and facts
 * and decisions are derived data a recompute rebuilds, so the commit need not wait for its WAL flush.
 */
export async function beginRecompute(session: Pick<Session, 'query'>): Promise<void> {
  await session.query(
    `select pg_advisory_xact_lock(hashtext('repwatch.recompute')), set_config('jit', 'off', true), set_config('synchronous_commit', 'off', true)`,
  );
}

/** How far back an IP's data keeps it in the decisions (as no_data once it leaves the window). */
export const POPULATION_DAYS = 28;

export interface Decision {
  asOf: string;
  ip: string;
  status: DecisionStatus;
  reasons: string[];
  recipients7d: number;
  complaints7d: number;
  /** complaints7d / recipients7d; null when recipients7d is 0. */
  complaintRate7d: number | null;
  trapHits7d: number;
  redDays7d: number;
  yellowDays7d: number;
  blocked: boolean;
  /** The route to start with (first of `routes`); null when not blocked. */
  route: string | null;
  /** Every delisting route that applies, in the order outlook_form, office365_portal, delist_email. */
  routes: string[];
}

/** The keys of `repwatch flags --format json|csv`, in this order (fixed by issue 5). */
export const FLAG_KEYS = [
  'ip', 'status', 'reasons', 'recipients7d', 'complaints7d', 'complaintRate7d', 'trapHits7d',
  'redDays7d', 'yellowDays7d', 'blocked', 'route',
] as const;
export type FlagRecord = Pick<Decision, (typeof FLAG_KEYS)[number]>;

export function toFlagRecord(d: Decision): FlagRecord {
  return {
    ip: d.ip, status: d.status, reasons: d.reasons, recipients7d: d.recipients7d, complaints7d: d.complaints7d,
    complaintRate7d: d.complaintRate7d, trapHits7d: d.trapHits7d, redDays7d: d.redDays7d, yellowDays7d: d.yellowDays7d,
    blocked: d.blocked, route: d.route,
  };
}

interface SumsRow {
  ip: string;
  has_data: boolean;
  recipients: number;
  complaints: number;
  trap_hits: number;
  red_days: number;
  yellow_days: number;
  status_blocked: boolean;
  evidence_blocked: boolean;
  routes: string[];
  warnings: string[];
}

/** Per feed, the latest IP Status download made on or before D ($1): as
 * repwatch.current_status_download, cut at D (a duplicate download repeats the ranges of the one it
 * duplicates, with its own fetch time). */
const STATUS_DOWNLOADS_SQL = `
  select distinct on (feed) coalesce(duplicate_of, id) as id
  from repwatch.raw_download
  where kind = 'ip_status' and outcome in ('loaded', 'empty', 'duplicate')
    and fetched_at < ($1::date + 1)::timestamp at time zone 'UTC'
  order by feed, fetched_at desc, id desc`;

/** The Details texts of the blocked ranges holding each of these IPs ($2), in the lists of D ($1).
 * Asked only for the IPs the sweep found blocked: a handful, where the sweep covers every IP. */
const STATUS_DETAILS_SQL = `
select host(p.ip) as ip, array_agg(distinct r.details) filter (where r.details is not null) as details
from unnest($2::inet[]) as p(ip)
join repwatch.snds_status_range r on r.blocked and p.ip between r.first_ip and r.last_ip
where r.download_id in (${STATUS_DOWNLOADS_SQL})
group by p.ip`;

/** Of these IPs, those the IP Status lists in force on D (per feed, the latest download made on or
 * before D) show blocked: a block known from bounces alone is not among them. */
export async function blockedByStatusAsOf(database: Pick<Database, 'query'>, ips: readonly string[], asOf: string): Promise<Set<string>> {
  if (ips.length === 0) return new Set();
  const rows = await database.query<{ ip: string }>(
    `select distinct host(p.ip) as ip from unnest($2::inet[]) as p(ip)
     join repwatch.snds_status_range r on r.blocked and p.ip between r.first_ip and r.last_ip
     where r.download_id in (${STATUS_DOWNLOADS_SQL})`,
    [asOf, ips],
  );
  return new Set(rows.map((r) => r.ip));
}

/**
 * One set-based query: the window's sums for every IP of the population. $1 = D, $2 = windowDays.
 * "Blocked by IP Status" uses, per feed, the latest IP Status download made on or before D (UTC),
 * so a decision for a past date sees the block list as it was then.
 */
const WINDOW_SUMS_SQL = `
with fact as (
  -- One pass over the 28 days: the window's sums, and every IP seen in the 28 days (those without
  -- data in W are decided too, as no_data, so an IP that went quiet stays visible).
  select f.ip,
    bool_or(f.day > $1::date - $2::int) as has_data,
    coalesce(sum(f.message_recipients) filter (where f.day > $1::date - $2::int), 0) as recipients,
    coalesce(sum(f.complaints) filter (where f.day > $1::date - $2::int), 0) as complaints,
    coalesce(sum(f.trap_hits) filter (where f.day > $1::date - $2::int), 0) as trap_hits,
    count(*) filter (where f.has_red and f.day > $1::date - $2::int) as red_days,
    count(*) filter (where f.has_yellow and f.day > $1::date - $2::int) as yellow_days
  from repwatch.ip_day_fact f
  where f.day >= $1::date - ${POPULATION_DAYS - 1} and f.day <= $1::date and (f.has_snds or f.complaints > 0)
  group by f.ip
),
evidence as (
  select ip,
    bool_or(kind = 'block') as blocked,
    -- Repeats are removed (and the order fixed) by decide().
    coalesce(array_agg(route) filter (where kind = 'block' and route is not null and route <> ''), '{}') as routes,
    coalesce(array_agg(coalesce(nullif(reason, ''), 'warning')) filter (where kind = 'warning'), '{}') as warnings
  from repwatch.block_evidence
  where day > $1::date - $2::int and day <= $1::date
  group by ip
),
status_download as (${STATUS_DOWNLOADS_SQL}),
point as (
  select coalesce(f.ip, e.ip) as ip, true as is_ip, null::inet as last_ip,
    coalesce(f.has_data, false) as has_data, coalesce(f.recipients, 0) as recipients, coalesce(f.complaints, 0) as complaints,
    coalesce(f.trap_hits, 0) as trap_hits, coalesce(f.red_days, 0) as red_days, coalesce(f.yellow_days, 0) as yellow_days,
    coalesce(e.blocked, false) as evidence_blocked, coalesce(e.routes, '{}') as routes, coalesce(e.warnings, '{}') as warnings
  from fact f
  full join evidence e on e.ip = f.ip
  union all
  select r.first_ip, false, r.last_ip, null, null, null, null, null, null, null, null, null
  from repwatch.snds_status_range r
  where r.blocked and r.download_id in (select id from status_download)
),
swept as (
  -- An IP is in a blocked range iff the largest last_ip of the ranges starting at or before it
  -- reaches it (overlapping ranges included). One sort of IPs and range starts, instead of testing
  -- every IP against every range; a range sorts before an IP equal to its first_ip.
  select p.*, max(p.last_ip) over (order by p.ip, p.is_ip rows between unbounded preceding and current row) as reach
  from point p
)
select host(s.ip) as ip, s.has_data, s.recipients, s.complaints, s.trap_hits, s.red_days, s.yellow_days,
  coalesce(s.reach >= s.ip, false) as status_blocked, s.evidence_blocked, s.routes, s.warnings
from swept s
where s.is_ip
order by s.ip -- inet order (a bare "ip" would sort the text column)`;

/**
 * The version of the rules in transform/decide.ts, stored with each decision (migration 0014). Raise it
 * when a change to the rules can change a stored decision, and add a migration that notes the dates
 * stored under the older version as pending (as 0015 does), so the next recompute brings the BI history
 * up to date. Until then, the report and `delist draft` recompute such a date before using it.
 * 2: complaints_without_volume.
 */
export const DECISION_RULES_VERSION = 2;

/** The columns COPY writes for each decision (see csvLine). complaint_rate_7d is not among them: see STORED_RATE. */
const STORE_COLUMNS = [
  'as_of', 'ip', 'status', 'reasons', 'recipients_7d', 'complaints_7d', 'trap_hits_7d',
  'red_days_7d', 'yellow_days_7d', 'blocked', 'route', 'routes', 'window_days', 'complaint_rate_warn', 'complaint_rate_max', 'rules_version',
] as const;

/**
 * The stored rate is PostgreSQL's numeric division, the same expression as analytics.ip_trend's
 * complaint_rate_7d, not the JavaScript double the rules compared: the double differs from it around
 * the 17th digit, and a BI join or comparison of the two views' rates would silently miss.
 */
const STORED_RATE = (alias: string) =>
  `case when ${alias}.recipients_7d > 0 then ${alias}.complaints_7d::numeric / ${alias}.recipients_7d end`;

/** One CSV record for COPY (empty unquoted = NULL). Only arrays need quoting: every other value is
 * a date, an address, a number or one of our own identifiers. */
function csvLine(d: Decision, settings: DecisionSettings): string {
  const array = (values: string[]) => `"{${values.join(',')}}"`;
  return [
    d.asOf, d.ip, d.status, array(d.reasons), d.recipients7d, d.complaints7d, d.trapHits7d,
    d.redDays7d, d.yellowDays7d, d.blocked, d.route ?? '', array(d.routes), settings.windowDays, settings.complaintRateWarn, settings.complaintRateMax,
    DECISION_RULES_VERSION,
  ].join(',') + '\n';
}

export interface DecisionSettings extends DecisionThresholds {
  windowDays: number;
}

export function decisionSettings(config: Pick<Config, 'thresholds'>): DecisionSettings {
  const { complaintRateWarn, complaintRateMax, windowDays } = config.thresholds;
  return { complaintRateWarn, complaintRateMax, windowDays };
}

/** Compute and store the decisions for `asOf` inside an open transaction (used by recompute). */
export async function computeDecisionsIn(session: Pick<Session, 'query' | 'copyCsv'>, settings: DecisionSettings, asOf: string): Promise<Decision[]> {
  assertDay(asOf);
  await beginRecompute(session);
  const rows = await session.query<SumsRow>(WINDOW_SUMS_SQL, [asOf, settings.windowDays]);
  const blockedIps = rows.filter((r) => r.status_blocked).map((r) => r.ip);
  const details = new Map<string, string[]>();
  if (blockedIps.length > 0) {
    for (const row of await session.query<{ ip: string; details: string[] | null }>(STATUS_DETAILS_SQL, [asOf, blockedIps])) details.set(row.ip, row.details ?? []);
  }
  const decisions = rows.map((row): Decision => {
    const outcome = decide(
      {
        hasData: row.has_data,
        recipients: row.recipients,
        complaints: row.complaints,
        trapHits: row.trap_hits,
        redDays: row.red_days,
        yellowDays: row.yellow_days,
        statusBlocked: row.status_blocked,
        statusDetails: details.get(row.ip) ?? [],
        evidenceBlocked: row.evidence_blocked,
        blockRoutes: row.routes,
        warnings: row.warnings,
      },
      settings,
    );
    return {
      asOf,
      ip: row.ip,
      status: outcome.status,
      reasons: outcome.reasons,
      recipients7d: row.recipients,
      complaints7d: row.complaints,
      complaintRate7d: outcome.complaintRate,
      trapHits7d: row.trap_hits,
      redDays7d: row.red_days,
      yellowDays7d: row.yellow_days,
      blocked: outcome.blocked,
      route: outcome.route,
      routes: outcome.routes,
    };
  });
  await storeDecisions(session, asOf, decisions.map((d) => csvLine(d, settings)));
  return sortByUrgency(decisions);
}

/**
 * Compute the decisions for `asOf` from the current facts, evidence and block lists, store them
 * (replacing that date's rows in repwatch.ip_flag) and return them, most urgent first.
 */
export async function computeDecisions(database: Database, config: Pick<Config, 'thresholds'>, asOf: string): Promise<Decision[]> {
  return database.transaction((session) => computeDecisionsIn(session, decisionSettings(config), asOf));
}

interface FlagRow {
  ip: string;
  status: DecisionStatus;
  reasons: string[];
  recipients_7d: number;
  complaints_7d: number;
  trap_hits_7d: number;
  red_days_7d: number;
  yellow_days_7d: number;
  blocked: boolean;
  route: string | null;
  routes: string[];
}

/**
 * Whether decisions are stored for `asOf`, and whether all of them were made with these settings
 * (window and complaint-rate thresholds). Decisions stored before their thresholds were recorded
 * (migration 0010) count as made with other settings.
 */
async function storedDecisionSettings(database: Pick<Database, 'query'>, asOf: string, settings: DecisionSettings): Promise<'none' | 'current' | 'other'> {
  assertDay(asOf);
  const rows = await database.query<{ window_days: number; warn: number | null; max: number | null; rules: number | null }>(
    `select distinct window_days, complaint_rate_warn as warn, complaint_rate_max as max, rules_version as rules from repwatch.ip_flag where as_of = $1::date`,
    [asOf],
  );
  if (rows.length === 0) return 'none';
  const same = rows.every(
    (r) => r.window_days === settings.windowDays && r.warn === settings.complaintRateWarn && r.max === settings.complaintRateMax && r.rules === DECISION_RULES_VERSION,
  );
  return same ? 'current' : 'other';
}

/**
 * Make the stored decisions for `asOf` those of this config: computed and stored when none are stored
 * or they were made with other thresholds. Returns what was stored before ('current': left as is).
 */
export async function ensureCurrentDecisions(database: Database, config: Pick<Config, 'thresholds'>, asOf: string): Promise<'none' | 'current' | 'other'> {
  const stored = await storedDecisionSettings(database, asOf, decisionSettings(config));
  if (stored !== 'current') await computeDecisions(database, config, asOf);
  return stored;
}

/** The stored decisions for `asOf` (empty when none were computed for that date), most urgent first. */
export async function loadDecisions(database: Pick<Database, 'query'>, asOf: string): Promise<Decision[]> {
  assertDay(asOf);
  const rows = await database.query<FlagRow>(
    `select host(ip) as ip, status, reasons, recipients_7d, complaints_7d, trap_hits_7d, red_days_7d, yellow_days_7d,
            blocked, route, routes
     from repwatch.ip_flag g where g.as_of = $1::date order by g.ip`,
    [asOf],
  );
  return sortByUrgency(
    rows.map((r) => ({
      asOf,
      ip: r.ip,
      status: r.status,
      reasons: r.reasons,
      recipients7d: r.recipients_7d,
      complaints7d: r.complaints_7d,
      // From the integer sums, as `decide` computed it (the stored numeric is for BI tools).
      complaintRate7d: r.recipients_7d > 0 ? r.complaints_7d / r.recipients_7d : null,
      trapHits7d: r.trap_hits_7d,
      redDays7d: r.red_days_7d,
      yellowDays7d: r.yellow_days_7d,
      blocked: r.blocked,
      route: r.route,
      routes: r.routes,
    })),
  );
}

/** The latest day with SNDS data up to `notAfter`, or null when there is none. */
export async function latestSndsDay(database: Pick<Database, 'query'>, notAfter: string): Promise<string | null> {
  // Never after today: one row dated in the future (a wrong clock, a damaged export) would otherwise
  // move every default decision to a window with no data in it.
  const rows = await database.query<{ day: string | null }>(
    `select greatest((select max(day) from repwatch.ip_day_fact where has_snds and day <= $1::date),
                     (select max(day) from repwatch.snds_row where day <= $1::date)) as day`,
    [notAfter],
  );
  return rows[0]?.day ?? null;
}

/**
 * The decision date of `flags`, `delist draft` and the demo when none is given: the latest day with
 * SNDS data, or the day of the newest IP Status download when that is later and the SNDS data still
 * reaches its window. SNDS data arrives a day or two late while the block list is fetched today, and
 * a block list counts only from the day it was downloaded: deciding as of the SNDS day would show
 * every IP blocked since then as not blocked. The days of that window without SNDS data count as
 * clean; callers say so (sndsWindowCoverage). Never after today; null without SNDS data.
 */
export async function defaultDecisionDate(database: Pick<Database, 'query'>, today: string, windowDays: number): Promise<string | null> {
  return (await decisionDates(database, today, windowDays)).asOf;
}

/** defaultDecisionDate with the two days it is chosen from, for callers that also say which they used. */
export async function decisionDates(
  database: Pick<Database, 'query'>,
  today: string,
  windowDays: number,
): Promise<{ asOf: string | null; sndsDay: string | null; statusDay: string | null }> {
  const [sndsDay, statusDay] = await Promise.all([latestSndsDay(database, today), latestStatusDownloadDay(database)]);
  const useStatus = sndsDay !== null && statusDay !== null && statusDay > sndsDay && statusDay <= today && daysBetween(sndsDay, statusDay) < windowDays;
  return { asOf: useStatus ? statusDay : sndsDay, sndsDay, statusDay };
}

/** How complete the SNDS data of a decision window is (sndsWindowCoverage). */
export interface WindowCoverage {
  /** Days of the window that have data from every feed that reports (and from at least one). */
  covered: number;
  /** The window's first day. */
  from: string;
  /** The latest day up to `asOf` that every reporting feed has reached: the date to decide on full data. */
  latest: string | null;
  /** Per feed, the window's days it has no data for while another feed has them (a reporting feed only). */
  feedGaps: { feed: string; days: string[] }[];
  /** The window's days with data from at least one feed. */
  daysWithData: string[];
}

/**
 * How complete the SNDS IP Data of the window ending `asOf` is, feed by feed (snds_feed_day lists the
 * days each feed holds, so no scan of the rows). Decisions count a day without data as clean: right for
 * an IP that sent nothing, wrong for a day not reported or loaded yet. With several feeds (accounts), a
 * day one of them has not delivered is missing for that feed's IPs even when another feed has it. A
 * feed reports when it has data in the 28 days up to `asOf`; its days before its first one are not
 * missing (it did not exist yet).
 */
export async function sndsWindowCoverage(
  database: Pick<Database, 'query'>,
  asOf: string,
  windowDays: number,
  configuredFeeds: readonly string[] = [],
): Promise<WindowCoverage> {
  const { from } = decisionWindow(asOf, windowDays);
  // A day a feed's download for that day answered "no data" (no IP reached SNDS's ~100 messages) was
  // delivered; an empty answer of a link without a day says nothing about which day. Every feed's days
  // are data; with feeds configured, only they are expected (a retired feed or a backfill under its own
  // name is not missing anything). The window's days come from an integer series: a date series goes
  // through timestamptz and loses a day where the session's zone has DST at midnight.
  const days = await database.query<{ feed: string; day: string; expected: boolean; present: boolean; last_day: string }>(
    `with delivered as (
       select feed, day from repwatch.snds_feed_day where day <= $2::date
       union
       select feed, requested_day from repwatch.raw_download
        where kind = 'ip_data' and outcome = 'empty' and requested_day is not null and requested_day <= $2::date
     ),
     feeds as (
       select feed, min(day) as first_day, max(day) as last_day, (cardinality($3::text[]) = 0 or feed = any($3::text[])) as expected
       from delivered group by feed having max(day) > $2::date - 28
     ),
     window_day as (select $1::date + i as day from generate_series(0, $2::date - $1::date) as i)
     select f.feed, to_char(w.day, 'YYYY-MM-DD') as day, f.expected, to_char(f.last_day, 'YYYY-MM-DD') as last_day,
            exists (select 1 from delivered x where x.feed = f.feed and x.day = w.day) as present
     from feeds f cross join window_day w
     where w.day >= f.first_day
     order by f.feed, w.day`,
    [from, asOf, [...configuredFeeds]],
  );
  const expectedLast = days.filter((d) => d.expected).map((d) => d.last_day).sort();
  const present = new Set(days.filter((d) => d.present).map((d) => d.day));
  const gaps = new Map<string, string[]>();
  // A day no feed has is missing for everyone and counted so; a gap worth naming is one another feed hides.
  // A day an unexpected feed delivered (a backfill loaded from files under its own name) fills the gap.
  const backfilled = new Set(days.filter((d) => !d.expected && d.present).map((d) => d.day));
  for (const d of days) {
    if (d.expected && !d.present && present.has(d.day) && !backfilled.has(d.day)) gaps.set(d.feed, [...(gaps.get(d.feed) ?? []), d.day]);
  }
  const feedGaps = [...gaps].map(([feed, feedDays]) => ({ feed, days: feedDays }));
  const daysWithData = [...present].sort();
  return {
    covered: coveredDays(daysWithData, feedGaps),
    from,
    // The latest day every expected feed has reached (one it reached before the window counts too).
    latest: expectedLast[0] ?? (await latestSndsDay(database, asOf)),
    feedGaps,
    daysWithData,
  };
}

/** Days with data that no named gap takes away. */
function coveredDays(daysWithData: readonly string[], feedGaps: WindowCoverage['feedGaps']): number {
  const missing = new Set(feedGaps.flatMap((g) => g.days));
  return daysWithData.filter((day) => !missing.has(day)).length;
}

/**
 * The coverage as one IP's decision sees it: only the gaps of the feeds that report that IP (in the 28
 * days up to the window's end) matter to it; an IP no feed reports sees every gap.
 */
export function coverageForFeeds(coverage: WindowCoverage, feeds: readonly string[]): WindowCoverage {
  const feedGaps = feeds.length === 0 ? coverage.feedGaps : coverage.feedGaps.filter((g) => feeds.includes(g.feed));
  return { ...coverage, covered: coveredDays(coverage.daysWithData, feedGaps), feedGaps };
}

/** The SNDS feeds the configuration fetches (links, and the API's): the ones expected every day. */
export function configuredSndsFeeds(config: Pick<Config, 'snds'>): string[] {
  return [...config.snds.feeds.map((f) => f.name), ...(config.snds.api ? [API_FEED] : [])];
}

/** "feed second has no data for 2026-11-20", for notes that name what is missing. */
export function feedGapText(gaps: WindowCoverage['feedGaps']): string {
  return gaps.map((g) => `feed ${g.feed} has no data for ${g.days.length > 3 ? `${g.days.length} days (${g.days[0]} … ${g.days.at(-1)})` : g.days.join(', ')}`).join('; ');
}

/** The window W of an as-of date: its first and last day. */
export function decisionWindow(asOf: string, windowDays: number): { from: string; to: string } {
  return { from: addDays(asOf, -(windowDays - 1)), to: asOf };
}

/** Most urgent first; IP order (as SQL sorted them) within a status. */
function sortByUrgency(decisions: Decision[]): Decision[] {
  return decisions
    .map((d, index) => ({ d, index }))
    .sort((a, b) => urgency(a.d.status) - urgency(b.d.status) || a.index - b.index)
    .map(({ d }) => d);
}

/**
 * Make D's rows in repwatch.ip_flag equal to `lines`, writing only what changed. Every ingest
 * recomputes the recent dates and most decisions come out the same: rewriting all of them would
 * leave thousands of dead rows (and index entries) per run, which slows every later write and read.
 * The new rows go to a session temp table by COPY (no WAL, no index); `computed_at` is thereby when
 * the decision last changed.
 */
async function storeDecisions(session: Pick<Session, 'query' | 'copyCsv'>, asOf: string, lines: string[]): Promise<void> {
  await session.query(
    `create temp table if not exists decision_stage (like repwatch.ip_flag including defaults) on commit delete rows`,
  );
  await session.query('truncate decision_stage'); // a rebuild stores many dates in one transaction
  if (lines.length > 0) await session.copyCsv('decision_stage', STORE_COLUMNS, chunks(lines));
  await session.query(
    `delete from repwatch.ip_flag g
     where g.as_of = $1::date
       and not exists (
         select 1 from decision_stage s
         where s.ip = g.ip and s.status = g.status and s.reasons = g.reasons and s.recipients_7d = g.recipients_7d
           and s.complaints_7d = g.complaints_7d and ${STORED_RATE('s')} is not distinct from g.complaint_rate_7d
           and s.trap_hits_7d = g.trap_hits_7d and s.red_days_7d = g.red_days_7d and s.yellow_days_7d = g.yellow_days_7d
           and s.blocked = g.blocked and s.route is not distinct from g.route and s.routes = g.routes
           and s.window_days = g.window_days and s.complaint_rate_warn is not distinct from g.complaint_rate_warn
           and s.complaint_rate_max is not distinct from g.complaint_rate_max and s.rules_version is not distinct from g.rules_version)`,
    [asOf],
  );
  await session.query(
    `insert into repwatch.ip_flag (${STORE_COLUMNS.join(', ')}, complaint_rate_7d)
     select ${STORE_COLUMNS.map((c) => `s.${c}`).join(', ')}, ${STORED_RATE('s')}
     from decision_stage s
     where not exists (select 1 from repwatch.ip_flag g where g.as_of = $1::date and g.ip = s.ip)`,
    [asOf],
  );
}

/** CSV records in chunks of whole records (what copyCsv expects), about 1 MB each. */
async function* chunks(lines: string[]): AsyncIterable<string> {
  for (let i = 0; i < lines.length; i += 10_000) yield lines.slice(i, i + 10_000).join('');
}

function assertDay(day: string): void {
  if (!isDay(day)) throw new Error(`not a date as YYYY-MM-DD: ${JSON.stringify(day)}`);
}

/** The UTC day of the newest IP Status download that loaded, or null: `flags` warns when it is newer
 * than the as-of date (SNDS data lags a day or two, so the newest block list is easy to miss). */
export async function latestStatusDownloadDay(database: Pick<Database, 'query'>): Promise<string | null> {
  const rows = await database.query<{ day: string | null }>(
    `select (max(fetched_at) at time zone 'UTC')::date as day
     from repwatch.raw_download where kind = 'ip_status' and outcome in ('loaded', 'empty', 'duplicate')`,
  );
  return rows[0]?.day ?? null;
}
