import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../db/connection.js';
import { migrate } from '../../db/migrate.js';
import { fixedClock } from '../../lib/clock.js';
import { backends } from '../support/backends.js';
import { runCliCaptured } from '../support/run-cli.js';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';
import { buildBounce, toMbox, type BounceSpec } from '../../demo/generate-bounces.js';
import { configSchema } from '../../config/schema.js';

const at = (day: string, hour = 10) => new Date(`${day}T${String(hour).padStart(2, '0')}:00:00Z`);
const bounce = (code: string, ip: string, day: string, id: string, recipient = 'someone@hotmail.com'): BounceSpec => ({ code, ip, recipient, senderDomain: 'shop.example', at: at(day), id });

function writeMbox(dir: string, name: string, specs: BounceSpec[]): string {
  const path = join(dir, name);
  writeFileSync(path, toMbox(specs.map((s) => ({ at: s.at, text: buildBounce(s) }))));
  return path;
}

/**
 * SNDS rows for the window (written straight into snds_row, only the columns the decisions read), so
 * the IPs have decisions; 203.0.113.9 hit spam traps (fix_first once blocked).
 */
async function seed(database: Database): Promise<void> {
  const [download] = await database.query<{ id: number }>(
    `insert into repwatch.raw_download (source, kind, feed, location, sha256, byte_size, outcome)
     values ('file', 'ip_data', 'main', 'test', 'x', 0, 'loaded') returning id`,
  );
  let line = 0;
  for (let d = 18; d <= 26; d++) {
    await database.query(`insert into repwatch.snds_feed_day (feed, day, download_id, row_count) values ('main', $1::date, $2, 5)`, [`2026-11-${d}`, download!.id]);
    for (const ip of ['203.0.113.12', '203.0.113.13', '198.51.100.24', '198.51.100.27', '203.0.113.9']) {
      await database.query(
        `insert into repwatch.snds_row (feed, day, ip, activity_start_raw, download_id, line_no, message_recipients, filter_result, trap_hits)
         values ('main', $1::date, $2::inet, 'raw', $3, $4, 2000, 'GREEN', $5)`,
        [`2026-11-${d}`, ip, download!.id, ++line, ip === '203.0.113.9' && d === 20 ? 4 : 0],
      );
    }
  }
}

for (const backend of backends()) {
  const label = backend.available ? backend.name : `${backend.name}: SKIPPED, ${backend.skipReason}`;
  describe.skipIf(!backend.available)(`repwatch delist and check [${label}]`, () => {
    let env: NodeJS.ProcessEnv = {};
    let drop: () => Promise<void> = async () => undefined;
    let dir = '';
    let dns: DnsServer;
    const clock = fixedClock('2026-11-24T12:00:00Z');

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'repwatch-delist-'));
      // The zone's RFC 5782 test entry, as every blocklist answers it.
      dns = await startDnsServer({ '13.113.0.203.zen.spamhaus.org': { A: ['127.0.0.2'] }, '2.0.0.127.zen.spamhaus.org': { A: ['127.0.0.2'] } });
      if (backend.name === 'postgres') {
        const handle = await backend.create();
        await seed(handle.database);
        env = { DATABASE_URL: handle.url!, REPWATCH_HOME: dir };
        drop = handle.drop;
      } else {
        const database = await openDatabase({ home: dir });
        await migrate(database);
        await seed(database);
        await database.close();
        env = { REPWATCH_HOME: dir };
      }
      const mbox = writeMbox(dir, 'bounces.mbox', [
        bounce('S3140', '203.0.113.13', '2026-11-21', 'c1'),
        bounce('S3140', '203.0.113.12', '2026-11-22', 'c2', 'someone@live.com'),
        bounce('S3140', '203.0.113.13', '2026-11-23', 'c3'),
        bounce('S3140', '203.0.113.9', '2026-11-23', 'c4'),
        bounce('5.7.606', '198.51.100.27', '2026-11-22', 'c5', 'someone@contoso.com'),
        bounce('5.7.511', '198.51.100.24', '2026-11-23', 'c6', 'someone@contoso.com'),
      ]);
      const ingested = await runCliCaptured(['ingest', 'bounces', '--mbox', mbox, '--format', 'json'], { env, clock });
      expect(ingested.stderr).not.toMatch(/"level":(40|50|60)/);
      expect(ingested.code).toBe(0);
      expect(JSON.parse(ingested.stdout)).toMatchObject({ stored: 6, evidence: 6, quarantined: 0 });
      await runCliCaptured(['transform', '--rebuild'], { env, clock });
    });
    afterAll(async () => {
      await dns?.close();
      await drop();
    });

    it('drafts the Outlook.com form with the IPs collapsed to CIDR, the domains and the full error text', async () => {
      const result = await runCliCaptured(['delist', 'draft', '--ip', '203.0.113.13', '--as-of', '2026-11-24', '--contact-email', 'postmaster@shop.example'], { env, clock });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/== outlook_form/);
      expect(result.stdout).toMatch(/Outgoing IP addresses or ranges: 203\.0\.113\.12\/31\n/);
      expect(result.stdout).toMatch(/Sender domain: shop\.example\n/);
      expect(result.stdout).toMatch(/Recipient domain: hotmail\.com\n/);
      expect(result.stdout).toMatch(/Contact email address: postmaster@shop\.example\n/);
      expect(result.stdout).toMatch(/Error messages: 550 5\.7\.1 Unfortunately, messages from \[203\.0\.113\.13\] weren't sent\. .*\(S3140\)/);
      expect(result.stdout).toMatch(/automatic answer arrives within 12 hours/);
      expect(result.stdout).not.toMatch(/CHECK FIRST/);
    });

    it('says to check first when days of the window have no SNDS data yet (they count as clean), naming the date with full data', async () => {
      const later = fixedClock('2026-11-29T12:00:00Z');
      const result = await runCliCaptured(['delist', 'draft', '--ip', '203.0.113.13', '--as-of', '2026-11-28'], { env, clock: later });
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/status start_delisting/);
      expect(result.stdout).toMatch(
        /CHECK FIRST: SNDS data covers 5 of the 7 days of the window 2026-11-22 … 2026-11-28 \(the latest day with data from every feed is 2026-11-26\): days without data count as clean in this decision\. .*draft again, or check the IP's complaints, trap hits and filter days on full data with repwatch flags --as-of 2026-11-26 \(the block list of 2026-11-28 does not count there\)\./,
      );
      const json = await runCliCaptured(['delist', 'draft', '--ip', '203.0.113.13', '--as-of', '2026-11-28', '--format', 'json'], { env, clock: later });
      expect(JSON.parse(json.stdout).caveats).toHaveLength(1);
    });

    it('takes --server-type in any case and refuses a server type or contact email the form would reject (exit 2)', async () => {
      const ok = await runCliCaptured(['delist', 'draft', '--ip', '203.0.113.13', '--as-of', '2026-11-24', '--server-type', 'Dedicated'], { env, clock });
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/Server type: dedicated\n/);
      const type = await runCliCaptured(['delist', 'draft', '--ip', '203.0.113.13', '--as-of', '2026-11-24', '--server-type', 'cloud'], { env, clock });
      expect(type.code).toBe(2);
      expect(type.stderr).toMatch(/--server-type must be dedicated or shared, not cloud/);
      expect(type.stdout).toBe('');
      const email = await runCliCaptured(['delist', 'draft', '--ip', '203.0.113.13', '--as-of', '2026-11-24', '--contact-email', 'postmaster at shop.example'], { env, clock });
      expect(email.code).toBe(2);
      expect(email.stderr).toMatch(/--contact-email: not an email address: postmaster at shop\.example/);
    });

    it('drafts from decisions made with its own thresholds, recomputing those a one-off --config stored', async () => {
      const strict = join(dir, 'strict.yaml');
      writeFileSync(strict, 'thresholds:\n  complaintRateWarn: 0.00001\n  complaintRateMax: 0.0001\n');
      expect((await runCliCaptured(['--config', strict, 'flags', '--as-of', '2026-11-24', '--format', 'json'], { env, clock })).code).toBe(0);
      const warnOf = async () => {
        const db = await openDatabase(env.DATABASE_URL ? { url: env.DATABASE_URL } : { home: dir });
        const rows = await db.query<{ warn: number }>(`select distinct complaint_rate_warn as warn from repwatch.ip_flag where as_of = '2026-11-24'`);
        await db.close();
        return rows.map((r) => r.warn);
      };
      expect(await warnOf()).toEqual([0.00001]);
      expect((await runCliCaptured(['delist', 'draft', '--ip', '203.0.113.13', '--as-of', '2026-11-24'], { env, clock })).code).toBe(0);
      expect(await warnOf()).toEqual([configSchema.parse({}).thresholds.complaintRateWarn]);
    });

    it('refuses the draft for a fix_first IP with the reasons and what to fix (exit 1)', async () => {
      const result = await runCliCaptured(['delist', 'draft', '--ip', '203.0.113.9', '--as-of', '2026-11-24'], { env, clock });
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/REFUSED: 203\.0\.113\.9 is fix_first/);
      expect(result.stdout).toMatch(/trap_hits: Mail hit spam traps/);
      expect(result.stdout).not.toMatch(/== outlook_form/);
    });

    it('gives the portal steps for 5.7.606 and the NDR to forward for 5.7.511', async () => {
      const portal = await runCliCaptured(['delist', 'draft', '--ip', '198.51.100.27', '--as-of', '2026-11-24', '--format', 'json'], { env, clock });
      expect(portal.code).toBe(0);
      const draft = JSON.parse(portal.stdout) as { drafts: { route: string; visits: { ip: string }[]; steps: string[] }[] };
      expect(draft.drafts.map((d) => d.route)).toEqual(['office365_portal']);
      expect(draft.drafts[0]!.visits).toEqual([{ ip: '198.51.100.27', email: '<the address the NDR was sent to>' }]);
      expect(draft.drafts[0]!.steps.join(' ')).toMatch(/one address and one IP per visit.*confirmation email.*within 24 hours/);

      const ndr = join(dir, 'ndr.eml');
      const email = await runCliCaptured(['delist', 'draft', '--ip', '198.51.100.24', '--as-of', '2026-11-24', '--save-ndr', ndr], { env, clock });
      expect(email.code).toBe(0);
      expect(email.stdout).toMatch(/Attach: stored NDR #\d+ <c6@mta1\.shop\.example>/);
      expect(email.stdout).toMatch(/delist@microsoft\.com/);
      expect(readFileSync(ndr, 'utf8')).toMatch(/550 5\.7\.511 Access denied, banned sender\[198\.51\.100\.24\]/);
    });

    it('with a 5.7.511 NDR as well, the forwarded NDR comes first and the portal draft says it cannot be used yet', async () => {
      const mbox = writeMbox(dir, 'banned.mbox', [bounce('5.7.511', '198.51.100.27', '2026-11-23', 'c7', 'someone@contoso.com')]);
      expect((await runCliCaptured(['ingest', 'bounces', '--mbox', mbox], { env, clock })).code).toBe(0);
      const both = await runCliCaptured(['delist', 'draft', '--ip', '198.51.100.27', '--as-of', '2026-11-24', '--format', 'json'], { env, clock });
      expect(both.code).toBe(0);
      const draft = JSON.parse(both.stdout) as { decision: { route: string }; drafts: { route: string; steps: string[] }[] };
      // The decision's route keeps issue 8's order; the drafts follow the seed: no portal for a banned sender.
      expect(draft.decision.route).toBe('office365_portal');
      expect(draft.drafts.map((d) => d.route)).toEqual(['delist_email', 'office365_portal']);
      expect(draft.drafts[1]!.steps[0]).toMatch(/^Not while 5\.7\.511 applies/);
    });

    it('keeps a case with every message, and a block after it closed raises reason relisted', async () => {
      const opened = await runCliCaptured(['delist', 'open', '--ip', '203.0.113.13', '--route', 'outlook_form', '--note', 'form sent', '--format', 'json'], { env, clock });
      expect(opened.code).toBe(0);
      const id = (JSON.parse(opened.stdout) as { id: number }).id;
      const reply = join(dir, 'reply.txt');
      writeFileSync(reply, 'Dear sender, We have completed our review... Mitigated.');
      const noted = await runCliCaptured(['delist', 'note', '--case', String(id), '--state', 'mitigated', '--message-file', reply, '--direction', 'in', '--format', 'table'], { env, clock: fixedClock('2026-11-24T18:00:00Z') });
      expect(noted.code).toBe(0);
      expect(noted.stdout).toMatch(/mitigated \(2 message\(s\)\)/);

      // Blocked again on the 26th.
      const again = writeMbox(dir, 'again.mbox', [bounce('S3140', '203.0.113.13', '2026-11-26', 'c7')]);
      const ingested = await runCliCaptured(['ingest', 'bounces', '--mbox', again, '--format', 'json'], { env, clock: fixedClock('2026-11-26T12:00:00Z') });
      expect(JSON.parse(ingested.stdout)).toMatchObject({ relistedCases: [id] });

      const status = await runCliCaptured(['delist', 'status', '--ip', '203.0.113.13', '--format', 'json'], { env, clock });
      const cases = JSON.parse(status.stdout) as { id: number; state: string; messages: { state: string; body: string | null; direction: string | null }[] }[];
      expect(cases).toHaveLength(1);
      expect(cases[0]!.state).toBe('relisted');
      expect(cases[0]!.messages.map((m) => m.state)).toEqual(['requested', 'mitigated', 'relisted']);
      expect(cases[0]!.messages[1]).toMatchObject({ direction: 'in', body: 'Dear sender, We have completed our review... Mitigated.' });

      const flags = await runCliCaptured(['flags', '--as-of', '2026-11-26', '--format', 'json'], { env, clock: fixedClock('2026-11-26T12:00:00Z') });
      const flag = (JSON.parse(flags.stdout) as { ip: string; reasons: string[]; status: string }[]).find((f) => f.ip === '203.0.113.13');
      expect(flag?.reasons).toContain('relisted');

      const table = await runCliCaptured(['delist', 'status', '--format', 'table'], { env, clock });
      for (const line of table.stdout.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(80);
      expect(table.stdout).toMatch(new RegExp(`#${id} +203\\.0\\.113\\.13 +outlook_form +relisted`));
    });

    it('checks blocklists through the given resolver and prints one JSON object per IP and zone', async () => {
      const result = await runCliCaptured(['check', 'blocklists', '--ip', '203.0.113.13', '203.0.113.12', '--zones', 'zen.spamhaus.org', '--resolver', dns.address, '--format', 'json'], { env, clock });
      expect(result.code).toBe(0);
      const rows = JSON.parse(result.stdout) as { ip: string; zone: string; listed: boolean; answer: string[] }[];
      expect(rows.map((r) => [r.ip, r.zone, r.listed, r.answer])).toEqual([
        ['203.0.113.13', 'zen.spamhaus.org', true, ['127.0.0.2']],
        ['203.0.113.12', 'zen.spamhaus.org', false, []],
      ]);
    });

    it('checks the authentication of the sending domains seen in bounces, in a table that fits 80 columns', async () => {
      const result = await runCliCaptured(['check', 'auth', '--resolver', dns.address, '--format', 'table'], { env, clock });
      expect(result.code).toBe(0);
      for (const line of result.stdout.trimEnd().split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
      expect(result.stdout).toMatch(/^shop\.example +none +not_configured +none +\d[\d,]* +FLAGGED$/m);
      expect(result.stdout).toMatch(/no SPF record at shop\.example/);
    });

    it('during a DNS outage a domain with 5.7.515 bounces stays FLAGGED in the output, as stored; the others could not be checked', async () => {
      const ndr = writeMbox(dir, 'auth-bounce.mbox', [{ ...bounce('5.7.515', '203.0.113.13', '2026-11-23', 'auth1'), senderDomain: 'weak.example' }]);
      expect((await runCliCaptured(['ingest', 'bounces', '--mbox', ndr], { env, clock })).code).toBe(0);
      const result = await runCliCaptured(['--log-level', 'silent', 'check', 'auth', '--resolver', '127.0.0.1:1', '--domain', 'weak.example', 'shop.example', '--format', 'json'], { env, clock });
      expect(result.code).toBe(1); // no domain could be checked
      const rows = JSON.parse(result.stdout) as { domain: string; checked: boolean; flagged: boolean }[];
      expect(rows.map((r) => [r.domain, r.checked, r.flagged]).sort()).toEqual([
        ['shop.example', false, false],
        ['weak.example', false, true],
      ]);
      const db = await openDatabase(env.DATABASE_URL ? { url: env.DATABASE_URL } : { home: dir });
      const stored = await db.query<{ domain: string; flagged: boolean }>(`select domain, flagged from analytics.auth_latest where domain in ('weak.example', 'shop.example') order by domain`);
      await db.close();
      expect(stored).toEqual([
        { domain: 'shop.example', flagged: false },
        { domain: 'weak.example', flagged: true },
      ]);
      const table = await runCliCaptured(['--log-level', 'silent', 'check', 'auth', '--resolver', '127.0.0.1:1', '--domain', 'weak.example', '--format', 'table'], { env, clock });
      expect(table.stdout).toMatch(/weak\.example .*FLAGGED \(5\.7\.515 bounces\); could not check \(DNS: /);
    }, 60_000);

    it('refuses an as-of date after today (exit 2) and defaults to the latest SNDS day, as flags does', async () => {
      const today = fixedClock('2026-11-28T09:00:00Z');
      const future = await runCliCaptured(['delist', 'draft', '--ip', '203.0.113.13', '--as-of', '2026-12-15'], { env, clock: today });
      expect(future.code).toBe(2);
      expect(future.stderr).toMatch(/--as-of 2026-12-15 is after today \(2026-11-28, UTC\)/);
      expect((await runCliCaptured(['flags', '--as-of', '2026-11-29'], { env, clock: today })).code).toBe(2);

      // Decisions stored for a later date than the SNDS data (allowed: not in the future) must not
      // become the draft's default; the default is the latest day with SNDS data, as for flags.
      expect((await runCliCaptured(['flags', '--as-of', '2026-11-28', '--format', 'json'], { env, clock: today })).code).toBe(0);
      const flags = await runCliCaptured(['flags', '--format', 'table'], { env, clock: today });
      expect(flags.code).toBe(0);
      expect(flags.stdout).toMatch(/^Decisions as of 2026-11-26 /);
      const draft = await runCliCaptured(['delist', 'draft', '--ip', '203.0.113.13', '--format', 'json'], { env, clock: today });
      expect((JSON.parse(draft.stdout) as { asOf: string }).asOf).toBe('2026-11-26');
    });

    it('exits 2 on bad input and 1 when no DNS query is answered', async () => {
      expect((await runCliCaptured(['delist', 'draft', '--ip', 'not-an-ip'], { env, clock })).code).toBe(2);
      expect((await runCliCaptured(['delist', 'open', '--ip', '203.0.113.13', '--route', 'fax'], { env, clock })).code).toBe(2);
      expect((await runCliCaptured(['delist', 'note', '--case', '999', '--state', 'mitigated'], { env, clock })).code).toBe(2);
      expect((await runCliCaptured(['delist', 'note', '--case', '1', '--state', 'happy'], { env, clock })).code).toBe(2);
      expect((await runCliCaptured(['ingest', 'bounces'], { env, clock })).code).toBe(2);
      expect((await runCliCaptured(['check', 'blocklists', '--ip', '300.1.1.1'], { env, clock })).code).toBe(2);
      // A typo must not become another address (inet_aton would read 203.0.113 as 203.0.0.113).
      expect((await runCliCaptured(['delist', 'draft', '--ip', '203.0.113'], { env, clock })).code).toBe(2);
      // A port nobody listens on: every query fails.
      const dead = await runCliCaptured(['check', 'blocklists', '--ip', '203.0.113.13', '--zones', 'zen.spamhaus.org', '--resolver', '127.0.0.1:9', '--format', 'json'], { env, clock });
      expect(dead.code).toBe(1);
      expect((JSON.parse(dead.stdout) as { listed: boolean }[])[0]!.listed).toBe(false);
    });
  });
}
