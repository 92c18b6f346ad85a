import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';
import { describeEachBackend } from '../support/backends.js';
import { configSchema } from '../../config/schema.js';
import { fixedClock } from '../../lib/clock.js';
import { createCheckResolver } from '../../checks/dns-resolver.js';
import { dnsblQueryName, interpretAnswer, zoneInfo } from '../../checks/dnsbl/zones.js';
import { queryBlocklists, runBlocklistCheck } from '../../checks/dnsbl/check-blocklists.js';
import { computeDecisions } from '../../transform/decisions.js';
import { loadDelistingOverview } from '../../delisting/report-data.js';
import { configuredJobs } from '../../jobs/definitions.js';
import type { JobContext } from '../../jobs/types.js';
import { createLogger } from '../../lib/logger.js';

let dns: DnsServer;
beforeAll(async () => {
  dns = await startDnsServer({
    // 203.0.113.13 is on Spamhaus SBL and SpamCop; 203.0.113.14 is only answered with Spamhaus's
    // "public resolver" code; 203.0.113.15's SpamCop lookup never answers (timeout).
    '13.113.0.203.zen.spamhaus.org': { A: ['127.0.0.2'], TXT: ['Listed in SBL, see https://check.spamhaus.org/sbl/query/SBL123'] },
    '13.113.0.203.bl.spamcop.net': { A: ['127.0.0.2'] },
    '14.113.0.203.zen.spamhaus.org': { A: ['127.255.255.254'] },
    '15.113.0.203.bl.spamcop.net': { drop: true },
    '16.113.0.203.bl.spamcop.net': { rcode: 'SERVFAIL' },
    '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org': { A: ['127.0.0.3'] },
    // RFC 5782 test entries: every blocklist lists 127.0.0.2 and never 127.0.0.1. wild.example lists
    // everything; dark.example answers nothing (a closed network, a resolver hiding answers).
    '2.0.0.127.zen.spamhaus.org': { A: ['127.0.0.2', '127.0.0.4', '127.0.0.10'] },
    '2.0.0.127.bl.spamcop.net': { A: ['127.0.0.2'] },
    '2.0.0.127.wild.example': { A: ['127.0.0.2'] },
    '1.0.0.127.wild.example': { A: ['127.0.0.2'] },
    '13.113.0.203.wild.example': { A: ['127.0.0.2'] },
    // slow.example never answers, not even its test entries.
    '2.0.0.127.slow.example': { drop: true },
    '1.0.0.127.slow.example': { drop: true },
  });
});
afterAll(async () => dns?.close());

describe('DNSBL query names and answers', () => {
  it('reverses octets for IPv4 and nibbles for IPv6', () => {
    expect(dnsblQueryName('203.0.113.13', 'zen.spamhaus.org')).toBe('13.113.0.203.zen.spamhaus.org');
    expect(dnsblQueryName('2001:db8::1', 'zen.spamhaus.org')).toBe('1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org');
  });
  it('reads Spamhaus 127.255.255.x as a refused query, never a listing', () => {
    for (const code of ['127.255.255.252', '127.255.255.254', '127.255.255.255']) {
      const r = interpretAnswer(zoneInfo('zen.spamhaus.org'), [code]);
      expect(r.outcome).toBe('refused');
      expect(r.meaning).toMatch(/query refused/);
    }
    expect(interpretAnswer(zoneInfo('zen.spamhaus.org'), ['127.0.0.4'])).toEqual({ outcome: 'listed', meaning: expect.stringMatching(/XBL/) });
    expect(interpretAnswer(zoneInfo('bl.spamcop.net'), ['10.0.0.1']).outcome).toBe('error');
    expect(interpretAnswer(zoneInfo('bl.spamcop.net'), []).outcome).toBe('not_listed');
  });
  it('queries a real DNS server with a timeout and a concurrency limit', async () => {
    const resolver = createCheckResolver({ server: dns.address, timeoutMs: 300 });
    const results = await queryBlocklists({
      ips: ['203.0.113.13', '203.0.113.14', '203.0.113.15', '203.0.113.16', '2001:db8::1'],
      zones: ['zen.spamhaus.org', 'bl.spamcop.net'],
      resolver,
      concurrency: 3,
    });
    const by = (ip: string, zone: string) => results.find((r) => r.ip === ip && r.zone === zone)!;
    expect(results).toHaveLength(10);
    expect(by('203.0.113.13', 'zen.spamhaus.org')).toMatchObject({ listed: true, outcome: 'listed', answer: ['127.0.0.2'], txt: expect.stringContaining('SBL123') });
    expect(by('203.0.113.13', 'bl.spamcop.net')).toMatchObject({ listed: true });
    expect(by('203.0.113.14', 'zen.spamhaus.org')).toMatchObject({ listed: false, outcome: 'refused', answer: ['127.255.255.254'] });
    expect(by('203.0.113.14', 'bl.spamcop.net')).toMatchObject({ listed: false, outcome: 'not_listed', answer: [] });
    expect(by('203.0.113.15', 'bl.spamcop.net')).toMatchObject({ listed: false, outcome: 'error', error: 'timed out' });
    expect(by('203.0.113.16', 'bl.spamcop.net')).toMatchObject({ listed: false, outcome: 'error', error: 'server failure' });
    expect(by('2001:db8::1', 'zen.spamhaus.org')).toMatchObject({ listed: true, meaning: expect.stringMatching(/CSS/) });
  });

  it('a zone that does not list its test address 127.0.0.2, or lists 127.0.0.1, gives errors with the reason, never a clean or listed IP', async () => {
    const resolver = createCheckResolver({ server: dns.address, timeoutMs: 300 });
    const results = await queryBlocklists({ ips: ['203.0.113.13', '203.0.113.14'], zones: ['dark.example', 'wild.example', 'bl.spamcop.net'], resolver, concurrency: 4 });
    const by = (ip: string, zone: string) => results.find((r) => r.ip === ip && r.zone === zone)!;
    for (const ip of ['203.0.113.13', '203.0.113.14']) {
      expect(by(ip, 'dark.example')).toMatchObject({ listed: false, outcome: 'error', error: expect.stringMatching(/dark\.example does not list its RFC 5782 test address 127\.0\.0\.2/) });
      expect(by(ip, 'wild.example')).toMatchObject({ listed: false, outcome: 'error', error: expect.stringMatching(/wild\.example lists 127\.0\.0\.1.*answers "listed" for everything/) });
    }
    // A zone that passes its self-test answers as usual.
    expect(by('203.0.113.13', 'bl.spamcop.net')).toMatchObject({ listed: true, outcome: 'listed' });
    expect(by('203.0.113.14', 'bl.spamcop.net')).toMatchObject({ listed: false, outcome: 'not_listed' });
  });

  it('a zone whose test queries get no answer is not asked about the IPs (each would wait out the timeout)', async () => {
    const resolver = createCheckResolver({ server: dns.address, timeoutMs: 300 });
    const ips = Array.from({ length: 30 }, (_, i) => `198.51.100.${i + 1}`);
    const results = await queryBlocklists({ ips, zones: ['slow.example'], resolver, concurrency: 4 });
    expect(results).toHaveLength(30);
    for (const r of results) expect(r).toMatchObject({ listed: false, outcome: 'error', error: "not looked up: the resolver did not answer slow.example's test queries (timed out)" });
    expect(dns.queries.filter((q) => q.includes('slow.example') && !q.includes('.0.0.127.'))).toEqual([]);
  });
});

describeEachBackend('blocklist check job', (db) => {
  const config = configSchema.parse({ blocklists: { zones: ['zen.spamhaus.org', 'bl.spamcop.net'], timeoutMs: 300 } });
  it('stores history, marks new listings once and makes the IP at_risk with dnsbl_listed', async () => {
    const database = db();
    const ctx = { database, config, clock: fixedClock('2026-11-24T05:30:00Z') };
    const first = await runBlocklistCheck(ctx, { ips: ['203.0.113.13', '203.0.113.14'], resolver: dns.address });
    expect(first.newListings).toBe(2);
    const second = await runBlocklistCheck({ ...ctx, clock: fixedClock('2026-11-24T17:30:00Z') }, { ips: ['203.0.113.13', '203.0.113.14'], resolver: dns.address });
    expect(second.newListings).toBe(0);
    expect(second.results.filter((r) => r.listed).every((r) => !r.newListing)).toBe(true);

    const history = await database.query<{ n: number; new_listings: number; refused: number }>(
      `select count(*)::int as n, count(*) filter (where new_listing)::int as new_listings,
              count(*) filter (where outcome = 'refused')::int as refused from repwatch.dnsbl_result`,
    );
    expect(history[0]).toEqual({ n: 8, new_listings: 2, refused: 2 });
    const evidence = await database.query<{ ip: string; n: number }>(
      `select host(ip) as ip, count(*)::int as n from repwatch.block_evidence where source = 'dnsbl' group by ip`,
    );
    expect(evidence).toEqual([{ ip: '203.0.113.13', n: 2 }]);

    const decisions = await computeDecisions(database, config, '2026-11-24');
    const d = decisions.find((x) => x.ip === '203.0.113.13');
    expect(d).toMatchObject({ status: 'at_risk', blocked: false });
    expect(d!.reasons).toContain('dnsbl_listed');
    expect(decisions.find((x) => x.ip === '203.0.113.14')).toBeUndefined();

    const overview = await loadDelistingOverview(database, '2026-11-24');
    expect(overview.blocklists.map((b) => [b.ip, b.zone, b.outcome, b.listedSince])).toEqual([
      ['203.0.113.13', 'bl.spamcop.net', 'listed', '2026-11-24'],
      ['203.0.113.13', 'zen.spamhaus.org', 'listed', '2026-11-24'],
      ['203.0.113.14', 'zen.spamhaus.org', 'refused', null],
    ]);
    expect(overview.cleanPairs).toBe(1);
    expect(overview.blocklistsCheckedAt?.toISOString()).toBe('2026-11-24T17:30:00.000Z');
    expect((await loadDelistingOverview(database, '2026-11-23')).blocklists).toEqual([]);
  });

  it('the scheduled job fails (to be retried) when not one lookup is answered, and succeeds when some are', async () => {
    const database = db();
    const clock = fixedClock('2026-11-24T05:30:00Z');
    const jobFor = (resolver: string) => {
      const jobConfig = configSchema.parse({ blocklists: { zones: ['zen.spamhaus.org', 'bl.spamcop.net'], timeoutMs: 300, resolver } });
      const job = configuredJobs(jobConfig).find((j) => j.name === 'blocklists')!;
      return (period: string) => job.run({ job: job.name, period, runId: 0, database, config: jobConfig, logger: createLogger({ level: 'silent' }), clock, fetch, home: '/nonexistent', signal: new AbortController().signal } as JobContext);
    };
    // A UDP port nobody listens on: every query fails at once.
    const dead = jobFor('127.0.0.1:9');
    await expect(dead('2026-11-24')).rejects.toThrow(/no blocklist lookup was answered \(\d+ errors, e\.g\. .+\): check blocklists\.resolver/);
    // The IPs checked are the ones known from the data (203.0.113.13's evidence from the test above).
    const alive = await jobFor(dns.address)('2026-11-24');
    expect(alive.rowsIn).toBeGreaterThan(0);
    expect(alive.rowsLoaded).toBe(alive.rowsIn);
  });
});
