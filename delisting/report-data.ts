import type { Database } from '../db/connection.js';
import { listCases, type DelistCase } from './cases.js';

/**
 * What the weekly report shows of the delisting workflow besides the decisions: the cases, the
 * blocklist results and the authentication checks, as of a date. One read-only function so the report
 * and `delist status` / `check` never disagree.
 */
export interface DelistingOverview {
  /** Every case, newest first (with messages). */
  cases: DelistCase[];
  /** Latest DNSBL answer per IP and zone on or before the date, only listings and refused queries. */
  blocklists: { ip: string; zone: string; checkedAt: Date; outcome: string; listed: boolean; answer: string[]; meaning: string | null; newListing: boolean; listedSince: string | null }[];
  /** When blocklists were last checked (null: never), and how many IP/zone pairs were clean. */
  blocklistsCheckedAt: Date | null;
  cleanPairs: number;
  /** Latest authentication check per domain on or before the date. */
  auth: { domain: string; checkedAt: Date; spf: string; dkim: string; dmarc: string; dmarcPolicy: string | null; alignment: string | null; dailyVolume: number | null; meetsRequirement: boolean; flagged: boolean; problems: string[] }[];
}

export async function loadDelistingOverview(database: Pick<Database, 'query'>, asOf: string): Promise<DelistingOverview> {
  const cases = await listCases(database);
  const latest = await database.query<{ ip: string; zone: string; checked_at: Date; outcome: string; listed: boolean; answer: string[]; meaning: string | null; new_listing: boolean; listed_since: string | null }>(
    `with latest as (
       select distinct on (ip, zone) id, ip, zone, checked_at, outcome, listed, answer, meaning, new_listing
       from repwatch.dnsbl_result where day <= $1::date
       order by ip, zone, checked_at desc, id desc
     )
     select host(l.ip) as ip, l.zone, l.checked_at, l.outcome, l.listed, l.answer, l.meaning, l.new_listing,
            (select min(r.day)::text from repwatch.dnsbl_result r
             where r.ip = l.ip and r.zone = l.zone and r.listed and r.day <= $1::date
               and not exists (select 1 from repwatch.dnsbl_result c where c.ip = l.ip and c.zone = l.zone
                               and c.outcome = 'not_listed' and c.checked_at > r.checked_at and c.day <= $1::date)) as listed_since
     from latest l order by l.listed desc, l.ip, l.zone`,
    [asOf],
  );
  const auth = await database.query<{ domain: string; checked_at: Date; spf_result: string; dkim_result: string; dmarc_result: string; dmarc_policy: string | null; dmarc_alignment: string | null; daily_volume: number | null; meets_requirement: boolean; flagged: boolean; problems: string[] }>(
    `select distinct on (domain) domain, checked_at, spf_result, dkim_result, dmarc_result, dmarc_policy, dmarc_alignment,
            daily_volume, meets_requirement, flagged, problems
     from repwatch.auth_check where day <= $1::date
     order by domain, checked_at desc, id desc`,
    [asOf],
  );
  return {
    cases,
    blocklists: latest
      .filter((r) => r.outcome === 'listed' || r.outcome === 'refused')
      .map((r) => ({ ip: r.ip, zone: r.zone, checkedAt: r.checked_at, outcome: r.outcome, listed: r.listed, answer: r.answer, meaning: r.meaning, newListing: r.new_listing, listedSince: r.listed ? r.listed_since : null })),
    blocklistsCheckedAt: latest.reduce<Date | null>((max, r) => (!max || r.checked_at > max ? r.checked_at : max), null),
    cleanPairs: latest.filter((r) => r.outcome === 'not_listed').length,
    auth: auth
      .map((r) => ({ domain: r.domain, checkedAt: r.checked_at, spf: r.spf_result, dkim: r.dkim_result, dmarc: r.dmarc_result, dmarcPolicy: r.dmarc_policy, alignment: r.dmarc_alignment, dailyVolume: r.daily_volume, meetsRequirement: r.meets_requirement, flagged: r.flagged, problems: r.problems }))
      .sort((a, b) => Number(b.flagged) - Number(a.flagged) || a.domain.localeCompare(b.domain)),
  };
}
