import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_RECIPIENT_GROUPS, parseBounce } from '../../../ingest/bounces/parse-bounce.js';
import { classifyBounce } from '../../../ingest/bounces/load-bounces.js';
import { findMicrosoftCodes, strongestEvidence } from '../../../ingest/bounces/microsoft-codes.js';
import { buildBounce, DIAGNOSTICS, generateBouncesMbox } from '../../../demo/generate-bounces.js';

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)));

/** What each code must become: [codes found, evidence kind, route or reason]. */
const EXPECTED: Record<string, [string[], 'block' | 'warning' | null, string | null]> = {
  S3140: [['S3140'], 'block', 'outlook_form'],
  S3150: [['S3150'], 'block', 'outlook_form'],
  AS3140: [['AS3140'], 'block', 'outlook_form'],
  '5.7.606': [['5.7.606'], 'block', 'office365_portal'],
  '5.7.649': [['5.7.649'], 'block', 'office365_portal'],
  '5.7.511': [['5.7.511'], 'block', 'delist_email'],
  '5.7.515': [['5.7.515'], 'warning', 'auth_requirements'],
  S775: [['4.7.650', 'S775'], 'warning', 'reputation_deferral'],
  '4.7.650': [['4.7.650'], 'warning', 'reputation_deferral'],
  'RP-001': [['RP-001'], 'warning', 'reputation_deferral'],
  'RP-002': [['RP-002'], 'warning', 'reputation_deferral'],
  'RP-003': [['RP-003'], 'warning', 'reputation_deferral'],
  'SC-001': [['SC-001'], 'warning', 'reputation_deferral'],
  'SC-002': [['SC-002'], 'warning', 'reputation_deferral'],
  'SC-003': [['SC-003'], 'warning', 'reputation_deferral'],
  'SC-004': [['SC-004'], 'warning', 'reputation_deferral'],
  'DY-001': [['DY-001'], 'warning', 'reputation_deferral'],
  'DY-002': [['DY-002'], 'warning', 'reputation_deferral'],
  'OU-001': [['OU-001'], 'warning', 'dnsbl_listed'],
  'OU-002': [['OU-002'], 'warning', 'reputation_deferral'],
  other: [[], null, null],
};

describe('parseBounce: every Microsoft code, as a DSN and as a plain-text bounce', () => {
  it('covers every code the generator writes', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(Object.keys(DIAGNOSTICS).sort());
  });
  for (const [code, [codes, kind, what]] of Object.entries(EXPECTED)) {
    for (const shape of ['dsn', 'plain'] as const) {
      it(`${code} (${shape})`, () => {
        const raw = buildBounce({ code, ip: '203.0.113.13', recipient: 'someone@hotmail.com', senderDomain: 'shop.example', at: new Date('2026-11-02T23:59:30Z'), id: `t-${code}`, shape });
        const result = parseBounce(Buffer.from(raw));
        expect(result.kind).toBe('bounce');
        if (result.kind !== 'bounce') return;
        expect(result.format).toBe(shape);
        expect(result.senderDomain).toBe('shop.example');
        expect(result.recipients).toHaveLength(1);
        const r = result.recipients[0]!;
        expect(r.codes.map((c) => c.code)).toEqual(codes);
        expect(r.evidence?.kind ?? null).toBe(kind);
        expect(r.evidence?.route ?? r.evidence?.reason ?? null).toBe(what);
        expect(r.recipientDomain).toBe('hotmail.com');
        expect(r.day).toBe('2026-11-02');
        expect(r.smtpCode).toBe(Number(DIAGNOSTICS[code]!.slice(0, 3)));
        // The IP named by the receiver, never Microsoft's own server from "host ...[52.101.x.x] said".
        if (code !== 'other') expect(r).toMatchObject({ ip: '203.0.113.13', ipOrigin: 'diagnostic' });
        else expect(r.ip).toBeNull();
        if (shape === 'dsn') expect(r.bouncedAtOrigin).toBe('last_attempt');
      });
    }
  }
});

describe('parseBounce: real NDR shapes', () => {
  it('Exchange Online NDR with a base64 delivery-status part and quoted-printable text', () => {
    const result = parseBounce(fixture('exchange-online-5.7.606.eml'));
    expect(result).toMatchObject({ kind: 'bounce', format: 'dsn', senderDomain: 'shop.example' });
    if (result.kind !== 'bounce') return;
    expect(result.recipients).toHaveLength(1);
    expect(result.recipients[0]).toMatchObject({
      recipientDomain: 'fabrikam.com',
      enhancedStatus: '5.7.606',
      smtpCode: 550,
      ip: '203.0.113.21',
      ipOrigin: 'diagnostic',
      evidence: { kind: 'block', route: 'office365_portal', code: '5.7.606' },
      bouncedAtOrigin: 'arrival',
      day: '2026-11-23',
    });
  });

  it('Exim plain-text bounce: the remote host [ip] is not taken for ours', () => {
    const result = parseBounce(fixture('exim-s3140.eml'));
    expect(result).toMatchObject({ kind: 'bounce', format: 'plain', senderDomain: 'shop.example' });
    if (result.kind !== 'bounce') return;
    expect(result.recipients).toHaveLength(1);
    expect(result.recipients[0]).toMatchObject({ recipientDomain: 'outlook.com', ip: '203.0.113.17', evidence: { route: 'outlook_form', code: 'S3140' }, day: '2026-11-21' });
    expect(result.recipients[0]!.diagnostic).toMatch(/^550 5\.7\.1 Unfortunately, messages from \[203\.0\.113\.17\]/);
  });

  it('qmail failure notice: Microsoft\'s server IP on its own line is skipped', () => {
    const result = parseBounce(fixture('qmail-5.7.511.eml'));
    expect(result).toMatchObject({ kind: 'bounce', format: 'plain' });
    if (result.kind !== 'bounce') return;
    expect(result.recipients[0]).toMatchObject({ recipientDomain: 'contoso.com', ip: '198.51.100.24', evidence: { route: 'delist_email' }, day: '2026-11-22' });
  });

  it('a DSN with two recipients, an IPv6 sender and an IP given only in an extension field', () => {
    const result = parseBounce(fixture('postfix-two-recipients.eml'));
    if (result.kind !== 'bounce') throw new Error(result.reason);
    expect(result.recipients.map((r) => [r.recipientDomain, r.action, r.ip, r.ipOrigin, r.evidence?.reason])).toEqual([
      ['hotmail.com', 'delayed', '2001:db8::25', 'diagnostic', 'reputation_deferral'],
      ['outlook.com', 'failed', '203.0.113.30', 'dsn_field', 'auth_requirements'],
    ]);
    expect(result.recipients[1]!.bouncedAt?.toISOString()).toBe('2026-11-24T06:59:30.000Z');
  });

  it('tells bounces from other mail: feedback reports, auto-replies, garbage, empty DSNs', () => {
    const arf = 'From: staff@hotmail.com\nSubject: complaint\nContent-Type: multipart/report; report-type=feedback-report; boundary=b\n\n--b\nContent-Type: text/plain\n\nx\n--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n--b--\n';
    expect(parseBounce(Buffer.from(arf))).toMatchObject({ kind: 'not_a_bounce', reason: 'report of type feedback-report' });
    const ooo = 'From: someone@hotmail.com\nSubject: Out of office\n\nI am away until Monday.\n';
    expect(parseBounce(Buffer.from(ooo)).kind).toBe('not_a_bounce');
    expect(parseBounce(Buffer.from('garbage without any header\n')).kind).toBe('malformed');
    const empty = 'From: MAILER-DAEMON@x\nSubject: Undelivered\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\n\n--b--\n';
    expect(parseBounce(Buffer.from(empty))).toMatchObject({ kind: 'malformed', reason: 'delivery-status part without a recipient block' });
  });

  // A hang test, not a timing target: both inputs took time growing with their square (20-30 s each at
  // 200 KB here) before the trims and the tag stripper were made linear, and now take milliseconds. The
  // 10 s limit is what makes it fail if that comes back (the suite's default is 60 s).
  it('returns on a recipient domain of 200,000 dots and an HTML body of 200,000 unclosed tags', { timeout: 10_000 }, () => {
    const dots = '.'.repeat(200_000);
    const dsn = `From: MAILER-DAEMON@x\nSubject: Undelivered\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; a@${dots}x\nAction: failed\nStatus: 5.7.1\n\n--b--\n`;
    expect(['bounce', 'not_a_bounce', 'malformed']).toContain(parseBounce(Buffer.from(dsn)).kind);
    const html = `From: MAILER-DAEMON@x\nSubject: Undelivered\nContent-Type: text/html\n\n${'<'.repeat(200_000)}\n`;
    expect(parseBounce(Buffer.from(html)).kind).toBe('not_a_bounce');
  });

  it('reads the first 1,000 recipient groups of a DSN with 5,000, counts the rest and says so', () => {
    // Each group without a diagnostic falls back on the per-message fields and the human-readable
    // text: those are read once, and every other group's Remote-MTA excludes the first IP of each.
    // Codes are looked for in the text's first 20,000 characters, IPs in all of it.
    const human = `Delivery failed (S3140).\n${'filler words with no codes '.repeat(4000)}\nmessages from [203.0.113.13] were refused, see also [203.0.113.14]\n`;
    const groups = Array.from({ length: 5000 }, (_, i) =>
      [`Final-Recipient: rfc822; user${i}@hotmail.com`, 'Action: failed', i % 2 === 0 ? 'Status: 5.7.606' : 'Status: 5.0.0', ...(i % 4 === 1 ? ['Remote-MTA: dns; mx [203.0.113.13] [198.51.100.7]'] : [])].join('\n'),
    );
    const perMessage = 'Reporting-MTA: dns; mx.ours.example\nX-Source-IP: 198.51.100.7';
    const dsn = (perMessageFields: string) =>
      Buffer.from(
        `From: MAILER-DAEMON@mx.ours.example\nSubject: Undelivered\nDate: Mon, 02 Nov 2026 10:00:00 +0000\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\nContent-Type: text/plain\n\n${human}\n--B\nContent-Type: message/delivery-status\n\n${perMessageFields}\n\n${groups.join('\n\n')}\n--B--\n`,
      );

    const withField = parseBounce(dsn(perMessage));
    if (withField.kind !== 'bounce') throw new Error(withField.reason);
    expect(withField.recipients).toHaveLength(MAX_RECIPIENT_GROUPS);
    expect(withField.groupsNotRead).toBe(4000);
    expect(withField.problems).toContain('4000 recipient group(s) after the first 1000 not read');
    expect(withField.recipients.at(-1)!.seq).toBe(999);
    const summary = (r: (typeof withField.recipients)[number]) => [r.recipientDomain, r.codes.map((c) => c.code), r.ip, r.ipOrigin];
    expect(withField.recipients.slice(0, 4).map(summary)).toEqual([
      // Status codes come before the text's within a rule, as when both were scanned as one text.
      ['hotmail.com', ['S3140', '5.7.606'], '198.51.100.7', 'dsn_field'],
      ['hotmail.com', ['S3140'], '203.0.113.14', 'text'],
      ['hotmail.com', ['S3140', '5.7.606'], '198.51.100.7', 'dsn_field'],
      ['hotmail.com', ['S3140'], '198.51.100.7', 'dsn_field'],
    ]);

    const textOnly = parseBounce(dsn('Reporting-MTA: dns; mx.ours.example'));
    if (textOnly.kind !== 'bounce') throw new Error(textOnly.reason);
    expect(textOnly.groupsNotRead).toBe(4000);
    expect(textOnly.recipients.slice(0, 2).map(summary)).toEqual([
      ['hotmail.com', ['S3140', '5.7.606'], '203.0.113.13', 'text'],
      ['hotmail.com', ['S3140'], '203.0.113.14', 'text'],
    ]);

    // The note reaches the message's recorded reason; a DSN under the cap has none.
    expect(classifyBounce(dsn(perMessage), { deliveredAt: null })).toMatchObject({ classification: 'dsn', reason: '4000 recipient group(s) after the first 1000 not read' });
    const small = parseBounce(fixture('postfix-two-recipients.eml'));
    expect(small).toMatchObject({ kind: 'bounce', groupsNotRead: 0 });
    expect(classifyBounce(fixture('postfix-two-recipients.eml'), { deliveredAt: null }).reason).toBeNull();
  });

  it('finds the original-message marker below a line of 150,000 dashes; a marker phrase past a line\'s first 1,000 characters is no marker', () => {
    const plain = (lines: string[]) =>
      Buffer.from(
        [
          'From: MAILER-DAEMON@mx.ours.example',
          'Subject: Undelivered Mail Returned to Sender',
          'Date: Mon, 02 Nov 2026 10:00:00 +0000',
          '',
          '<a@hotmail.com>: host mx.hotmail.com[52.101.1.1] said: 550 5.7.1 messages from [203.0.113.13] weren\'t sent (S3140)',
          ...lines,
          '------ This is a copy of the message, including all the headers. ------',
          'From: news@shop.example',
          'Subject: hello',
          '',
          '<c@quoted.example>: 550 5.1.1 quoted, not ours',
          '',
        ].join('\n'),
      );
    const b = '<b@outlook.com>: host mx.outlook.com[52.101.1.2] said: 550 5.7.606 banned sending IP [198.51.100.27]';
    const expected = [
      ['hotmail.com', '203.0.113.13', 'S3140'],
      ['outlook.com', '198.51.100.27', '5.7.606'],
    ];
    // The dash line is no marker: the real one below it is found (the quoted From, not the quoted
    // recipient). 150,000 dashes: the human-readable text is read up to 200,000 characters.
    const long = parseBounce(plain([b, '-'.repeat(150_000)]));
    if (long.kind !== 'bounce') throw new Error(long.reason);
    expect(long.senderDomain).toBe('shop.example');
    expect(long.recipients.map((r) => [r.recipientDomain, r.ip, r.evidence?.code])).toEqual(expected);
    // Real marker lines are short; one that names "copy of the" only after 5,000 dashes does not cut
    // the bounce text (the recipient below it is read).
    const late = parseBounce(plain([`${'-'.repeat(5000)} copy of the message follows`, b]));
    if (late.kind !== 'bounce') throw new Error(late.reason);
    expect(late.senderDomain).toBe('shop.example');
    expect(late.recipients.map((r) => [r.recipientDomain, r.ip, r.evidence?.code])).toEqual(expected);
  });

  it('never throws on mutated bounces', () => {
    const base = Buffer.from(buildBounce({ code: 'S3140', ip: '203.0.113.13', recipient: 'a@hotmail.com', senderDomain: 'shop.example', at: new Date('2026-11-02T10:00:00Z'), id: 'm' }));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 40 }), fc.nat(base.length), (flips, cut) => {
        const copy = Buffer.from(base.subarray(0, cut));
        for (const [at, byte] of flips) if (at < copy.length) copy[at] = byte;
        const result = parseBounce(copy);
        expect(['bounce', 'not_a_bounce', 'malformed']).toContain(result.kind);
      }),
      { numRuns: 300 },
    );
  });
});

describe('Microsoft codes', () => {
  it('finds the codes in the texts of the seed article and snds.md', () => {
    expect(findMicrosoftCodes("550 5.7.1 Unfortunately, messages from [1.2.3.4] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3140).").map((c) => c.code)).toEqual(['S3140']);
    expect(findMicrosoftCodes('550 5.7.606 Access denied, banned sending IP [x.x.x.x]. To request removal from this list, please visit https://sender.office.com/').map((c) => c.code)).toEqual(['5.7.606']);
    expect(findMicrosoftCodes('550 5.7.605 Access denied').map((c) => c.code)).toEqual([]);
    expect(findMicrosoftCodes('550 5.7.650 x').map((c) => c.code)).toEqual([]);
    expect(findMicrosoftCodes('AS(3150) and AS3199').map((c) => c.code)).toEqual(['AS3150', 'AS3199']);
    expect(findMicrosoftCodes('AS(1430)').map((c) => c.code)).toEqual([]);
  });
  it('a block wins over a warning, and routes follow outlook_form, office365_portal, delist_email', () => {
    const both = findMicrosoftCodes('5.7.511 and 5.7.606 and (S3140) and 5.7.515');
    expect(strongestEvidence(both)).toMatchObject({ kind: 'block', route: 'outlook_form' });
    expect(strongestEvidence(findMicrosoftCodes('5.7.511 5.7.606'))).toMatchObject({ route: 'office365_portal' });
    expect(strongestEvidence(findMicrosoftCodes('RP-001 5.7.515'))).toMatchObject({ reason: 'auth_requirements' });
    expect(strongestEvidence([])).toBeNull();
  });
});

describe('demo sample', () => {
  const sample = readFileSync(fileURLToPath(new URL('../../../demo/sample/bounces.mbox', import.meta.url)), 'utf8');
  it('is exactly what the generator writes (deterministic)', () => {
    expect(sample).toBe(generateBouncesMbox());
  });
  it('holds the cases the demo tells', () => {
    expect(sample).toMatch(/messages from \[203\.0\.113\.13\] weren't sent[^\n]*\n?[^\n]*\(S3140\)|\(S3140\)/);
    for (const needle of ['[203.0.113.13]', 'banned sending IP [198.51.100.27]', '5.7.511', '(S775)', '5.7.515']) expect(sample).toContain(needle);
  });
});
