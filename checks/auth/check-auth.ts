import { createRequire } from 'node:module';
import { dmarc, spf } from 'mailauth';
import type { Config } from '../../config/schema.js';
import type { Database, Session } from '../../db/connection.js';
import { addDays, type Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { createCheckResolver, type CheckResolver } from '../dns-resolver.js';

/**
 * Outlook.com's bulk-sender rules (since 5 May 2025): a domain sending more than 5,000 messages a day
 * to Outlook.com must pass SPF and DKIM and publish DMARC (at least p=none) aligned with SPF or DKIM;
 * otherwise `550 5.7.515`. Checked through DNS with mailauth:
 * - SPF: the From domain's SPF policy evaluated for each of our IPs seen sending for the domain (as if
 *   the envelope sender used the From domain, which is what SPF alignment needs);
 * - DKIM: the public key of every configured selector (`auth.dkimSelectors`) is published and valid;
 * - DMARC: the record, its policy, and alignment given the SPF and DKIM results above.
 * Volume: the SNDS recipients of the domain's IPs (SNDS counts exactly Outlook.com traffic), the
 * busiest day of the last 7. Shared IPs make it an upper bound.
 */

// getPublicKey is not part of mailauth's typed entry point.
const require = createRequire(import.meta.url);
const { getPublicKey } = require('mailauth/lib/tools') as {
  getPublicKey: (type: string, name: string, minBits: number, resolver: CheckResolver['mailauth']) => Promise<unknown>;
};

export interface DomainToCheck {
  domain: string;
  origin: string;
  ips: string[];
  dailyVolume: number | null;
  /** 5.7.515 bounces seen for the domain in the last 28 days. */
  authBounces: number;
}

export interface AuthCheckResult {
  domain: string;
  origin: string;
  spf: { result: string; record: string | null; ips: Record<string, string> };
  dkim: { result: 'pass' | 'fail' | 'not_configured'; selectors: Record<string, string> };
  dmarc: { result: string; policy: string | null; record: string | null; alignment: 'spf+dkim' | 'spf' | 'dkim' | 'none' };
  dailyVolume: number | null;
  meetsRequirement: boolean;
  flagged: boolean;
  problems: string[];
}

export async function checkDomain(target: DomainToCheck, selectors: readonly string[], resolver: CheckResolver, threshold: number): Promise<AuthCheckResult> {
  const problems: string[] = [];
  const domain = target.domain.toLowerCase();

  // SPF
  let spfRecords: string[] = [];
  let spfError: string | null = null;
  try {
    spfRecords = (await resolver.resolveTxt(domain)).filter((t) => /^v=spf1(\s|$)/i.test(t));
  } catch (error) {
    spfError = (error as { code?: string }).code ?? 'DNS error';
  }
  const spfIps: Record<string, string> = {};
  let spfResult: string;
  if (spfError) spfResult = 'temperror';
  else if (spfRecords.length === 0) spfResult = 'none';
  else if (spfRecords.length > 1) spfResult = 'permerror';
  else if (target.ips.length === 0) spfResult = 'published';
  else {
    for (const ip of target.ips.slice(0, 20)) {
      const r = await spf({ sender: `postmaster@${domain}`, ip, helo: domain, mta: 'repwatch', resolver: resolver.mailauth });
      spfIps[ip] = r.status.result;
    }
    const results = Object.values(spfIps);
    spfResult = results.every((r) => r === 'pass') ? 'pass' : worst(results);
  }
  if (spfResult === 'none') problems.push(`no SPF record at ${domain}`);
  else if (spfResult === 'permerror') problems.push(`SPF permerror at ${domain} (${spfRecords.length > 1 ? 'several SPF records' : 'invalid record'})`);
  else if (spfResult === 'temperror') problems.push(`SPF lookup failed for ${domain} (${spfError ?? 'temporary error'})`);
  else if (spfResult !== 'pass' && spfResult !== 'published') {
    const failing = Object.entries(spfIps).filter(([, r]) => r !== 'pass').map(([ip, r]) => `${ip} ${r}`);
    problems.push(`SPF does not pass for ${failing.join(', ')}: add these IPs to the SPF record of ${domain}`);
  }

  // DKIM
  const dkimSelectors: Record<string, string> = {};
  for (const selector of selectors) {
    try {
      await getPublicKey('DKIM', `${selector}._domainkey.${domain}`, 1024, resolver.mailauth);
      dkimSelectors[selector] = 'pass';
    } catch (error) {
      const e = error as { code?: string; message?: string };
      dkimSelectors[selector] = e.code === 'ENOTFOUND' || e.code === 'ENODATA' ? 'no key published' : (e.message ?? e.code ?? 'invalid key');
    }
  }
  const dkimResult = selectors.length === 0 ? 'not_configured' : Object.values(dkimSelectors).includes('pass') ? 'pass' : 'fail';
  if (dkimResult === 'not_configured') problems.push(`no DKIM selector configured for ${domain} (auth.dkimSelectors): DKIM cannot be checked`);
  else if (dkimResult === 'fail') problems.push(`no valid DKIM key for ${domain} (${Object.entries(dkimSelectors).map(([s, r]) => `${s}: ${r}`).join('; ')})`);

  // DMARC, with alignment from the results above (relaxed or strict as the record says).
  const dmarcOut = await dmarc({
    headerFrom: domain,
    spfDomains: spfResult === 'pass' ? [domain] : [],
    dkimDomains: dkimResult === 'pass' ? [{ id: domain, domain, aligned: true }] : [],
    resolver: resolver.mailauth,
  });
  let dmarcResult = 'none';
  let policy: string | null = null;
  let record: string | null = null;
  let alignment: AuthCheckResult['dmarc']['alignment'] = 'none';
  if (dmarcOut) {
    dmarcResult = dmarcOut.status.result;
    policy = dmarcOut.policy ?? dmarcOut.p ?? null;
    record = dmarcOut.rr ?? null;
    const a = dmarcOut.alignment;
    const spfAligned = Boolean(a?.spf?.result);
    const dkimAligned = Boolean(a?.dkim?.result);
    alignment = spfAligned && dkimAligned ? 'spf+dkim' : spfAligned ? 'spf' : dkimAligned ? 'dkim' : 'none';
  }
  if (dmarcResult === 'none') problems.push(`no DMARC record at _dmarc.${domain}: publish at least "v=DMARC1; p=none"`);
  else if (dmarcResult === 'temperror') problems.push(`DMARC lookup failed for ${domain}`);
  else if (!policy || !['none', 'quarantine', 'reject'].includes(policy.toLowerCase())) problems.push(`DMARC record of ${domain} has no valid policy (p=)`);
  else if (alignment === 'none') problems.push(`DMARC of ${domain} does not align: neither SPF nor DKIM passes for the From domain`);

  const meets = spfResult === 'pass' || spfResult === 'published' ? dkimResult === 'pass' && dmarcResult === 'pass' : false;
  const over = target.dailyVolume !== null && target.dailyVolume > threshold;
  if (target.authBounces > 0) problems.push(`${target.authBounces} bounce(s) with 5.7.515 in the last 28 days: Outlook.com already rejects mail from ${domain}`);
  const result: AuthCheckResult = {
    domain,
    origin: target.origin,
    spf: { result: spfResult, record: spfRecords[0] ?? null, ips: spfIps },
    dkim: { result: dkimResult, selectors: dkimSelectors },
    dmarc: { result: dmarcResult, policy, record, alignment },
    dailyVolume: target.dailyVolume,
    meetsRequirement: meets,
    flagged: (!meets && over) || target.authBounces > 0,
    problems,
  };
  // A DNS outage says nothing about the domain's records: not flagged (stored and shown as not checked),
  // unless Outlook.com's own 5.7.515 bounces already say so.
  if (dnsFailure(result) && target.authBounces === 0) result.flagged = false;
  return result;
}

const SPF_SEVERITY = ['fail', 'permerror', 'softfail', 'temperror', 'neutral', 'none', 'pass'];
function worst(results: string[]): string {
  return [...results].sort((a, b) => SPF_SEVERITY.indexOf(a) - SPF_SEVERITY.indexOf(b))[0] ?? 'none';
}

type Queryable = Pick<Session, 'query'>;

/**
 * The sending domains to check: configured (`auth.domains`), and the From domains seen in complaints
 * and bounces in the 28 days ending `today`, each with the IPs seen sending for it and its volume.
 */
export async function domainsToCheck(db: Queryable, config: Pick<Config, 'auth'>, today: string, only?: readonly string[]): Promise<DomainToCheck[]> {
  const rows = await db.query<{ domain: string; origins: string[]; ips: string[] | null; auth_bounces: number; daily_volume: number | null }>(
    `with seen as (
       select lower(d) as domain, 'configured' as origin, null::inet as ip from unnest($3::text[]) d
       union all
       select lower(original_from_domain), 'complaints', source_ip from repwatch.feedback_report
       where original_from_domain is not null and day between $1::date and $2::date
       union all
       select lower(sender_domain), 'bounces', ip from repwatch.bounce
       where sender_domain is not null and day between $1::date and $2::date
     ),
     domains as (
       select domain, array_agg(distinct origin order by origin) as origins,
              array_agg(distinct host(ip)) filter (where ip is not null) as ips
       from seen where $4::text[] is null or domain = any($4::text[])
       group by domain
     )
     select d.domain, d.origins, d.ips,
       (select count(*)::int from repwatch.bounce b
        where lower(b.sender_domain) = d.domain and '5.7.515' = any(b.ms_codes) and b.day between $1::date and $2::date) as auth_bounces,
       (select max(v) from (select sum(f.message_recipients) as v from repwatch.ip_day_fact f
                            where host(f.ip) = any(d.ips) and f.day between $2::date - 6 and $2::date group by f.day) per_day) as daily_volume
     from domains d order by d.domain`,
    [addDays(today, -27), today, config.auth.domains, only ? only.map((d) => d.toLowerCase()) : null],
  );
  return rows.map((r) => ({ domain: r.domain, origin: r.origins.join(','), ips: r.ips ?? [], dailyVolume: r.daily_volume, authBounces: r.auth_bounces }));
}

export async function storeAuthResults(db: Queryable, results: AuthCheckResult[], at: Date): Promise<void> {
  for (const r of results) {
    await db.query(
      `insert into repwatch.auth_check (checked_at, day, domain, origin, spf_result, spf_record, spf_ips, dkim_result, dkim_selectors,
         dmarc_result, dmarc_policy, dmarc_record, dmarc_alignment, daily_volume, meets_requirement, flagged, problems)
       values ($1, $2::date, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16, $17::text[])`,
      [at, at.toISOString().slice(0, 10), r.domain, r.origin, r.spf.result, r.spf.record, JSON.stringify(r.spf.ips), r.dkim.result,
        JSON.stringify(r.dkim.selectors), r.dmarc.result, r.dmarc.policy, r.dmarc.record, r.dmarc.alignment, r.dailyVolume,
        r.meetsRequirement, r.flagged, r.problems],
    );
  }
}

/** The job the CLI and the scheduler run: check, store, return the results (flagged first). */
export async function runAuthCheck(
  ctx: { database: Database; config: Config; clock: Clock; logger?: Logger },
  options: { domains?: readonly string[]; resolver?: string } = {},
): Promise<AuthCheckResult[]> {
  const at = ctx.clock.now();
  const today = at.toISOString().slice(0, 10);
  const resolver = createCheckResolver({ server: options.resolver ?? ctx.config.blocklists.resolver, timeoutMs: ctx.config.blocklists.timeoutMs });
  const targets = await domainsToCheck(ctx.database, ctx.config, today, options.domains);
  for (const d of options.domains ?? []) {
    if (!targets.some((t) => t.domain === d.toLowerCase())) targets.push({ domain: d.toLowerCase(), origin: 'command line', ips: [], dailyVolume: null, authBounces: 0 });
  }
  const results: AuthCheckResult[] = [];
  for (const target of targets) {
    const selectors = ctx.config.auth.dkimSelectors[target.domain] ?? [];
    results.push(await checkDomain(target, selectors, resolver, ctx.config.thresholds.bulkSenderDailyVolume));
  }
  await ctx.database.transaction((session) => storeAuthResults(session, results, at));
  ctx.logger?.info({ check: 'auth', domains: results.length, flagged: results.filter((r) => r.flagged).length }, 'sending domains checked');
  return results.sort((a, b) => Number(b.flagged) - Number(a.flagged) || a.domain.localeCompare(b.domain));
}

const DNS_FAILURE = /\b(ECONNREFUSED|ETIMEOUT|ESERVFAIL|EREFUSED|ECANCELLED|ECONNRESET|EAI_AGAIN)\b/;

/**
 * Why a domain could not be judged (a DNS outage, not a failing record), or null when every lookup got an
 * answer. A lookup that failed says nothing about the domain's records, so it must not read as "fails".
 */
export function dnsFailure(r: Pick<AuthCheckResult, 'spf' | 'dkim' | 'dmarc' | 'problems'>): string | null {
  const reasons = new Set<string>();
  if (r.spf.result === 'temperror') {
    const code = r.problems.map((p) => /SPF lookup failed for \S+ \(([^)]+)\)/.exec(p)?.[1]).find(Boolean);
    reasons.add(`SPF ${code ?? 'temporary error'}`);
  }
  for (const [selector, outcome] of Object.entries(r.dkim.selectors)) {
    const code = DNS_FAILURE.exec(outcome)?.[1];
    if (code) reasons.add(`DKIM ${selector} ${code}`);
  }
  if (r.dmarc.result === 'temperror') reasons.add('DMARC temporary error');
  return reasons.size ? [...reasons].join(', ') : null;
}

