import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';
import { describeEachBackend } from '../support/backends.js';
import { configSchema } from '../../config/schema.js';
import { fixedClock } from '../../lib/clock.js';
import { dnsFailure, runAuthCheck } from '../../checks/auth/check-auth.js';

const publicKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

let dns: DnsServer;
beforeAll(async () => {
  dns = await startDnsServer({
    // good.example: everything in place.
    'good.example': { TXT: ['v=spf1 ip4:203.0.113.0/24 -all'] },
    's1._domainkey.good.example': { TXT: [[`v=DKIM1; k=rsa; p=${publicKey}`]] },
    '_dmarc.good.example': { TXT: ['v=DMARC1; p=none; rua=mailto:dmarc@good.example'] },
    // bad.example: SPF that does not cover our IP, no DKIM key, no DMARC.
    'bad.example': { TXT: ['v=spf1 ip4:192.0.2.0/24 -all'] },
    // small.example: fails too, but sends little.
    'small.example': { TXT: ['v=spf1 ip4:192.0.2.0/24 -all'] },
  });
});
afterAll(async () => dns?.close());

describeEachBackend('bulk-sender authentication', (db) => {
  it('checks SPF, DKIM and DMARC through DNS and flags failing domains above the volume threshold', async () => {
    const database = db();
    // SNDS volume for the IPs: 203.0.113.20 sends 6,000 a day for bad.example, 203.0.113.21 100 for small.example.
    await database.query(
      `insert into repwatch.ip_day_fact (ip, day, message_recipients, has_snds) values
         ('203.0.113.20', '2026-11-23', 6000, true), ('203.0.113.20', '2026-11-24', 5500, true),
         ('203.0.113.21', '2026-11-24', 100, true), ('203.0.113.22', '2026-11-24', 9000, true)`,
    );
    await database.query(
      `insert into repwatch.mail_message (stream, mailbox, message_key, sha256, byte_size, classification)
       values ('bounces', 't', 'k1', 'x', 1, 'dsn'), ('bounces', 't', 'k2', 'y', 1, 'dsn'), ('bounces', 't', 'k3', 'z', 1, 'dsn')`,
    );
    await database.query(
      `insert into repwatch.bounce (message_ref, seq, mailbox, format, day, ip, sender_domain, ms_codes)
       select id, 0, 't', 'dsn', '2026-11-24', case message_key when 'k1' then '203.0.113.20'::inet when 'k2' then '203.0.113.21'::inet else '203.0.113.22'::inet end,
              case message_key when 'k1' then 'bad.example' when 'k2' then 'small.example' else 'good.example' end, '{}'
       from repwatch.mail_message where stream = 'bounces'`,
    );
    const config = configSchema.parse({ auth: { domains: ['good.example'], dkimSelectors: { 'good.example': ['s1'], 'bad.example': ['s1'] } } });
    const results = await runAuthCheck({ database, config, clock: fixedClock('2026-11-24T12:00:00Z') }, { resolver: dns.address });
    const by = new Map(results.map((r) => [r.domain, r]));

    expect(by.get('good.example')).toMatchObject({
      spf: { result: 'pass', ips: { '203.0.113.22': 'pass' } },
      dkim: { result: 'pass' },
      dmarc: { result: 'pass', policy: 'none', alignment: 'spf+dkim' },
      dailyVolume: 9000,
      meetsRequirement: true,
      flagged: false,
    });
    expect(by.get('bad.example')).toMatchObject({
      spf: { result: 'fail', ips: { '203.0.113.20': 'fail' } },
      dkim: { result: 'fail', selectors: { s1: 'no key published' } },
      dmarc: { result: 'none' },
      dailyVolume: 6000,
      meetsRequirement: false,
      flagged: true,
    });
    expect(by.get('bad.example')!.problems.join('\n')).toMatch(/DMARC/);
    expect(by.get('small.example')).toMatchObject({ meetsRequirement: false, flagged: false, dailyVolume: 100, dkim: { result: 'not_configured' } });
    expect(results[0]!.domain).toBe('bad.example');

    const stored = await database.query<{ domain: string; flagged: boolean }>('select domain, flagged from analytics.auth_latest order by domain');
    expect(stored).toEqual([
      { domain: 'bad.example', flagged: true },
      { domain: 'good.example', flagged: false },
      { domain: 'small.example', flagged: false },
    ]);
  });

  it('a DNS outage is not a failing domain: not flagged, stored as not flagged, the reason kept', async () => {
    const database = db();
    // down.example sends 8,000 a day from 203.0.113.30: above the threshold, so a real failure would flag it.
    await database.query(`insert into repwatch.ip_day_fact (ip, day, message_recipients, has_snds) values ('203.0.113.30', '2026-11-24', 8000, true) on conflict do nothing`);
    await database.query(`insert into repwatch.mail_message (stream, mailbox, message_key, sha256, byte_size, classification) values ('bounces', 't', 'k-down', 'w', 1, 'dsn')`);
    await database.query(
      `insert into repwatch.bounce (message_ref, seq, mailbox, format, day, ip, sender_domain, ms_codes)
       select id, 0, 't', 'dsn', '2026-11-24', '203.0.113.30'::inet, 'down.example', '{}' from repwatch.mail_message where message_key = 'k-down'`,
    );
    const config = configSchema.parse({ auth: { domains: ['down.example'], dkimSelectors: { 'down.example': ['s1'] } } });
    // Nothing listens on port 1: every lookup fails.
    const results = await runAuthCheck({ database, config, clock: fixedClock('2026-11-24T12:00:00Z') }, { resolver: '127.0.0.1:1', domains: ['down.example'] });
    const down = results.find((r) => r.domain === 'down.example')!;
    expect(down.dailyVolume).toBe(8000);
    expect(down.flagged).toBe(false);
    expect(dnsFailure(down)).toMatch(/SPF|DMARC|DKIM/);
    const [stored] = await database.query<{ flagged: boolean }>(`select flagged from analytics.auth_latest where domain = 'down.example'`);
    expect(stored).toEqual({ flagged: false });
  });
});
