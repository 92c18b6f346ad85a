import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, parseConfig } from '../../config/load-config.js';
import { redact } from '../../lib/redact.js';
import { DEFAULT_ZONES } from '../../checks/dnsbl/zones.js';

function writeConfig(text: string): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'repwatch-config-'));
  const path = join(dir, 'repwatch.yaml');
  writeFileSync(path, text);
  return { dir, path };
}

describe('configuration', () => {
  it('has working defaults when there is no file', () => {
    const config = parseConfig({});
    expect(config.thresholds).toEqual({ complaintRateWarn: 0.001, complaintRateMax: 0.003, windowDays: 7, bulkSenderDailyVolume: 5000 });
    expect(config.snds.feeds).toEqual([]);
    expect(config.snds.refetchDays).toBe(3);
    expect(config.schedule.snds).toBe('15 6 * * *');
  });

  it('names the path of an unknown key', () => {
    expect(() => parseConfig({ snds: { feeds: [{ name: 'main', dataUrl: 'https://x.example/d', linkCreatedOn: '2026-11-01', timezon: 'UTC' }] } })).toThrow(
      /unknown key snds\.feeds\[0\]\.timezon/,
    );
    expect(() => parseConfig({ threshold: {} })).toThrow(/unknown key threshold/);
  });

  it('names the path of a bad value', () => {
    expect(() => parseConfig({ thresholds: { complaintRateMax: 'high' } })).toThrow(/thresholds\.complaintRateMax: /);
    expect(() => parseConfig({ snds: { feeds: [{ name: 'a', linkCreatedOn: '2026-02-30' }] } })).toThrow(/snds\.feeds\[0\]\.linkCreatedOn: must be a date/);
    expect(() => parseConfig({ snds: { feeds: [{ name: 'a', timezone: 'Mars/Olympus' }] } })).toThrow(/snds\.feeds\[0\]\.timezone: must be an IANA time zone/);
    expect(() => parseConfig({ jmrp: { mailboxes: [{ name: 'x' }] } })).toThrow(/jmrp\.mailboxes\[0\]: a mailbox needs exactly one of imap, maildir or mbox/);
    expect(() => parseConfig({ thresholds: { complaintRateWarn: 0.01, complaintRateMax: 0.003 } })).toThrow(/complaintRateWarn must not exceed/);
    // A catch-up window of 0 would hold no tick at all: the job would never run.
    expect(() => parseConfig({ schedule: { sndsCatchUpDays: 0 } })).toThrow(/schedule\.sndsCatchUpDays: must be at least 1 \(1 runs only the latest day/);
    expect(() => parseConfig({ schedule: { reportCatchUpWeeks: 0 } })).toThrow(/schedule\.reportCatchUpWeeks: must be at least 1/);
    expect(parseConfig({ schedule: { sndsCatchUpDays: 1, reportCatchUpWeeks: 1 } }).schedule.sndsCatchUpDays).toBe(1);
  });

  it('refuses duplicate feed and mailbox names, a link feed named api, and URLs of the wrong scheme, without repeating them', () => {
    const feed = (name: string) => ({ name, dataUrl: 'https://x.example/d' });
    expect(() => parseConfig({ snds: { feeds: [feed('main'), feed('main')] } })).toThrow(/snds\.feeds\[1\]\.name: "main" is used twice: SNDS feed names must be unique/);
    expect(() => parseConfig({ snds: { feeds: [feed('api')] } })).toThrow(/snds\.feeds\[0\]\.name: "api" is reserved \(the SNDS API feed\)/);
    const box = (name: string) => ({ name, mbox: '/tmp/x.mbox' });
    expect(() => parseConfig({ jmrp: { mailboxes: [box('a'), box('b'), box('a')] } })).toThrow(/jmrp\.mailboxes\[2\]\.name: "a" is used twice: JMRP mailbox names must be unique/);
    expect(() => parseConfig({ bounces: { mailboxes: [box('a'), box('a')] } })).toThrow(/bounces\.mailboxes\[1\]\.name: "a" is used twice/);
    // The same name in jmrp and bounces is two jobs (jmrp:a, bounces:a): allowed.
    expect(parseConfig({ jmrp: { mailboxes: [box('a')] }, bounces: { mailboxes: [box('a')] } }).bounces.mailboxes).toHaveLength(1);

    expect(() => parseConfig({ snds: { feeds: [{ name: 'm', dataUrl: 'ftp://snds.example/d?key=ftp-secret-key' }] } })).toThrow(/snds\.feeds\[0\]\.dataUrl: must be an http:\/\/ or https:\/\/ URL/);
    const smtp = (smtpUrl: string) => () => parseConfig({ reports: { email: { smtpUrl, from: 'r@x.example', to: ['a@x.example'] } } });
    for (const bad of ['smtp://u:SMTP-SECRET-1@host:notaport', 'http://u:SMTP-SECRET-1@host', 'u:SMTP-SECRET-1@host']) {
      const error = (() => {
        try {
          smtp(bad)();
        } catch (e) {
          return e as Error;
        }
        throw new Error(`accepted ${bad}`);
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.message).toMatch(/reports\.email\.smtpUrl: must be an smtp:\/\/ or smtps:\/\/ URL/);
      expect(error.message).not.toContain('SMTP-SECRET-1');
    }
    expect(smtp('smtps://u:p@smtp.example.com:465')().reports.email?.smtpUrl).toBe('smtps://u:p@smtp.example.com:465');

    const { path, dir } = writeConfig('reports:\n  email:\n    smtpUrlFile: smtp.txt\n    from: r@x.example\n    to: [a@x.example]\n');
    writeFileSync(join(dir, 'smtp.txt'), 'smtp://u:FILE-SECRET-2@host:notaport\n');
    expect(() => loadConfig({ path, env: {} })).toThrow(/reports\.email\.smtpUrlFile: the file's content must be an smtp:\/\/ or smtps:\/\/ URL/);
    expect(() => loadConfig({ path, env: {} })).not.toThrow(/FILE-SECRET-2/);
  });

  it('reads secrets from *File keys and ${ENV} references, and registers them for redaction', () => {
    const { dir, path } = writeConfig(
      [
        'snds:',
        '  feeds:',
        '    - name: main',
        '      dataUrlFile: data-url.txt',
        '      statusUrl: ${SNDS_STATUS_URL}',
        '      linkCreatedOn: 2026-11-01',
        'jmrp:',
        '  mailboxes:',
        '    - name: fbl',
        '      imap: { host: imap.example.net, user: fbl, passwordFile: imap-password.txt }',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'data-url.txt'), 'https://snds.example/data.aspx?key=s3cr3t-data-key-123\n');
    writeFileSync(join(dir, 'imap-password.txt'), 'hunter2-imap-pass\n');
    const { config } = loadConfig({ path, env: { SNDS_STATUS_URL: 'https://snds.example/ipStatus.aspx?key=s3cr3t-status-key-456' } });
    expect(config.snds.feeds[0]!.dataUrl).toBe('https://snds.example/data.aspx?key=s3cr3t-data-key-123');
    expect(config.jmrp.mailboxes[0]!.imap!.password).toBe('hunter2-imap-pass');
    expect(config.jmrp.mailboxes[0]!.imap!.folder).toBe('INBOX');
    const leaked = redact(`fetching ${config.snds.feeds[0]!.dataUrl} and ${config.snds.feeds[0]!.statusUrl} as hunter2-imap-pass`);
    expect(leaked).not.toMatch(/s3cr3t|hunter2/);
    expect(leaked).toContain('https://snds.example/data.aspx?key=[REDACTED]');
  });

  it('says which environment variable or secret file is missing', () => {
    expect(() => parseConfig({ reports: { outDir: '${NOPE_NOT_SET}' } }, { env: {} })).toThrow(/reports\.outDir: environment variable NOPE_NOT_SET is not set/);
    expect(() => parseConfig({ jmrp: { recipientSaltFile: '/nonexistent/salt' } })).toThrow(/jmrp\.recipientSaltFile: cannot read/);
  });

  it('reads a leading ~/ in a path key as the home directory, not as a folder named ~ beside the file', () => {
    const home = mkdtempSync(join(tmpdir(), 'repwatch-home-dir-'));
    writeFileSync(join(home, 'salt'), 'salt-from-home-0123\n');
    const { dir, path } = writeConfig(
      [
        'snds:',
        '  api: { tokenFile: ~/.repwatch/snds-token }',
        'jmrp:',
        '  recipientSaltFile: ~/salt',
        '  mailboxes: [{ name: a, mbox: ~/fbl.mbox }, { name: b, maildir: "~user/Maildir" }]',
        'reports: { outDir: "~" }',
      ].join('\n'),
    );
    const { config } = loadConfig({ path, env: { HOME: home } });
    expect(config.jmrp.recipientSalt).toBe('salt-from-home-0123');
    expect(config.snds.api!.tokenFile).toBe(join(home, '.repwatch', 'snds-token'));
    expect(config.jmrp.mailboxes.map((m) => m.mbox ?? m.maildir)).toEqual([join(home, 'fbl.mbox'), join(dir, '~user', 'Maildir')]);
    expect(config.reports.outDir).toBe(home);
  });

  it('rejects YAML that does not parse, naming the file', () => {
    const { path } = writeConfig('snds: [unclosed');
    expect(() => loadConfig({ path })).toThrow(ConfigError);
    expect(() => loadConfig({ path })).toThrow(/is not valid YAML/);
  });

  it('keeps a key named __proto__ a plain (and rejected) key', () => {
    expect(() => parseConfig(JSON.parse('{"__proto__": {"polluted": true}}'))).toThrow(/unknown key __proto__/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('accepts the shipped example file, with every key in it', () => {
    const text = readFileSync(new URL('../../repwatch.example.yaml', import.meta.url), 'utf8');
    const raw = parseYaml(text) as Record<string, unknown>;
    expect(Object.keys(raw).sort()).toEqual(['auth', 'blocklists', 'bounces', 'jmrp', 'pools', 'reports', 'schedule', 'snds', 'thresholds']);
    const config = parseConfig(raw, { env: { SNDS_MAIN_DATA_URL: 'https://example.invalid/d?key=abcdefgh', SNDS_MAIN_STATUS_URL: 'https://example.invalid/s?key=abcdefgh', FBL_IMAP_PASSWORD: 'pw-example-1' } });
    expect(config.snds.feeds.length).toBeGreaterThan(0);
    // The commented-out lists are the defaults they stand for.
    const zones = /^ {2}# zones: (\[.*\])$/m.exec(text);
    expect(zones, 'blocklists.zones shown in the example').not.toBeNull();
    expect(parseYaml(zones![1]!)).toEqual(DEFAULT_ZONES.map((z) => z.zone));
  });

  it('takes blocklists.zones: [] (the daily blocklist job then looks nothing up)', () => {
    expect(parseConfig({ blocklists: { zones: [] } }).blocklists.zones).toEqual([]);
    expect(parseConfig({}).blocklists.zones).toBeUndefined();
  });
});
