import { canonicalIp } from '../ip-address.js';
import type { Config } from '../../config/schema.js';
import type { Database, Session } from '../../db/connection.js';
import type { Clock } from '../../lib/clock.js';
import { addDays } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { notePendingDays, recomputeDays } from '../../transform/recompute.js';
import { detectRelistings } from '../../delisting/relisting.js';
import { createCheckResolver, type CheckResolver } from '../dns-resolver.js';
import { DEFAULT_ZONES, dnsblQueryName, interpretAnswer, zoneInfo } from './zones.js';

export interface BlocklistResult {
  ip: string;
  zone: string;
  listed: boolean;
  outcome: 'listed' | 'not_listed' | 'refused' | 'error';
  /** The A records the zone answered (empty when not listed). */
  answer: string[];
  meaning: string | null;
  /** The zone's TXT explanation for a listing, when it gives one. */
  txt: string | null;
  error: string | null;
  /** Listed now and not listed (or not checked) in the previous check of this IP and zone. */
  newListing: boolean;
}

/**
 * Query every IP in every zone, at most `concurrency` queries in flight. Never throws per query.
 *
 * Each zone is first asked for its RFC 5782 test entries: every DNSBL lists 127.0.0.2 and never
 * 127.0.0.1. A zone (or a resolver in front of it) that does not list 127.0.0.2 answers "not listed"
 * for everything, a closed network or a dead zone included; one that lists 127.0.0.1 answers "listed"
 * for everything. Either way its answers say nothing, and they are recorded as errors with the reason,
 * never as a clean (or listed) IP. A zone whose test queries get no answer at all is not asked about
 * the IPs: each IP is recorded as an error saying so.
 */
export async function queryBlocklists(options: { ips: readonly string[]; zones: readonly string[]; resolver: CheckResolver; concurrency: number }): Promise<BlocklistResult[]> {
  if (options.ips.length === 0) return [];
  const untrusted = new Map<string, string>();
  /** Zones whose test queries got no answer at all: their IPs are not asked (each would wait out the
   * timeout, thousands of times with the resolver down). */
  const unanswered = new Map<string, string>();
  await Promise.all(
    options.zones.map(async (zone) => {
      const [test, never] = await Promise.all([queryOne('127.0.0.2', zone, options.resolver), queryOne('127.0.0.1', zone, options.resolver)]);
      if (test.outcome === 'error' && never.outcome === 'error') {
        unanswered.set(zone, `not looked up: the resolver did not answer ${zone}'s test queries (${test.error})`);
      } else if (test.outcome === 'not_listed') untrusted.set(zone, `${zone} does not list its RFC 5782 test address 127.0.0.2 through this resolver: "not listed" means nothing (closed network, dead zone, or a resolver that hides answers)`);
      else if (never.outcome === 'listed') untrusted.set(zone, `${zone} lists 127.0.0.1, which no blocklist may list: it answers "listed" for everything (wildcarded or dead zone)`);
    }),
  );
  const trusted = (result: BlocklistResult): BlocklistResult => {
    const reason = untrusted.get(result.zone);
    if (!reason || result.outcome === 'refused' || result.outcome === 'error') return result;
    return { ...result, listed: false, outcome: 'error', meaning: reason, error: reason };
  };
  const tasks = options.ips.flatMap((ip) => options.zones.map((zone) => ({ ip, zone })));
  const results: BlocklistResult[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      const { ip, zone } = tasks[index]!;
      const skipped = unanswered.get(zone);
      results[index] = skipped
        ? { ip: canonicalIp(ip) ?? ip, zone, txt: null, newListing: false, listed: false, outcome: 'error', answer: [], meaning: null, error: skipped }
        : trusted(await queryOne(ip, zone, options.resolver));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, tasks.length)) }, worker));
  return results;
}

async function queryOne(given: string, zone: string, resolver: CheckResolver): Promise<BlocklistResult> {
  const ip = canonicalIp(given) ?? given;
  const base = { ip, zone, txt: null, newListing: false };
  let name: string;
  try {
    name = dnsblQueryName(ip, zone);
  } catch {
    return { ...base, listed: false, outcome: 'error', answer: [], meaning: null, error: `not an IP address: ${ip}` };
  }
  try {
    const answer = (await resolver.resolve4(name)).sort();
    const meaning = interpretAnswer(zoneInfo(zone), answer);
    let txt: string | null = null;
    if (meaning.outcome === 'listed') txt = (await resolver.resolveTxt(name).catch(() => [])).join(' ').slice(0, 1000) || null;
    return { ...base, listed: meaning.outcome === 'listed', outcome: meaning.outcome, answer, meaning: meaning.meaning, txt, error: meaning.outcome === 'error' ? meaning.meaning : null };
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'EUNKNOWN';
    if (code === 'EREFUSED') return { ...base, listed: false, outcome: 'refused', answer: [], meaning: 'query refused by the resolver', error: code };
    const why = code === 'ETIMEOUT' ? 'timed out' : code === 'ESERVFAIL' ? 'server failure' : code === 'ECONNREFUSED' ? 'resolver unreachable' : code;
    return { ...base, listed: false, outcome: 'error', answer: [], meaning: null, error: why };
  }
}

type Queryable = Pick<Session, 'query'>;

/**
 * Keep the results as history, mark new listings (listed now, not listed in the previous check of
 * that IP and zone), and write a `dnsbl_listed` warning as block evidence for every IP found listed
 * (one row per IP, zone and day): the IP stays at_risk while it stays listed.
 */
export async function storeBlocklistResults(session: Queryable, all: BlocklistResult[], at: Date): Promise<{ stored: number; newListings: number; day: string }> {
  const day = at.toISOString().slice(0, 10);
  // Only real addresses are stored (a typo given on the command line is reported, not kept).
  const results = all.filter((r) => canonicalIp(r.ip) !== null);
  if (results.length === 0) return { stored: 0, newListings: 0, day };
  const previous = await session.query<{ ip: string; zone: string; listed: boolean }>(
    `select distinct on (ip, zone) host(ip) as ip, zone, listed from repwatch.dnsbl_result
     where (host(ip), zone) in (select * from unnest($1::text[], $2::text[]))
     order by ip, zone, checked_at desc, id desc`,
    [results.map((r) => canonicalIp(r.ip)), results.map((r) => r.zone)],
  );
  const before = new Map(previous.map((p) => [`${p.ip}|${p.zone}`, p.listed]));
  for (const r of results) r.newListing = r.listed && before.get(`${canonicalIp(r.ip)}|${r.zone}`) !== true;
  await session.query(
    `insert into repwatch.dnsbl_result (checked_at, day, ip, zone, outcome, listed, answer, meaning, txt, error, new_listing)
     select $1, $2::date, t.ip, t.zone, t.outcome, t.listed, coalesce(string_to_array(nullif(t.answer, ''), ','), '{}'::text[]),
            t.meaning, t.txt, t.error, t.new_listing
     from unnest($3::inet[], $4::text[], $5::text[], $6::boolean[], $7::text[], $8::text[], $9::text[], $10::text[], $11::boolean[])
       as t(ip, zone, outcome, listed, answer, meaning, txt, error, new_listing)`,
    [
      at,
      day,
      results.map((r) => r.ip),
      results.map((r) => r.zone),
      results.map((r) => r.outcome),
      results.map((r) => r.listed),
      results.map((r) => r.answer.join(',')),
      results.map((r) => r.meaning),
      results.map((r) => r.txt),
      results.map((r) => r.error),
      results.map((r) => r.newListing),
    ],
  );
  const listed = results.filter((r) => r.listed);
  if (listed.length > 0) {
    await session.query(
      `insert into repwatch.block_evidence (ip, day, kind, route, reason, source, detail, ref_id)
       select t.ip, $1::date, 'warning', null, 'dnsbl_listed', 'dnsbl', t.detail, null
       from unnest($2::inet[], $3::text[], $4::text[]) as t(ip, zone, detail)
       where not exists (select 1 from repwatch.block_evidence e
                         where e.source = 'dnsbl' and e.ip = t.ip and e.day = $1::date and e.detail = t.detail)`,
      [day, listed.map((r) => r.ip), listed.map((r) => r.zone), listed.map((r) => `${r.zone}: ${r.meaning ?? 'listed'} (${r.answer.join(', ')})`.slice(0, 1000))],
    );
  }
  return { stored: results.length, newListings: results.filter((r) => r.newListing).length, day };
}



/** The IPs `--all` checks: every IP with SNDS data, complaints or bounces in the last 28 days. */
export async function knownIps(database: Pick<Database, 'query'>, today: string): Promise<string[]> {
  const rows = await database.query<{ ip: string }>(
    `select distinct host(ip) as ip from (
       select ip from repwatch.ip_day_fact where day between $1::date and $2::date
       union select ip from repwatch.bounce where ip is not null and day between $1::date and $2::date
       union select ip from repwatch.block_evidence where day between $1::date and $2::date
     ) known order by 1`,
    [addDays(today, -27), today],
  );
  return rows.map((r) => r.ip);
}

export interface BlocklistCheckOptions {
  ips?: readonly string[];
  zones?: readonly string[];
  resolver?: string;
}

export interface BlocklistRun {
  day: string;
  zones: string[];
  results: BlocklistResult[];
  newListings: number;
}

/**
 * The job the CLI and the scheduler run: check the given IPs (default: every known IP), store the
 * results with history, detect relistings and recompute the decisions of the day.
 */
export async function runBlocklistCheck(ctx: { database: Database; config: Config; clock: Clock; logger?: Logger }, options: BlocklistCheckOptions = {}): Promise<BlocklistRun> {
  const at = ctx.clock.now();
  const day = at.toISOString().slice(0, 10);
  const zones = [...(options.zones ?? ctx.config.blocklists.zones ?? DEFAULT_ZONES.map((z) => z.zone))];
  const ips = options.ips ? [...options.ips] : await knownIps(ctx.database, day);
  const resolver = createCheckResolver({ server: options.resolver ?? ctx.config.blocklists.resolver, timeoutMs: ctx.config.blocklists.timeoutMs });
  const results = await queryBlocklists({ ips, zones, resolver, concurrency: ctx.config.blocklists.concurrency });
  const { stored, relistedDays } = await ctx.database.transaction(async (session) => {
    const stored = await storeBlocklistResults(session, results, at);
    // The daily check is also where an SNDS IP Status block after a closed case is noticed.
    const relisted = await detectRelistings(session, at);
    if (results.some((r) => r.listed)) await notePendingDays(session, [day]);
    return { stored, relistedDays: relisted.days };
  });
  const days = new Set(relistedDays);
  if (results.some((r) => r.listed)) days.add(day);
  await recomputeDays(ctx.database, ctx.config, [...days].sort()); // with no day of its own: days an earlier run left pending
  ctx.logger?.info({ check: 'blocklists', ips: ips.length, zones: zones.length, listed: results.filter((r) => r.listed).length, newListings: stored.newListings, errors: results.filter((r) => r.outcome === 'error').length }, 'blocklists checked');
  return { day, zones, results, newListings: stored.newListings };
}
