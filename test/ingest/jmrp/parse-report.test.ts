import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseReport, type FeedbackReport, type ParsedReport } from '../../../ingest/jmrp/parse-report.js';
import { knownIpMatcher } from '../../../ingest/jmrp/derive-source-ip.js';
import { buildReport, type ReportSpec } from '../../../bench/generate-reports.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../../fixtures/arf-public', name));

function report(parsed: ParsedReport): FeedbackReport {
  if (parsed.kind !== 'arf' && parsed.kind !== 'jmrp_legacy') throw new Error(`expected a report, got ${parsed.kind}: ${'reason' in parsed ? parsed.reason : ''}`);
  return parsed.report;
}

const spec = (shape: ReportSpec['shape'], extra: Partial<ReportSpec> = {}): ReportSpec => ({
  shape,
  index: 7,
  ip: '203.0.113.45',
  at: new Date('2026-10-05T13:14:15Z'),
  recipient: 'someone@hotmail.com',
  campaign: 'cmp-3',
  fromDomain: 'news.sender.example',
  ...extra,
});
const build = (s: ReportSpec) => Buffer.from(buildReport(s));

describe('parseReport on the public samples', () => {
  it('reads the legacy Microsoft JMRP report (inline message/rfc822 kept, recipient found)', () => {
    const parsed = parseReport(fixture('microsoft-jmrp-legacy-hotmail.eml'));
    expect(parsed.kind).toBe('jmrp_legacy');
    const r = report(parsed);
    expect(r).toMatchObject({ feedbackType: 'abuse', isComplaint: true, sourceIp: '203.0.113.245', sourceIpOrigin: 'auth_results', incidents: 1 });
    expect(r.recipients).toEqual(['kijitora@example.com']);
    expect(r.originalMessageId).toBe('<0000000000fffffffff0000000000000@example.com>');
    expect(r.originalFromDomain).toBe('example.com');
    // No Arrival-Date: the date of the Received header that carried the IP.
    expect(r.complainedAtOrigin).toBe('received');
    expect(r.complainedAt?.toISOString()).toBe('2016-04-29T23:34:45.000Z');
    expect(r.day).toBe('2016-04-29');
  });

  it('reads Yahoo: Version 0.1, Received-Date as Arrival-Date, empty Authentication-Results', () => {
    const r = report(parseReport(fixture('yahoo-fbl-abuse.eml')));
    expect(r.format).toBe('arf');
    expect(r.version).toBe('0.1');
    expect(r.complainedAtOrigin).toBe('arrival_date');
    expect(r.complainedAt?.toISOString()).toBe('2013-04-30T07:45:50.000Z');
    expect(r.sourceIp).toBe('192.0.2.8');
    expect(r.sourceIpOrigin).toBe('received');
    expect(r.fields['authentication-results']).toBe('');
    expect(r.originalMessageId).toBe('<000000000000000000000000.smtp@example.com>');
  });

  it('reads ReturnPath: Source-Ip casing, unknown fields kept, REDACTED third part is normal', () => {
    const r = report(parseReport(fixture('returnpath-rackspace-fbl-redacted.eml')));
    expect(r).toMatchObject({ sourceIp: '10.0.0.1', sourceIpOrigin: 'reported', isComplaint: true, reportedDomain: 'example.com', hasOriginalHeaders: false });
    expect(r.fields.source).toBe('Rackspace');
    expect(r.fields['abuse-type']).toBe('complaint');
    expect(r.fields['subscription-link']).toBe('https://fbl.returnpath.net/manage/subscriptions/xxxx');
    expect(r.recipients).toEqual(['hashed@example.com']);
    expect(r.notes).toContain('original message redacted');
  });

  it('finds a base64 feedback-report forwarded in multipart/mixed; auth-failure is not a complaint', () => {
    const r = report(parseReport(fixture('netease-dmarc-auth-failure-base64-forwarded.eml')));
    expect(r).toMatchObject({ format: 'arf', feedbackType: 'auth-failure', isComplaint: false, sourceIp: '167.89.69.24', reportedDomain: 'cardinal.com' });
    expect(r.fields['identity-alignment']).toBe('spf,dkim');
    expect(r.originalMessageId).toBe('<oguVx1AxQayV5Sv2nYK-rA@ismtpd0007p1las1.sendgrid.net>');
  });
});

describe('parseReport on generated shapes', () => {
  it('standard ARF: Source-IP with PTR stripped, Arrival-Date, campaign, incidents', () => {
    const r = report(parseReport(build(spec('arf', { incidents: 4 }))));
    expect(r).toMatchObject({ sourceIp: '203.0.113.45', sourceIpOrigin: 'reported', complainedAtOrigin: 'arrival_date', day: '2026-10-05', incidents: 4, campaign: 'cmp-3' });
    expect(r.complainedAt?.toISOString()).toBe('2026-10-05T13:14:15.000Z');
    expect(r.originalMessageId).toBe('<orig-7@news.sender.example>');
    expect(r.originalFromDomain).toBe('news.sender.example');
    expect(r.recipients).toEqual(['someone@hotmail.com']);
  });

  it('2026 JMRP ARF (only Feedback-Type, User-Agent, Version; Microsoft hops on top): IP and time derived', () => {
    const r = report(parseReport(build(spec('arf2026'))));
    expect(r).toMatchObject({ format: 'arf', feedbackType: 'abuse', userAgent: 'JMRP/1.0', version: '1', isComplaint: true, incidents: 1 });
    expect(r.sourceIp).toBe('203.0.113.45');
    expect(r.sourceIpOrigin).toBe('auth_results');
    expect(r.complainedAtOrigin).toBe('received');
    expect(r.complainedAt?.toISOString()).toBe('2026-10-05T13:14:15.000Z');
    expect(r.recipients).toEqual([]);
    expect(r.campaign).toBe('cmp-3');
  });

  it('2026 shape without Authentication-Results: the Received chain skips 2603:10b6::/32 and 10/8 hops', () => {
    const raw = buildReport(spec('arf2026')).replace(/Authentication-Results:[^\r]*\r\n/, '').replace(/Received-SPF:[^\r]*\r\n/, '');
    const r = report(parseReport(Buffer.from(raw)));
    expect(r.sourceIp).toBe('203.0.113.45');
    expect(r.sourceIpOrigin).toBe('received');
  });

  it('prefers a known sending IP over the first candidate', () => {
    const raw = buildReport(spec('arf2026')).replace('(sender IP is 203.0.113.45)', '(sender IP is 192.0.2.99)');
    expect(report(parseReport(Buffer.from(raw))).sourceIp).toBe('192.0.2.99');
    const known = knownIpMatcher([], ['203.0.113.0/24']);
    const r = report(parseReport(Buffer.from(raw), { isKnownIp: known }));
    expect(r.sourceIp).toBe('203.0.113.45');
    expect(r.sourceIpOrigin).toBe('received');
  });

  it('legacy JMRP generated; campaign header list is configurable', () => {
    const r = report(parseReport(build(spec('legacy')), { campaignHeaders: ['X-Nope', 'X-Campaign-ID'] }));
    expect(r).toMatchObject({ format: 'jmrp_legacy', sourceIp: '203.0.113.45', campaign: 'cmp-3', recipients: ['someone@hotmail.com'] });
    expect(report(parseReport(build(spec('legacy')), { campaignHeaders: ['X-Nope'] })).campaign).toBeNull();
  });

  it('legacy without an original: the subject IP', () => {
    const raw = ['From: staff@hotmail.com', 'Subject: complaint about message from 198.51.100.77', 'Date: Mon, 5 Oct 2026 10:00:00 +0000', '', 'no parts'].join('\r\n');
    const r = report(parseReport(Buffer.from(raw)));
    expect(r).toMatchObject({ format: 'jmrp_legacy', sourceIp: '198.51.100.77', sourceIpOrigin: 'subject', complainedAtOrigin: 'report_date', day: '2026-10-05' });
  });

  it('forwarded with a base64 report part', () => {
    const r = report(parseReport(build(spec('forwarded'))));
    expect(r).toMatchObject({ format: 'arf', sourceIp: '203.0.113.45', isComplaint: true });
  });

  it('a report and its Outlook forward (own headers lost) have one content key; another complaint has another', () => {
    const direct = report(parseReport(build(spec('arf'))));
    const forwarded = report(parseReport(build(spec('forwarded'))));
    expect(forwarded.reportMessageId).not.toBe(direct.reportMessageId);
    expect(direct.contentKey).toMatch(/^content:[0-9a-f]{64}$/);
    expect(forwarded.contentKey).toBe(direct.contentKey);
    // CRLF or LF, as IMAP or a Maildir gives it: the same key.
    expect(report(parseReport(Buffer.from(buildReport(spec('arf')).replace(/\r\n/g, '\n')))).contentKey).toBe(direct.contentKey);
    // Another recipient, another delivery (its Received line), another report field: other complaints.
    expect(report(parseReport(build(spec('arf', { recipient: 'other@hotmail.com' })))).contentKey).not.toBe(direct.contentKey);
    expect(report(parseReport(build(spec('arf', { at: new Date('2026-10-05T13:14:16Z') })))).contentKey).not.toBe(direct.contentKey);
    const typed = buildReport(spec('arf')).replace('Feedback-Type: abuse', 'Feedback-Type: fraud');
    expect(report(parseReport(Buffer.from(typed))).contentKey).not.toBe(direct.contentKey);
    // The key is not a digest an address can be checked against: the address is read as a placeholder.
    expect(report(parseReport(Buffer.from(buildReport(spec('arf')).replaceAll('someone@hotmail.com', 'SomeOne@Hotmail.com')))).contentKey).toBe(direct.contentKey);
    // The 2026 shape keys on Microsoft's per-delivery hops; the legacy report on its original.
    expect(report(parseReport(build(spec('arf2026')))).contentKey).toMatch(/^content:/);
    expect(report(parseReport(build(spec('legacy')))).contentKey).toMatch(/^content:/);
  });

  it('no content key when the original cannot tell two complaints apart (redacted, or no Received line)', () => {
    const redacted = buildReport(spec('arf2026')).replace(/Content-Type: text\/rfc822-headers\r\n\r\n[\s\S]*?\r\n\r\n--/, 'Content-Type: text/rfc822-headers\r\n\r\nREDACTED\r\n\r\n--');
    expect(report(parseReport(Buffer.from(redacted)))).toMatchObject({ hasOriginalHeaders: false, contentKey: null });
    const noTrace = buildReport(spec('arf')).replace(/\r\nReceived: from [^\r]*/g, '');
    expect(noTrace).not.toMatch(/Received:/);
    expect(report(parseReport(Buffer.from(noTrace))).contentKey).toBeNull();
  });

  it('an mbox read as one message (several From_ lines) is malformed with what to do; one leading From_ line is not', () => {
    const one = buildReport(spec('arf'));
    const two = buildReport(spec('arf', { index: 8, recipient: 'second@hotmail.com' }));
    const mbox = `From MAILER-DAEMON Sat Nov 28 05:35:31 2026\n${one}\n\nFrom MAILER-DAEMON Sat Nov 28 05:36:31 2026\n${two}\n`;
    expect(parseReport(Buffer.from(mbox))).toMatchObject({ kind: 'malformed', reason: expect.stringMatching(/several messages in one .*--mbox/) });
    const single = `From MAILER-DAEMON Sat Nov 28 05:35:31 2026\n${one}\n\nFrom the desk of the editor\n`;
    expect(parseReport(Buffer.from(single)).kind).not.toBe('malformed');
    // A paragraph that reads like a From_ line ("From March 2026 on") is not a message start: no header follows.
    const paragraph = `From MAILER-DAEMON Sat Nov 28 05:35:31 2026\n${one.replace('Hello, these are', 'Hello,\r\n\r\nFrom March 2026 on, prices change.\r\nThese are')}`;
    expect(paragraph).toMatch(/\r\n\r\nFrom March 2026 on/);
    expect(parseReport(Buffer.from(paragraph)).kind).not.toBe('malformed');
  });

  it('reads raw 8-bit header bytes that are not UTF-8 as Windows-1252, and UTF-8 as UTF-8', () => {
    const text = buildReport(spec('arf')).replace(/Subject: Weekly offers #\d+/, 'Subject: R\u00e9duction \u00e9t\u00e9 \u2013 -50%');
    const latin = Buffer.from(text.replace('\u2013', '\u0096'), 'latin1'); // 0x96: an en dash in Windows-1252
    expect(report(parseReport(latin)).originalSubject).toBe('R\u00e9duction \u00e9t\u00e9 \u2013 -50%');
    expect(report(parseReport(Buffer.from(text, 'utf8'))).originalSubject).toBe('R\u00e9duction \u00e9t\u00e9 \u2013 -50%');
  });

  it('auth-failure, not-spam and opt-out are reports but not complaints', () => {
    expect(report(parseReport(build(spec('auth_failure')))).isComplaint).toBe(false);
    for (const type of ['not-spam', 'opt-out', 'unsubscribe']) {
      const raw = buildReport(spec('arf')).replace('Feedback-Type: abuse', `Feedback-Type: ${type}`);
      const r = report(parseReport(Buffer.from(raw)));
      expect(r.feedbackType).toBe(type);
      expect(r.isComplaint).toBe(false);
    }
  });

  it('not a report and malformed', () => {
    expect(parseReport(build(spec('not_a_report'))).kind).toBe('not_a_report');
    const malformed = parseReport(build(spec('malformed')));
    expect(malformed).toMatchObject({ kind: 'malformed' });
    expect((malformed as { reason: string }).reason).toMatch(/Feedback-Type/);
    expect(parseReport(Buffer.alloc(0)).kind).toBe('malformed');
    expect(parseReport(Buffer.from('\x00\x01\x02 garbage without headers')).kind).toBe('malformed');
    const noPart = 'From: a@b.example\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n';
    expect(parseReport(Buffer.from(noPart)).kind).toBe('malformed');
  });

  it('several reports forwarded in one message are quarantined whole with the reason, never counted as one', () => {
    const attached = [1, 2, 3].map((i) => buildReport({ ...spec('arf'), index: i }));
    const digest = [
      'From: Postmaster <postmaster@sender.example>',
      'To: abuse@sender.example',
      'Subject: FW: three reports',
      'Date: Mon, 5 Oct 2026 20:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="d"',
      '',
      ...attached.flatMap((eml) => ['--d', 'Content-Type: message/rfc822', '', eml]),
      '--d--',
      '',
    ].join('\r\n');
    const parsed = parseReport(Buffer.from(digest));
    expect(parsed).toMatchObject({ kind: 'malformed' });
    expect((parsed as { reason: string }).reason).toMatch(/^3 feedback reports in one message .*forward them one by one/);
    // One forwarded report is still read.
    const one = [...digest.split('--d\r\n').slice(0, 2).join('--d\r\n').split('\r\n'), '--d--', ''].join('\r\n');
    expect(parseReport(Buffer.from(one)).kind).toBe('arf');
  });
});

describe('parseReport on hostile input', () => {
  it('field names such as __proto__ and constructor are plain keys; nothing is polluted', () => {
    const raw = buildReport(spec('arf')).replace('User-Agent: SomeGenerator/1.0', 'User-Agent: SomeGenerator/1.0\r\n__proto__: {"polluted": true}\r\nconstructor: x\r\nFEEDBACK-TYPE: fraud');
    const r = report(parseReport(Buffer.from(raw)));
    expect(Object.getPrototypeOf(r.fields)).toBeNull();
    expect(Object.keys(r.fields)).toContain('__proto__');
    expect(r.fields.__proto__).toBe('{"polluted": true}');
    // Repeated field (case-insensitive names) kept as an array; the first value decides the type.
    expect(r.fields['feedback-type']).toEqual(['abuse', 'fraud']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.parse(JSON.stringify(r.fields)).constructor).toBe('x');
  });

  it('script in values stays text', () => {
    const raw = buildReport(spec('arf')).replace('Reported-Domain: news.sender.example', 'Reported-Domain: <script>alert(1)</script>');
    expect(report(parseReport(Buffer.from(raw))).reportedDomain).toBe('<script>alert(1)</script>');
  });

  it('caps MIME depth: a report nested deeper than the cap is malformed, not followed', () => {
    let inner = buildReport(spec('arf'));
    for (let i = 0; i < 40; i++) inner = `Content-Type: message/rfc822\r\nMessage-ID: <n${i}@x>\r\n\r\n${inner}`;
    const parsed = parseReport(Buffer.from(`From: a@b.example\r\n${inner}`));
    expect(parsed.kind).toBe('malformed');
    // Within the cap the same nesting is found.
    let shallow = buildReport(spec('arf'));
    for (let i = 0; i < 3; i++) shallow = `Content-Type: message/rfc822\r\n\r\n${shallow}`;
    expect(parseReport(Buffer.from(`From: a@b.example\r\n${shallow}`)).kind).toBe('arf');
  });

  it('a bad Incidents value counts once, with a note', () => {
    const raw = buildReport(spec('arf')).replace('User-Agent: SomeGenerator/1.0', 'User-Agent: SomeGenerator/1.0\r\nIncidents: -5');
    const r = report(parseReport(Buffer.from(raw)));
    expect(r.incidents).toBe(1);
    expect(r.notes.join()).toMatch(/Incidents/);
  });
});

/** A 2026-shape ARF report (report part with only Feedback-Type, User-Agent, Version) around these original headers. */
function arfAround(originalHeaders: string[], outerDate = 'Mon, 5 Oct 2026 20:00:00 +0000'): Buffer {
  return Buffer.from(
    [
      'From: JMRP <jmrp@microsoft.example>',
      'To: fbl@sender.example',
      `Date: ${outerDate}`,
      'Subject: complaint',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=feedback-report; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'A complaint.',
      '--b1',
      'Content-Type: message/feedback-report',
      '',
      'Feedback-Type: abuse',
      'User-Agent: JMRP/1.0',
      'Version: 1',
      '--b1',
      'Content-Type: text/rfc822-headers',
      '',
      ...originalHeaders,
      '--b1--',
      '',
    ].join('\r\n'),
  );
}

describe('sending IP and complaint time from the original headers', () => {
  it('skips loopback, private and unique-local hops above the external one, and dates the complaint by that hop', () => {
    const r = report(
      parseReport(
        arfAround([
          'Received: from localhost (127.0.0.1) by mx1.outlook.example; Mon, 5 Oct 2026 13:20:00 +0000',
          'Received: from relay6 (::1) by localhost; Mon, 5 Oct 2026 13:19:00 +0000',
          'Received: from inner (fd00::1:2) by relay6; Mon, 5 Oct 2026 13:18:00 +0000',
          'Received: from edge (192.168.4.4) by inner; Mon, 5 Oct 2026 13:17:00 +0000',
          'Received: from edge2 (10.20.0.7) by edge; Mon, 5 Oct 2026 13:16:00 +0000',
          'Received: from mta7.sender.example (mta7.sender.example [198.51.100.23]) by edge2; Mon, 5 Oct 2026 13:15:00 +0000',
          'Received: from app (172.16.0.9) by mta7.sender.example; Mon, 5 Oct 2026 13:10:00 +0000',
          'From: news@sender.example',
        ]),
      ),
    );
    expect(r).toMatchObject({ sourceIp: '198.51.100.23', sourceIpOrigin: 'received', complainedAtOrigin: 'received' });
    // The hop that carried the sending IP, not the topmost (Microsoft's) one.
    expect(r.complainedAt?.toISOString()).toBe('2026-10-05T13:15:00.000Z');
  });

  it('skips Microsoft relays only as Received hops: a sender relaying through Microsoft 365 keeps its IP', () => {
    const relayed = report(parseReport(arfAround(['Authentication-Results: spf=pass (sender IP is 40.107.22.5) smtp.mailfrom=sender.example', 'From: a@sender.example'])));
    expect(relayed).toMatchObject({ sourceIp: '40.107.22.5', sourceIpOrigin: 'auth_results' });
    const hops = report(
      parseReport(
        arfAround([
          'Received: from DM6PR01MB0001.prod.outlook.example (2603:10b6:5:1::10) by mx; Mon, 5 Oct 2026 13:16:00 +0000',
          'Received: from EUR01-HE1-obe.outbound.protection.outlook.example (40.107.22.5) by DM6PR01MB0001; Mon, 5 Oct 2026 13:15:30 +0000',
          'Received: from mta.sender.example (198.51.100.24) by EUR01; Mon, 5 Oct 2026 13:15:00 +0000',
        ]),
      ),
    );
    expect(hops).toMatchObject({ sourceIp: '198.51.100.24', sourceIpOrigin: 'received' });
    // A private address is never a sender, whatever header names it.
    const privateOnly = report(parseReport(arfAround(['Authentication-Results: spf=pass (sender IP is 10.1.2.3)', 'Received-SPF: Pass client-ip=192.0.2.60'])));
    expect(privateOnly).toMatchObject({ sourceIp: '192.0.2.60', sourceIpOrigin: 'spf' });
  });

  it('an address literal given in HELO is not the sender: the address the receiver recorded is', () => {
    const at = 'Mon, 5 Oct 2026 13:15:00 +0000';
    const cases: [string, string][] = [
      [`Received: from [203.0.113.9] (198.51.100.77) by BN8NAM12FT011.mail.protection.outlook.example; ${at}`, '198.51.100.77'],
      [`Received: from [203.0.113.9] (unknown [198.51.100.78]) by mx.example; ${at}`, '198.51.100.78'],
      [`Received: from unknown (HELO 203.0.113.9) (198.51.100.79) by mx.example; ${at}`, '198.51.100.79'],
      // Exim puts the connecting address first and the HELO in the comment: no other address, so it counts.
      [`Received: from [198.51.100.80] (helo=203.0.113.9) by mx.example; ${at}`, '198.51.100.80'],
      [`Received: from mta.sender.example (mta.sender.example [198.51.100.81]) by mx.example; ${at}`, '198.51.100.81'],
    ];
    for (const [received, ip] of cases) {
      expect(report(parseReport(arfAround([received, 'From: news@sender.example']))), received).toMatchObject({ sourceIp: ip, sourceIpOrigin: 'received' });
    }
  });

  it('an empty or unreadable Arrival-Date gives way to Received-Date, with a note for the unreadable one', () => {
    const withFields = (fields: string[]) =>
      Buffer.from(
        buildReport({ shape: 'arf', index: 3, ip: '203.0.113.5', at: new Date('2026-10-01T12:00:00Z'), recipient: 'r@hotmail.com', campaign: 'c', fromDomain: 'd.example' })
          .replace(/Arrival-Date: [^\r\n]*/, fields.join('\r\n')),
      );
    const empty = report(parseReport(withFields(['Arrival-Date:', 'Received-Date: Tue, 29 Sep 2026 23:30:00 -08:00'])));
    expect(empty).toMatchObject({ complainedAtOrigin: 'arrival_date', day: '2026-09-30' });
    expect(empty.complainedAt?.toISOString()).toBe('2026-09-30T07:30:00.000Z');
    const unreadable = report(parseReport(withFields(['Arrival-Date: soon', 'Received-Date: Tue, 29 Sep 2026 10:00:00 +0000'])));
    expect(unreadable).toMatchObject({ complainedAtOrigin: 'arrival_date', day: '2026-09-29' });
    expect(unreadable.notes.join('; ')).toMatch(/Arrival-Date "soon" is not a date/);
  });

  it('falls back in order: X-Originating-IP before Received-SPF, then Received-SPF alone, then the report date', () => {
    const both = report(parseReport(arfAround(['X-Originating-IP: [192.0.2.51]', 'Received-SPF: Pass (protection.outlook.example: domain of sender.example designates 192.0.2.52 as permitted sender) client-ip=192.0.2.52;'])));
    expect(both).toMatchObject({ sourceIp: '192.0.2.51', sourceIpOrigin: 'originating' });
    const spf = report(parseReport(arfAround(['Received-SPF: Pass client-ip=192.0.2.52; helo=mta.sender.example;'])));
    expect(spf).toMatchObject({ sourceIp: '192.0.2.52', sourceIpOrigin: 'spf' });
    // No Arrival-Date and no Received header carrying the IP: the report's own Date.
    expect(spf).toMatchObject({ complainedAtOrigin: 'report_date', day: '2026-10-05' });
    expect(spf.complainedAt?.toISOString()).toBe('2026-10-05T20:00:00.000Z');
  });

  it('a forwarded report is dated by its own Date, not the forwarder’s', () => {
    const inner = arfAround(['Received-SPF: Pass client-ip=192.0.2.53'], 'Sat, 3 Oct 2026 08:00:00 +0000').toString();
    const forwarded = Buffer.from(
      [
        'From: analyst@sender.example',
        'Date: Wed, 28 Oct 2026 09:00:00 +0000',
        'Subject: Fwd: complaint',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="fw"',
        '',
        '--fw',
        'Content-Type: text/plain',
        '',
        'see attached',
        '--fw',
        'Content-Type: message/rfc822',
        '',
        inner,
        '--fw--',
        '',
      ].join('\r\n'),
    );
    const r = report(parseReport(forwarded));
    expect(r).toMatchObject({ sourceIp: '192.0.2.53', complainedAtOrigin: 'report_date', day: '2026-10-03' });
  });
});

describe('legacy JMRP: the sender counts', () => {
  const legacy = readFileSync(join(import.meta.dirname, '../../fixtures/arf-public/microsoft-jmrp-legacy-hotmail.eml'), 'utf8');

  it('a legacy report forwarded as an attachment is still one, dated and attributed from the report itself', () => {
    const forwarded = Buffer.from(
      ['From: analyst@sender.example', 'Date: Wed, 28 Oct 2026 09:00:00 +0000', 'Subject: Fwd: complaint', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="fw"', '', '--fw', 'Content-Type: text/plain', '', 'fyi', '--fw', 'Content-Type: message/rfc822', '', legacy.replace(/\r?\n/g, '\r\n'), '--fw--', ''].join('\r\n'),
    );
    const parsed = parseReport(forwarded);
    expect(parsed.kind).toBe('jmrp_legacy');
    expect(report(parsed)).toMatchObject({ sourceIp: '203.0.113.245', recipients: ['kijitora@example.com'], day: '2016-04-29' });
  });

  it('an original carrying X-HmXmrOriginalRecipient in a message from anyone else is not counted, and says why', () => {
    const spoofed = legacy.replace(/^From: staff@hotmail\.com$/m, 'From: someone@attacker.example');
    expect(spoofed).not.toBe(legacy);
    const parsed = parseReport(Buffer.from(spoofed));
    expect(parsed).toEqual({ kind: 'not_a_report', reason: expect.stringMatching(/X-HmXmrOriginalRecipient.*not from staff@hotmail\.com/) });
  });
});

describe('parseReport: a complaint time in the future is not used', () => {
  it('an Arrival-Date more than a day after the report\'s own Date gives way to the Received date, with a note', () => {
    const raw = buildReport(spec('arf')).replace(/Arrival-Date: [^\r]*/, 'Arrival-Date: Thu, 14 Jan 2027 10:00:00 +0000');
    const r = report(parseReport(Buffer.from(raw)));
    expect(r).toMatchObject({ complainedAtOrigin: 'received', day: '2026-10-05' });
    expect(r.notes).toContain('Arrival-Date 2027-01-14T10:00:00.000Z is more than a day after the report was sent: not used');
    // Within a day of the report's Date (clocks disagree) it is used.
    const near = buildReport(spec('arf')).replace(/Arrival-Date: [^\r]*/, 'Arrival-Date: Tue, 06 Oct 2026 12:00:00 +0000');
    expect(report(parseReport(Buffer.from(near)))).toMatchObject({ complainedAtOrigin: 'arrival_date', day: '2026-10-06' });
  });

  it('a report whose every date is after it was read (readAt) is dated by the mailbox, saying why', () => {
    const future = spec('arf', { at: new Date('2027-01-14T10:00:00Z') });
    const parsed = report(parseReport(build(future), { readAt: new Date('2026-11-28T12:00:00Z'), deliveredAt: new Date('2026-11-28T11:00:00Z') }));
    expect(parsed).toMatchObject({ complainedAtOrigin: 'mailbox', day: '2026-11-28' });
    expect(parsed.notes.join('; ')).toMatch(/the report's Date 2027-01-14T10:10:00\.000Z is after it was read: not used/);
    expect(parsed.notes.join('; ')).toMatch(/Arrival-Date 2027-01-14T10:00:00\.000Z is more than a day after the report was read: not used/);
    // A mailbox date after the read (an mbox From_ line of 2027) is no complaint time either.
    const noTime = report(parseReport(build(future), { readAt: new Date('2026-11-28T12:00:00Z'), deliveredAt: new Date('2027-02-01T00:00:00Z') }));
    expect(noTime).toMatchObject({ complainedAt: null, complainedAtOrigin: null, day: null });
    expect(noTime.notes.join('; ')).toMatch(/the mailbox's date 2027-02-01T00:00:00\.000Z is after the message was read: not used/);
    // The same report read on its own day is dated as it says.
    expect(report(parseReport(build(future), { readAt: new Date('2027-01-14T11:00:00Z') }))).toMatchObject({ complainedAtOrigin: 'arrival_date', day: '2027-01-14' });
  });
});

describe('parseReport: the content key is stable', () => {
  it('gives the keys stored by earlier versions for the same reports (stored keys must keep matching new ones)', () => {
    const token = (address: string) => `tok(${address})`;
    expect(report(parseReport(build(spec('arf')), { recipientToken: token })).contentKey).toBe('content:42ec1d9221b12b2d1759c48e81ec581c3f92ff14a7c9dd2d9c30a9af63d4708d');
    expect(report(parseReport(build(spec('legacy')), { recipientToken: token })).contentKey).toBe('content:638ae36d5adc66fa96425d207ba19c23981e97c39cabcf889353d34b1a0415af');
  });
});
