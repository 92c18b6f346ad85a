import { afterEach, describe, expect, it } from 'vitest';
import { clearRegisteredSecrets, looksLikeKey, redact, redactUrl, registerSecretUrl, SecretScanner } from '../../lib/redact.js';
import { withDateParameter } from '../../ingest/snds/ingest-feed.js';

afterEach(() => clearRegisteredSecrets());

/** Every form a query value can take on its way through URLs, logs and form bodies. */
function forms(value: string): string[] {
  const spaced = value.replace(/\+/g, ' ');
  const out = new Set([
    value,
    encodeURIComponent(value),
    new URLSearchParams([['x', value]]).toString().slice(2),
    spaced,
    encodeURIComponent(spaced),
    new URLSearchParams([['x', spaced]]).toString().slice(2),
  ]);
  for (const form of [...out]) out.add(form.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()));
  return [...out];
}

/** The rewrite ingest-feed does when it adds the day: the query string goes through URLSearchParams. */
function withDate(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('date', '112526');
  return parsed.toString();
}

const PORTAL = 'https://substrate.office.com/ip-domain-management-snds';

describe('SNDS link keys under any parameter name, in every encoded form', () => {
  const KEY = 'ab+cd/ef0123==';
  const link = `${PORTAL}/SNDS/Auto/data?id=${KEY}`;

  it('a key with + / = under id= is redacted after URLSearchParams rewrote the link', () => {
    registerSecretUrl(link);
    const rewritten = withDate(link);
    // The rewrite really changes the key's spelling: the decoded and encodeURIComponent forms alone miss it.
    expect(rewritten).toContain('ab+cd%2Fef0123%3D%3D');
    for (const text of [rewritten, withDateParameter(link, '2026-11-25'), `GET ${rewritten} failed`, `{"link":"${rewritten}"}`]) {
      const out = redact(text);
      for (const form of forms(KEY)) expect(out).not.toContain(form);
      expect(out).not.toContain('ef0123');
    }
    for (const form of forms(KEY)) expect(redact(`Invalid or expired link: ${form}`)).toBe('Invalid or expired link: [REDACTED]');
  });

  it('redactUrl keeps origin, path and date, and replaces every other query value', () => {
    expect(redactUrl(withDate(link))).toBe(`${PORTAL}/SNDS/Auto/data?id=[REDACTED]&date=112526`);
    // Unregistered too: a location is safe whatever its parameters are called.
    expect(redactUrl('https://snds.example/export?linkId=Zq9x&sig2=a%2Fb&date=112526#frag')).toBe('https://snds.example/export?linkId=[REDACTED]&sig2=[REDACTED]&date=112526');
    expect(redactUrl('https://user:pw@snds.example/x?date=../etc')).toBe('https://snds.example/x?date=[REDACTED]');
  });

  it('the legacy link shapes (sendersupport.olc…/data.aspx?key=GUID, postmaster.live.com, ipStatus.aspx)', () => {
    const guid = '0a1b2c3d-4e5f-6789-abcd-ef0123456789';
    for (const url of [
      `https://sendersupport.olc.protection.outlook.com/snds/data.aspx?key=${guid}`,
      `https://sendersupport.olc.protection.outlook.com/snds/ipStatus.aspx?key=${guid}`,
      `https://postmaster.live.com/snds/data.aspx?key=${guid}`,
    ]) {
      registerSecretUrl(url);
      const dated = withDate(url);
      expect(redactUrl(dated)).toBe(`${new URL(url).origin}${new URL(url).pathname}?key=[REDACTED]&date=112526`);
      expect(redact(`fetching ${dated}`)).not.toContain('ef0123456789');
      expect(redact(`the key was ${guid.toUpperCase()}`)).not.toContain('EF0123456789');
    }
    // A GUID in braces travels as %7B…%7D.
    registerSecretUrl(`https://sendersupport.olc.protection.outlook.com/snds/data.aspx?key={${guid}}`);
    expect(redact(`key=%7B${guid}%7D and {${guid}}`)).not.toContain('ef0123456789');
  });

  it('the date and short words are not registered (they would be redacted in every log line); keys of letters only are', () => {
    registerSecretUrl(`https://sendersupport.olc.protection.outlook.com/snds/data.aspx?key=0a1b2c3d-4e5f&date=112526&format=download&view=IpStatus`);
    expect(redact('day 112526: download IpStatus')).toBe('day 112526: download IpStatus');
    registerSecretUrl(`https://snds.example/x?id=QxTmPlaRbZcd&t=secretkeyabc`);
    expect(redact('QxTmPlaRbZcd secretkeyabc')).toBe('[REDACTED] [REDACTED]');
  });

  it('the key as written in the configuration, where the URL parser would escape it', () => {
    registerSecretUrl(`https://snds.example/x?id=it's-a-key-0123`);
    expect(redact(`echo: it's-a-key-0123 / it%27s-a-key-0123`)).toBe('echo: [REDACTED] / [REDACTED]');
  });
});

describe('SNDS link keys in the path', () => {
  it('a path key shorter than 24 characters is redacted once its link is registered', () => {
    const key = 'k7Qm2xV9pL4sT8wZ'; // 16 characters
    const link = `${PORTAL}/SNDS/Auto/${key}/data`;
    expect(redact(`GET ${link}`)).toContain(key); // not on looks alone: it is short
    registerSecretUrl(link);
    expect(redact(`GET ${withDate(link)} failed`)).toBe(`GET ${PORTAL}/SNDS/Auto/[REDACTED]/data?date=112526 failed`);
    expect(redact(`echo: ${key}`)).toBe('echo: [REDACTED]');
    // redactUrl reads a link's path with the same threshold, registered or not.
    clearRegisteredSecrets();
    expect(redactUrl(link)).toBe(`${PORTAL}/SNDS/Auto/[REDACTED]/data`);
  });

  it('GUIDs and long tokens in the path are redacted even unregistered; ordinary hyphenated words are not', () => {
    expect(redact(`${PORTAL}/SNDS/Auto/0a1b2c3d-4e5f-6789-abcd-ef0123456789/data`)).toBe(`${PORTAL}/SNDS/Auto/[REDACTED]/data`);
    expect(redact(`${PORTAL}/SNDS/Auto/Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1Njc4`)).toBe(`${PORTAL}/SNDS/Auto/[REDACTED]`);
    // 25 characters of words: the portal's own path, kept in text, in stored locations and after registering.
    const api = `${PORTAL}/api/report/data/2026-11-26`;
    registerSecretUrl(`${PORTAL}/SNDS/Auto/k7Qm2xV9pL4sT8wZ`);
    expect(redact(`GET ${api}`)).toBe(`GET ${api}`);
    expect(redactUrl(api)).toBe(api);
    expect(redact(`${PORTAL}/SNDS/Auto`)).toBe(`${PORTAL}/SNDS/Auto`);
    expect(redact('/srv/repwatch/exports/ip-domain-management-snds-archive/x.csv')).toBe('/srv/repwatch/exports/ip-domain-management-snds-archive/x.csv');
  });

  it('looksLikeKey: random tokens and GUIDs yes, words, dates and CamelCase no', () => {
    for (const key of ['k7Qm2xV9pL4sT8wZ', '0a1b2c3d-4e5f-6789-abcd-ef0123456789', '0A1B2C3D4E5F6789ABCDEF0123456789', 'Zq8-live-SNDS-key-d41d8cd98f00b204e980', 'ZmFyYmFzcXVjZmFyYmFzcXVj'])
      expect(looksLikeKey(key), key).toBe(true);
    for (const word of ['ip-domain-management-snds', 'IpDomainManagementSnds', 'snds-v2-export-2026', '2026-11-26', 'report', 'ipStatus.aspx', 'abc123'])
      expect(looksLikeKey(word), word).toBe(false);
  });
});

describe('SecretScanner', () => {
  it('finds a registered secret in any form, also split between two pieces', () => {
    registerSecretUrl(`${PORTAL}/SNDS/Auto/data?id=ab+cd/ef0123==`);
    const body = Buffer.from('Invalid or expired link http://x/data?id=ab%2Bcd%2Fef0123%3D%3D&date=112526');
    for (let cut = 1; cut < body.length; cut += 3) {
      const scanner = new SecretScanner();
      scanner.push(body.subarray(0, cut));
      expect(scanner.push(body.subarray(cut)), `cut at ${cut}`).toBe(true);
    }
    expect(new SecretScanner().push(Buffer.from('1.1.1.1,12/31/2019 8:00 AM,9/29/2020 9:00 PM,14129,14129,13025,GREEN,< 0.1%,,,0,,,\r\n'))).toBe(false);
  });

  it('is idle with nothing registered', () => {
    const scanner = new SecretScanner();
    expect(scanner.idle).toBe(true);
    expect(scanner.push(Buffer.from('anything'))).toBe(false);
  });
});
