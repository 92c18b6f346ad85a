import { isStrictIp } from '../../checks/ip-address.js';
import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import { parseFormat, toJson, toTable } from '../output.js';
import { runBlocklistCheck } from '../../checks/dnsbl/check-blocklists.js';
import { dnsFailure, runAuthCheck, type AuthCheckResult } from '../../checks/auth/check-auth.js';
import { isResolverAddress, RESOLVER_HINT } from '../../config/schema.js';
import { wrapWords } from '../../lib/wrap.js';

const RESOLVER_HELP = 'DNS server to ask, as IP, IP:port or [IPv6]:port (default: blocklists.resolver, else the system resolver)';

function checkResolverOption(resolver: string | undefined): void {
  if (resolver !== undefined && !isResolverAddress(resolver)) throw new UsageError(`--resolver ${RESOLVER_HINT}`);
}

/**
 * `repwatch check blocklists | auth`: the seed article's "check the IP is on no other blacklist" and
 * "meet the authentication rules". Exit codes: 0 checked (listings and failures are results, shown and
 * stored); 1 when no query got an answer (resolver unreachable); 2 usage.
 */
export function registerCheck(program: Command, run: CommandRunner): void {
  const check = program.command('check').description('DNS blocklist and bulk-sender authentication checks');

  check
    .command('blocklists')
    .description('query DNSBL zones for our IPs; results kept with history, listings become dnsbl_listed evidence')
    .option('--ip <ips...>', 'IPs to check')
    .option('--all', 'every IP with SNDS data, complaints or bounces in the last 28 days (the default)')
    .option('--zones <zones>', 'comma-separated zones (default: blocklists.zones, else the documented default list)')
    .option('--resolver <ip:port>', RESOLVER_HELP)
    .option('--format <format>', 'table or json (default: table on a terminal, else json)')
    .action((o: { ip?: string[]; all?: boolean; zones?: string; resolver?: string; format?: string }) =>
      run(async (ctx) => {
        if (o.ip && o.all) throw new UsageError('give --ip or --all, not both');
        const bad = (o.ip ?? []).filter((ip) => !isStrictIp(ip));
        if (bad.length > 0) throw new UsageError(`--ip: not an IP address: ${bad.join(', ')}`);
        const zones = o.zones?.split(',').map((z) => z.trim().toLowerCase()).filter(Boolean);
        if (zones && zones.length === 0) throw new UsageError('--zones: give at least one zone');
        checkResolverOption(o.resolver);
        const fmt = parseFormat(o.format, ['table', 'json'], ctx.stdout.isTTY);
        const database = await ctx.database();
        const result = await runBlocklistCheck(
          { database, config: ctx.config, clock: ctx.clock, logger: ctx.logger },
          { ...(o.ip ? { ips: o.ip } : {}), ...(zones ? { zones } : {}), ...(o.resolver ? { resolver: o.resolver } : {}) },
        );
        const rows = result.results.map((r) => ({ ip: r.ip, zone: r.zone, listed: r.listed, outcome: r.outcome, answer: r.answer, meaning: r.meaning, txt: r.txt, error: r.error, newListing: r.newListing }));
        if (fmt === 'json') ctx.stdout.write(toJson(rows));
        else {
          ctx.stdout.write(
            rows.length === 0
              ? 'no IPs to check (no SNDS data, complaints or bounces in the last 28 days; give --ip)\n'
              : toTable(
                  rows.map((r) => ({ ...r, listed: r.listed ? (r.newListing ? 'NEW' : 'yes') : 'no', detail: r.meaning ?? r.error ?? '' })),
                  [{ key: 'ip', max: 15 }, { key: 'zone', max: 22 }, { key: 'listed' }, { key: 'outcome', max: 10 }, { key: 'detail', max: 20 }],
                ),
          );
        }
        const answered = result.results.filter((r) => r.outcome !== 'error').length;
        return result.results.length > 0 && answered === 0 ? ExitCode.failed : ExitCode.ok;
      }),
    );

  check
    .command('auth')
    .description('SPF, DKIM and DMARC of our sending domains (Outlook.com bulk-sender rules); failing domains above the daily volume are flagged')
    .option('--domain <domains...>', 'only these domains (default: auth.domains and the From domains seen in complaints and bounces)')
    .option('--resolver <ip:port>', RESOLVER_HELP)
    .option('--format <format>', 'table or json')
    .addHelpText('after', '\nExit codes: 0 checked (failing domains are results), 1 no domain could be checked (every one hit a DNS error), 2 usage.')
    .action((o: { domain?: string[]; resolver?: string; format?: string }) =>
      run(async (ctx) => {
        const fmt = parseFormat(o.format, ['table', 'json'], ctx.stdout.isTTY);
        checkResolverOption(o.resolver);
        const database = await ctx.database();
        const checked = await runAuthCheck(
          { database, config: ctx.config, clock: ctx.clock, logger: ctx.logger },
          { ...(o.domain ? { domains: o.domain } : {}), ...(o.resolver ? { resolver: o.resolver } : {}) },
        );
        // A domain whose lookups failed is "could not check", never "fails": a DNS outage is not a broken
        // record. It stays FLAGGED only when Outlook.com's own 5.7.515 bounces say so (runAuthCheck decides,
        // and stores the same flag: the CLI, analytics.auth_latest and the report agree).
        const results = checked.map((r) => {
          const dnsError = dnsFailure(r);
          return { ...r, checked: dnsError === null, dnsError };
        });
        if (fmt === 'json') ctx.stdout.write(toJson(results));
        else if (results.length === 0) ctx.stdout.write('no sending domains known: configure auth.domains or give --domain\n');
        else {
          ctx.stdout.write(
            toTable(
              results.map((r) => ({ domain: r.domain, spf: r.spf.result, dkim: r.dkim.result, dmarc: r.dmarc.policy ? `${r.dmarc.result} p=${r.dmarc.policy}` : r.dmarc.result, volume: r.dailyVolume, flag: r.dnsError ? `${r.flagged ? 'FLAGGED (5.7.515 bounces); ' : ''}could not check (DNS: ${r.dnsError})` : r.flagged ? 'FLAGGED' : r.meetsRequirement ? 'ok' : 'fails' })),
              [{ key: 'domain', max: 20 }, { key: 'spf', max: 9 }, { key: 'dkim', max: 14 }, { key: 'dmarc', max: 14 }, { key: 'volume', align: 'right' }, { key: 'flag' }],
            ),
          );
          for (const r of results.filter((x) => x.problems.length > 0)) ctx.stdout.write(`\n${r.domain}:\n${r.problems.map((p) => wrapWords(`- ${p}`, 80, '  ', '    ')).join('\n')}\n`);
        }
        const unchecked = results.filter((r) => !r.checked);
        if (unchecked.length > 0) {
          ctx.logger.warn({ job: 'auth', unchecked: unchecked.map((r) => r.domain) }, `${unchecked.length} of ${results.length} domain(s) could not be checked: DNS lookups failed (is the resolver reachable?)`);
        }
        return results.length > 0 && unchecked.length === results.length ? ExitCode.failed : ExitCode.ok;
      }),
    );
}
