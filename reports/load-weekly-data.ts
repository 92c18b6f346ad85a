import { loadDelistingOverview } from '../delisting/report-data.js';
import type { Database } from '../db/connection.js';
import type { Config } from '../config/schema.js';
import { addDays, daysBetween, utcDay } from '../lib/clock.js';
import type { ReportPeriod } from './week.js';
import {
  ACTION_STATUSES,
  emptyStatusCounts,
  HTML_ROWS_PER_STATUS,
  type DecisionItem,
  type DecisionStatus,
  type IpChart,
  type PoolTrend,
  type SeriesDay,
  type Totals,
  type WeeklyReportData,
} from './weekly-data.js';
import { draftedPlaybooks, linkStates, MAX_DRAFTS, staticPlaybook, toFixFor } from './integrations.js';
import { blockedByStatusAsOf, configuredSndsFeeds, ensureCurrentDecisions, latestStatusDownloadDay, sndsWindowCoverage } from '../transform/decisions.js';
import { complaintBandBounds } from '../ingest/snds/parse-data-export.js';
import { percentDigits } from '../lib/percent.js';
import { ALL_POOL, poolRanges } from '../transform/pools.js';

/**
 * Everything the weekly report shows, read from the `analytics` views so that the report and BI tools
 * never disagree. Two operational counts (rejected rows, quarantined messages) and the example subject
 * of a campaign come from the core tables: BI has no view for them and they carry no figures of their own.
 * No per-IP queries: each section is one statement whatever the number of IPs.
 */

// Ordering on a column selected as host(ip) must name the table's inet column (f.ip): the bare name
// is the text, and 192.0.2.10 would come before 192.0.2.9.

/** Per-IP charts are bounded so the report stays readable and fast at 10,000 IPs. */
export const CHART_LIMITS = { needsAction: 30, topVolume: 5, ipDays: 28, poolDays: 56 } as const;
/** Rows per decision status shown in HTML and Markdown; the CSV and JSON hold all of them. */
const TOP = 10;

export async function loadWeeklyData(database: Database, config: Config, period: ReportPeriod, now: Date): Promise<WeeklyReportData> {
  const q = database.query.bind(database);
  const notes: string[] = [];
  const [current, previous] = await Promise.all([totals(database, period.from, period.to), totals(database, period.previousFrom, period.previousTo)]);
  // A week still in progress (or with days missing) against a whole one: the changes would mislead.
  const [currentDays, previousDays] = await Promise.all([sndsDays(database, period.from, period.to), sndsDays(database, period.previousFrom, period.previousTo)]);
  if (currentDays !== previousDays && previousDays > 0) {
    notes.push(`This week has SNDS data for ${currentDays} of 7 days, the week before for ${previousDays}: the changes against last week compare unequal spans.`);
  }

  // Decisions not stored yet for a date (a report for a past week, a rebuild in progress), or stored
  // under other thresholds (an earlier config, a one-off --config), are computed with this config and
  // stored first, so that the report, its printed thresholds and analytics.ip_flag agree.
  for (const asOf of [period.to, period.previousTo]) {
    if (!(await hasData(database, asOf))) continue;
    const stored = await ensureCurrentDecisions(database, config, asOf);
    if (stored === 'current') continue;
    notes.push(
      stored === 'none'
        ? `Decisions for ${asOf} were not stored; they were computed for this report and stored in analytics.ip_flag.`
        : `Decisions for ${asOf} had been made with other thresholds or an earlier version of the rules; they were recomputed with the configured ones and stored in analytics.ip_flag.`,
    );
  }
  const flagRows = await q<FlagRow>(
    `select host(ip) as ip, status, reasons, recipients_7d, complaints_7d, complaint_rate_7d, trap_hits_7d, blocked, route
       from analytics.ip_flag f where as_of = $1
      order by array_position(array['start_delisting','fix_first','at_risk','ok','no_data'], status),
               complaint_rate_7d desc nulls last, recipients_7d desc, f.ip`,
    [period.to],
  );
  if (flagRows.length === 0) {
    notes.push(
      `No decisions for ${period.to}: analytics.ip_day has no row in the 28 days ending that day. ` +
        'If data was loaded for that time, the daily facts were not built: run `repwatch transform --rebuild`.',
    );
  }
  notes.push(...(await signalsOutsideTheRules(database, config, period)));
  // Complaint rates count reported complaints only: a week without any JMRP report reads as 0.000%,
  // which means "no reports", not "no complaints".
  const [jmrp] = await q<{ in_week: number; in_previous: number; last_day: string | null }>(
    `select count(*) filter (where day between $1 and $2)::int as in_week, count(*) filter (where day between $3 and $4)::int as in_previous,
            max(day)::text as last_day from repwatch.feedback_report`,
    [period.from, period.to, period.previousFrom, period.previousTo],
  );
  if (!jmrp || jmrp.in_week === 0) {
    notes.push(
      `No JMRP report is dated this week (${jmrp?.last_day ? `the latest is dated ${jmrp.last_day}` : 'none has ever been stored'}): complaint rates here count reported complaints only, ` +
        'so 0.000% means no reports, not no complaints. Check that the JMRP mailboxes are configured and drained (repwatch status).',
    );
  } else if (jmrp.in_previous === 0 && previousDays > 0) {
    notes.push(
      `No JMRP report is dated the week before (${period.previousFrom} … ${period.previousTo}): its 0.000% complaint rate means no reports, not no complaints, ` +
        'and the change against it says nothing (JMRP reports may have started this week, or that week\'s mailbox was not drained).',
    );
  }

  // The block list below is the current one; the week's decisions use only lists fetched by its last
  // day. A list fetched later can block IPs this week's decisions show as not blocked: say so.
  const newestStatus = await latestStatusDownloadDay(database);
  if (newestStatus !== null && newestStatus > period.to) {
    const [{ n: unseen } = { n: 0 }] = await q<{ n: number }>(
      `select count(*)::int as n from analytics.ip_status s
        where s.blocked and not exists (select 1 from analytics.ip_flag f where f.as_of = $1 and f.blocked and f.ip between s.first_ip and s.last_ip)`,
      [period.to],
    );
    // Only blocks the week's IP Status list showed (a block known from bounces was never on it).
    const lifted = [...(await blockedByStatusAsOf(database, flagRows.filter((r) => r.status === 'start_delisting' && r.blocked).map((r) => r.ip), period.to))];
    if (lifted.length > 0) {
      const notListed = await q<{ ip: string }>(
        `select host(ip) as ip from unnest($1::inet[]) as t(ip)
          where not exists (select 1 from analytics.ip_status s where s.blocked and t.ip between s.first_ip and s.last_ip)
          order by ip`,
        [lifted],
      );
      if (notListed.length > 0) {
        notes.push(
          `The IP Status list fetched on ${newestStatus}, after this week ended, no longer shows ${notListed.length} IP(s) this week's decisions want delisted as blocked ` +
            `(${notListed.slice(0, 5).map((r) => r.ip).join(', ')}${notListed.length > 5 ? ', …' : ''}): their blocks may have been lifted since; check before sending their requests.`,
        );
      }
    }
    if (unseen > 0) {
      notes.push(
        `The IP Status list fetched on ${newestStatus}, after this week ended, blocks ${unseen} range(s) that this week's decisions (as of ${period.to}) do not show as blocked: ` +
          `see the current block list below, and decide with it: repwatch flags --as-of ${newestStatus}; repwatch delist draft --ip <IP> uses it by default.`,
      );
    }
  }
  const statusCounts = countStatuses(flagRows);
  const previousStatusCounts = countStatuses(
    await q<{ status: DecisionStatus; n: number }>(`select status, count(*)::int as n from analytics.ip_flag where as_of = $1 group by status`, [period.previousTo]),
  );
  const items: DecisionItem[] = [];
  let drafted = 0;
  /** The IP whose item shows the Outlook.com request of each set of ranges. */
  const formShownFor = new Map<string, string>();
  for (const row of flagRows) {
    if (!(ACTION_STATUSES as readonly string[]).includes(row.status)) continue;
    const item: DecisionItem = {
      ip: row.ip,
      status: row.status,
      reasons: row.reasons ?? [],
      recipients7d: row.recipients_7d,
      complaints7d: row.complaints_7d,
      complaintRate7d: row.complaint_rate_7d,
      trapHits7d: row.trap_hits_7d,
      blocked: row.blocked,
      route: row.route,
    };
    if (row.status === 'start_delisting' && drafted < MAX_DRAFTS) {
      drafted++;
      const { playbooks, note } = await draftedPlaybooks(database, config, item, period.to);
      // One Outlook.com form covers every start_delisting IP of its ranges: the first IP shows it, the
      // others point to it (two filled-in forms for one range would be sent twice, with different texts).
      for (const playbook of playbooks) {
        const ranges = playbook.route === 'outlook_form' ? playbook.request.find((r) => r.label === 'Outgoing IP addresses or ranges')?.value : undefined;
        if (!ranges) continue;
        const first = formShownFor.get(ranges);
        if (first === undefined) formShownFor.set(ranges, item.ip);
        else {
          playbook.request = [];
          item.draftNote = `The Outlook.com request shown for ${first} covers this IP too (${ranges}): send that one request once.`;
        }
      }
      item.playbooks = playbooks;
      if (note) item.draftNote = [item.draftNote, note].filter(Boolean).join(' ');
    } else if (row.blocked) {
      const playbook = staticPlaybook(row.route);
      if (playbook) item.playbooks = [playbook];
      item.draftNote =
        row.status === 'fix_first'
          ? 'No delisting request yet: a request before the cause is fixed is refused and makes the next one harder.'
          : `Pre-filled requests are in the report for the first ${MAX_DRAFTS} IPs; print this one with: repwatch delist draft --ip ${row.ip} --as-of ${period.to}`;
    }
    if (row.status === 'fix_first') item.toFix = toFixFor(item);
    items.push(item);
  }

  const chartIps = await chooseChartIps(database, items, period);
  const ipDaysFrom = addDays(period.to, -(CHART_LIMITS.ipDays - 1));
  // One query for the charted IPs and the IPs whose rows the HTML shows (their sparklines).
  const shown = ACTION_STATUSES.flatMap((status) => items.filter((i) => i.status === status).slice(0, HTML_ROWS_PER_STATUS));
  const ipSeries = await series(database, ipDaysFrom, period.to, [...new Set([...chartIps.map((c) => c.ip), ...shown.map((i) => i.ip)])]);
  for (const item of shown) item.rate28d = fillDays(ipDaysFrom, period.to, ipSeries.get(item.ip) ?? []).map((d) => d.complaintRate);
  const ips: IpChart[] = chartIps.map((c) => ({ ...c, days: fillDays(ipDaysFrom, period.to, ipSeries.get(c.ip) ?? []) }));
  const actionCount = items.length;
  const note =
    `Charts for ${ips.filter((c) => c.why === 'needs_action').length} of ${actionCount} IPs needing action ` +
    `(the most urgent first, at most ${CHART_LIMITS.needsAction}) and the ${ips.filter((c) => c.why === 'top_volume').length} other IPs ` +
    `with the most volume this week (at most ${CHART_LIMITS.topVolume}); every IP needing action is in the CSV and the JSON, every IP's decision in analytics.ip_flag and its days in analytics.ip_day.`;

  const [pools, trapHits, blockList, topCampaigns, topFromDomains, freshness, rejections, quarantined, delisting] = await Promise.all([
    poolTrends(database, config, period.to),
    trapHitsOf(database, period),
    blockListNow(database),
    campaigns(database, period),
    fromDomains(database, period),
    freshnessOf(database, config, period),
    rejectionsOf(database, period),
    quarantinedOf(database, period),
    delistingOf(database, period.to),
  ]);

  return {
    generatedAt: now.toISOString(),
    period: { week: period.week, from: period.from, to: period.to, previousFrom: period.previousFrom, previousTo: period.previousTo, isoWeek: period.isoWeek },
    thresholds: { complaintRateWarn: config.thresholds.complaintRateWarn, complaintRateMax: config.thresholds.complaintRateMax, windowDays: config.thresholds.windowDays, bulkSenderDailyVolume: config.thresholds.bulkSenderDailyVolume },
    headline: { current, previous, statusCounts, previousStatusCounts },
    decisions: { source: `analytics.ip_flag as of ${period.to}`, items },
    charts: { note, ipDays: CHART_LIMITS.ipDays, ips, poolDays: CHART_LIMITS.poolDays, pools },
    trapHits,
    blockList,
    topCampaigns,
    topFromDomains,
    sndsLinks: linkStates(config, utcDay(now)),
    freshness,
    rejections,
    quarantined,
    delisting,
    ownDomains: config.auth.domains.map((d) => d.toLowerCase()),
    notes,
  };
}

/** Whether any IP has data in the 28 days that decide who is listed as of `asOf`. */
async function hasData(database: Database, asOf: string): Promise<boolean> {
  const rows = await database.query(`select 1 from analytics.ip_day where day between $1 and $2 limit 1`, [addDays(asOf, -27), asOf]);
  return rows.length > 0;
}

interface FlagRow {
  ip: string;
  status: DecisionStatus;
  reasons: string[] | null;
  recipients_7d: number;
  complaints_7d: number;
  complaint_rate_7d: number | null;
  trap_hits_7d: number;
  blocked: boolean;
  route: string | null;
}

function countStatuses(rows: { status: DecisionStatus; n?: number }[]): Record<DecisionStatus, number> {
  const counts = emptyStatusCounts();
  for (const row of rows) counts[row.status] = (counts[row.status] ?? 0) + (row.n ?? 1);
  return counts;
}

/** Days in [from, to] with SNDS traffic data for any IP. */
async function sndsDays(database: Database, from: string, to: string): Promise<number> {
  const [row] = await database.query<{ days: number }>(
    `select count(distinct day)::int as days from analytics.ip_day where day between $1 and $2 and message_recipients is not null`,
    [from, to],
  );
  return row?.days ?? 0;
}

async function totals(database: Database, from: string, to: string): Promise<Totals> {
  const [row] = await database.query<{ recipients: number | null; complaints: number | null; unrated: number | null; trap_hits: number | null; ips: number }>(
    `select sum(recipients)::bigint as recipients, sum(complaints)::bigint as complaints,
            sum(complaints) filter (where coalesce(recipients, 0) = 0)::bigint as unrated,
            sum(trap_hits)::bigint as trap_hits, count(*)::int as ips
       from (select ip, sum(message_recipients) as recipients, sum(complaints) as complaints, sum(trap_hits) as trap_hits
               from analytics.ip_day where day between $1 and $2 group by ip) per_ip`,
    [from, to],
  );
  const recipients = Number(row?.recipients ?? 0);
  const complaints = Number(row?.complaints ?? 0);
  const complaintsWithoutVolume = Number(row?.unrated ?? 0);
  return {
    recipients,
    complaints,
    complaintsWithoutVolume,
    complaintRate: recipients > 0 ? (complaints - complaintsWithoutVolume) / recipients : null,
    trapHits: Number(row?.trap_hits ?? 0),
    ips: row?.ips ?? 0,
  };
}

/**
 * What the decision rules (issue 5: JMRP complaints over SNDS volume) do not see, said as notes: IPs
 * whose own SNDS complaint band is at or over the warning line while their JMRP rate is under it or
 * unknown (JMRP reports only what users of enrolled IPs mark), and IPs with complaints but no SNDS
 * volume (their rate is unknown, not zero).
 */
async function signalsOutsideTheRules(database: Database, config: Config, period: ReportPeriod): Promise<string[]> {
  const notes: string[] = [];
  const bands = await database.query<{ ip: string; band: string; recipients: number | null; complaints: number | null }>(
    `select host(d.ip) as ip, d.snds_complaint_band as band, w.recipients, w.complaints
       from analytics.ip_day d
       join (select ip, sum(message_recipients) as recipients, sum(complaints) as complaints
               from analytics.ip_day where day between $1 and $2 group by ip) w on w.ip = d.ip
      where d.day between $1 and $2 and d.snds_complaint_band is not null and d.snds_complaint_band not like '<%'
      order by d.ip, d.day`,
    [period.from, period.to],
  );
  const highest = new Map<string, { band: string; low: number; rate: number | null }>();
  for (const row of bands) {
    const low = complaintBandBounds(row.band)?.low ?? 0;
    const recipients = Number(row.recipients ?? 0);
    const rate = recipients > 0 ? Number(row.complaints ?? 0) / recipients : null;
    if (low < config.thresholds.complaintRateWarn || (rate !== null && rate >= low)) continue;
    if (low > (highest.get(row.ip)?.low ?? -1)) highest.set(row.ip, { band: row.band, low, rate });
  }
  if (highest.size > 0) {
    const listed = [...highest].slice(0, 10).map(([ip, h]) => `${ip} (SNDS band ${h.band}, JMRP rate ${h.rate === null ? 'unknown' : `${percentDigits(h.rate)}%`})`);
    notes.push(
      `${highest.size} IP(s) have an SNDS complaint band at or over the ${percentDigits(config.thresholds.complaintRateWarn)}% warning line this week while their JMRP rate is lower or unknown: ` +
        `${listed.join(', ')}${highest.size > 10 ? ', …' : ''}. The decisions count JMRP complaints only; SNDS sees complaints JMRP does not report (check the JMRP enrolment of these IPs).`,
    );
  }
  const unrated = await database.query<{ ip: string; complaints: number }>(
    `select host(ip) as ip, sum(complaints)::int as complaints from analytics.ip_day where day between $1 and $2
      group by ip having coalesce(sum(message_recipients), 0) = 0 and sum(complaints) > 0 order by sum(complaints) desc, ip limit 11`,
    [period.from, period.to],
  );
  if (unrated.length > 0) {
    notes.push(
      `Complaints from IPs without SNDS volume this week: ${unrated.slice(0, 10).map((r) => `${r.ip} (${r.complaints})`).join(', ')}${unrated.length > 10 ? ', …' : ''}. ` +
        'Their rate is unknown, not zero (volume under SNDS\'s display threshold, or an IP outside the SNDS profile); they are counted, but left out of the headline rate, and the decisions flag them (complaints_without_volume).',
    );
  }
  return notes;
}

/** The IPs that get a chart: those needing action, most urgent first, then the biggest senders. */
async function chooseChartIps(database: Database, items: DecisionItem[], period: ReportPeriod): Promise<Omit<IpChart, 'days'>[]> {
  const chosen: Omit<IpChart, 'days'>[] = items.slice(0, CHART_LIMITS.needsAction).map((i) => ({ ip: i.ip, why: 'needs_action', status: i.status }));
  const taken = new Set(chosen.map((c) => c.ip));
  const top = await database.query<{ ip: string; status: DecisionStatus | null }>(
    `select host(d.ip) as ip, f.status
       from analytics.ip_day d left join analytics.ip_flag f on f.ip = d.ip and f.as_of = $2
      where d.day between $1 and $2
      group by d.ip, f.status
      order by sum(d.message_recipients) desc nulls last, d.ip
      limit $3`,
    [period.from, period.to, CHART_LIMITS.topVolume + chosen.length],
  );
  for (const row of top) {
    if (taken.has(row.ip) || chosen.length >= CHART_LIMITS.needsAction + CHART_LIMITS.topVolume) continue;
    if (chosen.filter((c) => c.why === 'top_volume').length >= CHART_LIMITS.topVolume) break;
    chosen.push({ ip: row.ip, why: 'top_volume', status: row.status });
    taken.add(row.ip);
  }
  return chosen;
}

async function series(database: Database, from: string, to: string, ips: string[]): Promise<Map<string, SeriesDay[]>> {
  const out = new Map<string, SeriesDay[]>();
  if (ips.length === 0) return out;
  const rows = await database.query<{ ip: string } & RawDay>(
    `select host(ip) as ip, day, message_recipients, complaints, complaint_rate, trap_hits, filter_result
       from analytics.ip_day d where ip = any($1::inet[]) and day between $2 and $3 order by d.ip, day`,
    [ips, from, to],
  );
  for (const row of rows) {
    const list = out.get(row.ip) ?? [];
    list.push(toSeriesDay(row));
    out.set(row.ip, list);
  }
  return out;
}

interface RawDay {
  day: string;
  message_recipients: number | null;
  complaints: number | null;
  complaint_rate: number | null;
  trap_hits: number | null;
  filter_result: string | null;
}

function toSeriesDay(row: RawDay): SeriesDay {
  return {
    day: row.day,
    recipients: row.message_recipients,
    complaints: row.complaints ?? 0,
    complaintRate: row.complaint_rate,
    trapHits: row.trap_hits,
    filterResult: row.filter_result,
  };
}

/** Every day of the range, with nulls where there was no data: a gap must look like a gap. */
function fillDays(from: string, to: string, days: SeriesDay[]): SeriesDay[] {
  const byDay = new Map(days.map((d) => [d.day, d]));
  const out: SeriesDay[] = [];
  for (let day = from; day <= to; day = addDays(day, 1)) {
    out.push(byDay.get(day) ?? { day, recipients: null, complaints: 0, complaintRate: null, trapHits: null, filterResult: null });
  }
  return out;
}

/**
 * Daily totals per pool: the configured CIDR lists (normalised as the transform does; "all" always),
 * summed from analytics.ip_day with each IP counted once per pool; the rate counts the complaints of
 * IP-days with SNDS volume only (the headline's rule). The same sums as analytics.pool_day,
 * but filtered by day before grouping, which keeps it fast at 10,000 IPs.
 */
async function poolTrends(database: Database, config: Config, to: string): Promise<PoolTrend[]> {
  const from = addDays(to, -(CHART_LIMITS.poolDays - 1));
  const pools = new Map<string, string[]>();
  for (const range of poolRanges(config.pools)) pools.set(range.pool, [...(pools.get(range.pool) ?? []), range.cidr]);
  const ordered = [...pools].sort(([a], [b]) => (a === ALL_POOL ? -1 : b === ALL_POOL ? 1 : a.localeCompare(b)));
  const result: PoolTrend[] = [];
  for (const [pool, cidrs] of ordered) {
    const rows = await database.query<RawDay>(
      `select day, sum(message_recipients)::bigint as message_recipients, sum(complaints)::bigint as complaints,
              case when sum(message_recipients) > 0
                   then coalesce(sum(complaints) filter (where message_recipients > 0), 0)::numeric / sum(message_recipients) end as complaint_rate,
              sum(trap_hits)::bigint as trap_hits, null::text as filter_result
         from analytics.ip_day
        where day between $1 and $2 and ip <<= any($3::cidr[])
        group by day order by day`,
      [from, to, cidrs],
    );
    result.push({ pool, cidrs: config.pools[pool] ?? [], days: fillDays(from, to, rows.map(toSeriesDay)) });
  }
  return result;
}

async function trapHitsOf(database: Database, period: ReportPeriod): Promise<WeeklyReportData['trapHits']> {
  const rows = await database.query<{ ip: string; hits: number; days: number; last_day: string; total: number }>(
    `select host(ip) as ip, sum(trap_hits)::bigint as hits, count(*)::int as days, max(day) as last_day,
            sum(sum(trap_hits)) over ()::bigint as total
       from analytics.ip_day d where day between $1 and $2 and trap_hits > 0
      group by d.ip order by hits desc, d.ip limit 50`,
    [period.from, period.to],
  );
  return { total: rows[0]?.total ?? 0, ips: rows.map((r) => ({ ip: r.ip, hits: r.hits, days: r.days, lastDay: r.last_day })) };
}

async function blockListNow(database: Database): Promise<WeeklyReportData['blockList']> {
  const rows = await database.query<{ first_ip: string; last_ip: string; details: string | null; fetched_at: Date; total: number }>(
    `select host(first_ip) as first_ip, host(last_ip) as last_ip, details, fetched_at, count(*) over ()::int as total
       from analytics.ip_status s where blocked order by s.first_ip, s.last_ip limit 200`,
  );
  const fetched = rows.map((r) => r.fetched_at.getTime());
  return {
    fetchedAt: fetched.length ? new Date(Math.max(...fetched)).toISOString() : null,
    total: rows[0]?.total ?? 0,
    ranges: rows.map((r) => ({ firstIp: r.first_ip, lastIp: r.last_ip, details: r.details, fetchedAt: r.fetched_at.toISOString() })),
  };
}

async function campaigns(database: Database, period: ReportPeriod): Promise<WeeklyReportData['topCampaigns']> {
  const rows = await database.query<{ campaign: string | null; complaints: number; ips: number }>(
    `select campaign, sum(incidents)::bigint as complaints, count(distinct source_ip)::int as ips
       from analytics.complaint where day between $1 and $2
      group by campaign order by complaints desc, campaign nulls last limit ${TOP}`,
    [period.from, period.to],
  );
  // The subject is not in analytics.complaint (BI has no use for it); an example helps a person
  // recognise the campaign.
  const subjects = await database.query<{ campaign: string; subject: string | null }>(
    `select distinct on (campaign) campaign, subject from repwatch.feedback_report
      where is_complaint and day between $1 and $2 and campaign = any($3::text[]) and subject is not null
      order by campaign, complained_at desc nulls last`,
    [period.from, period.to, rows.map((r) => r.campaign).filter((c): c is string => c !== null)],
  );
  const subjectOf = new Map(subjects.map((s) => [s.campaign, s.subject]));
  return rows.map((r) => ({ ...r, exampleSubject: r.campaign === null ? null : (subjectOf.get(r.campaign) ?? null) }));
}

async function fromDomains(database: Database, period: ReportPeriod): Promise<WeeklyReportData['topFromDomains']> {
  return database.query(
    `select original_from_domain as domain, sum(incidents)::bigint as complaints, count(distinct source_ip)::int as ips
       from analytics.complaint where day between $1 and $2
      group by original_from_domain order by complaints desc, domain nulls last limit ${TOP}`,
    [period.from, period.to],
  );
}

async function freshnessOf(database: Database, config: Config, period: ReportPeriod): Promise<WeeklyReportData['freshness']> {
  const sources = await database.query<{ job: string; last_success: Date | null; last_status: string; last_started: Date; last_detail: string | null }>(
    `select job,
            max(finished_at) filter (where status = 'succeeded') as last_success,
            (array_agg(status order by started_at desc))[1] as last_status,
            max(started_at) as last_started,
            (array_agg(detail order by started_at desc))[1] as last_detail
       from analytics.pipeline_run
      -- The report's own job is the run writing this report (its row says running): not a source.
      where job not like 'report:%'
      group by job order by job`,
  );
  // The days that have data (one index range scan), then the days of the period that are missing.
  const withData = new Set(
    (await database.query<{ day: string }>(
      `select distinct day from analytics.ip_day where day between $1 and $2 and message_recipients is not null`,
      [period.from, period.to],
    )).map((r) => r.day),
  );
  const gaps: { day: string }[] = [];
  for (let day = period.from; day <= period.to; day = addDays(day, 1)) if (!withData.has(day)) gaps.push({ day });
  // A feed (account) that has not delivered a day hides behind another feed that has: name it.
  const coverage = await sndsWindowCoverage(database, period.to, daysBetween(period.from, period.to) + 1, configuredSndsFeeds(config));
  return {
    sources: sources.map((s) => ({
      job: s.job,
      lastSuccess: s.last_success?.toISOString() ?? null,
      lastStatus: s.last_status,
      lastStarted: s.last_started.toISOString(),
      lastDetail: s.last_detail,
    })),
    daysWithoutData: gaps.map((g) => g.day),
    feedGaps: coverage.feedGaps,
  };
}

/** Instants of the period: from its first day's midnight UTC to the midnight after its last. */
function instants(period: ReportPeriod): [string, string] {
  return [`${period.from}T00:00:00Z`, `${addDays(period.to, 1)}T00:00:00Z`];
}

async function rejectionsOf(database: Database, period: ReportPeriod): Promise<WeeklyReportData['rejections']> {
  const rows = await database.query<{ source: string; reason: string; count: number; last_location: string; total: number }>(
    `select source, reason, count(*)::int as count, (array_agg(location order by recorded_at desc))[1] as last_location,
            sum(count(*)) over ()::int as total
       from repwatch.rejection where recorded_at >= $1 and recorded_at < $2
      group by source, reason order by count desc, source, reason limit 20`,
    instants(period),
  );
  return { total: rows[0]?.total ?? 0, groups: rows.map((r) => ({ source: r.source, reason: r.reason, count: r.count, lastLocation: r.last_location })) };
}

async function quarantinedOf(database: Database, period: ReportPeriod): Promise<WeeklyReportData['quarantined']> {
  const rows = await database.query<{ mailbox: string; reason: string; count: number; total: number }>(
    `select mailbox, coalesce(reason, classification) as reason, count(*)::int as count, sum(count(*)) over ()::int as total
       from repwatch.mail_message where quarantined and stored_at >= $1 and stored_at < $2
      group by mailbox, coalesce(reason, classification) order by count desc, mailbox limit 20`,
    instants(period),
  );
  return { total: rows[0]?.total ?? 0, groups: rows.map((r) => ({ mailbox: r.mailbox, reason: r.reason, count: r.count })) };
}

/** Cases, other blocklists and authentication as of the report's last day (delisting/report-data.ts). */
async function delistingOf(database: Database, asOf: string): Promise<WeeklyReportData['delisting']> {
  const overview = await loadDelistingOverview(database, asOf);
  return {
    cases: overview.cases.map((c) => ({
      id: c.id,
      target: c.target,
      route: c.route,
      state: c.state,
      openedAt: c.openedAt.toISOString(),
      stateChangedAt: c.stateChangedAt.toISOString(),
      messages: c.messages.length,
      lastMessage: c.messages.at(-1)?.body?.slice(0, 200) ?? null,
    })),
    blocklists: {
      checkedAt: overview.blocklistsCheckedAt?.toISOString() ?? null,
      cleanPairs: overview.cleanPairs,
      listings: overview.blocklists.map((b) => ({
        ip: b.ip,
        zone: b.zone,
        outcome: b.outcome,
        answer: b.answer.join(' '),
        meaning: b.meaning,
        listedSince: b.listedSince,
        isNew: b.newListing,
      })),
    },
    auth: overview.auth.map((a) => ({
      domain: a.domain,
      spf: a.spf,
      dkim: a.dkim,
      dmarc: a.dmarc,
      dmarcPolicy: a.dmarcPolicy,
      dailyVolume: a.dailyVolume,
      meetsRequirement: a.meetsRequirement,
      flagged: a.flagged,
      problems: a.problems,
    })),
  };
}
