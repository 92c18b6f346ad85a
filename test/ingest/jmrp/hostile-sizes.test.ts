import { describe, expect, it } from 'vitest';
import { buildReport } from '../../../bench/generate-reports.js';
import { MAX_IPS_PER_HOP, receivedFromIps } from '../../../ingest/jmrp/derive-source-ip.js';
import { MAX_REPORT_ADDRESSES, MAX_REPORT_RECIPIENT_VALUES, parseReport, reportRecipients } from '../../../ingest/jmrp/parse-report.js';
import { protectRawMessage } from '../../../ingest/jmrp/protect-raw.js';
import { hashRecipient } from '../../../ingest/jmrp/store-reports.js';
import { decodeBody, MAX_HEADER_VALUE, parseMime, walkParts } from '../../../ingest/mailbox/mime.js';

/**
 * Hostile complaint messages of sizes a mailbox accepts (up to 10 MB): what the caps do. Behaviour, not
 * time: each test shows the cap applied, or a result the unbounded code could not give (it threw).
 */

const SALT = 'test-salt-123456';

/** Parse and protect as the ingest does (ingest-mailbox.ts classify). */
function classify(raw: Buffer) {
  const mime = parseMime(raw);
  const parsed = parseReport(raw, { mime, recipientToken: (a) => hashRecipient(a, SALT) });
  const report = parsed.kind === 'arf' || parsed.kind === 'jmrp_legacy' ? parsed.report : null;
  return { parsed, kept: protectRawMessage(raw, report ? reportRecipients(report) : [], 'hash', SALT, report === null, mime) };
}

const arf = (recipient = 'jane@isp.example') =>
  buildReport({ shape: 'arf', index: 1, ip: '203.0.113.9', at: new Date('2026-10-02T10:00:00Z'), recipient, campaign: 'c', fromDomain: 'd.example' });

/** The ARF report with more lines after its Original-Rcpt-To field. */
const withFields = (lines: string[]) => Buffer.from(arf().replace('Original-Rcpt-To: <jane@isp.example>\r\n', `Original-Rcpt-To: <jane@isp.example>\r\n${lines.map((l) => `${l}\r\n`).join('')}`));

describe('recipients: a complaint report names one complainer, a few at most', () => {
  it('a report naming more distinct addresses than the cap is malformed, saying why; at the cap it is a report', () => {
    const others = (n: number) => Array.from({ length: n }, (_, i) => `Original-Rcpt-To: <u${i}@isp.example>`);
    const atCap = classify(withFields(others(MAX_REPORT_ADDRESSES - 1)));
    expect(atCap.parsed.kind).toBe('arf');
    expect(atCap.kept.bytes).toBeInstanceOf(Buffer);
    const over = classify(withFields(others(MAX_REPORT_ADDRESSES)));
    expect(over.parsed).toEqual({ kind: 'malformed', reason: `${MAX_REPORT_ADDRESSES + 1} distinct recipient addresses: not one complaint report` });
    // Its addresses cannot all be removed cheaply: no bytes are kept, and the note says why.
    expect(over.kept.bytes).toBeNull();
    expect(over.kept.note).toMatch(new RegExp(`^raw bytes not kept: ${MAX_REPORT_ADDRESSES + 1} distinct recipient addresses`));
  });

  it('so is a legacy report whose original names more than the cap', () => {
    const legacy = buildReport({ shape: 'legacy', index: 2, ip: '203.0.113.9', at: new Date('2026-10-02T10:00:00Z'), recipient: 'jane@isp.example', campaign: 'c', fromDomain: 'd.example' });
    expect(legacy).toContain('X-HmXmrOriginalRecipient: <jane@isp.example>\r\n');
    const extra = Array.from({ length: MAX_REPORT_ADDRESSES }, (_, i) => `X-HmXmrOriginalRecipient: <u${i}@isp.example>\r\n`).join('');
    const { parsed, kept } = classify(Buffer.from(legacy.replace('X-HmXmrOriginalRecipient: <jane@isp.example>\r\n', `X-HmXmrOriginalRecipient: <jane@isp.example>\r\n${extra}`)));
    expect(parsed).toEqual({ kind: 'malformed', reason: `${MAX_REPORT_ADDRESSES + 1} distinct recipient addresses: not one complaint report` });
    expect(kept.bytes).toBeNull();
  });

  it('one address repeated past the cap of values is malformed too; its bytes are kept with the address hashed', () => {
    const { parsed, kept } = classify(withFields(Array.from({ length: MAX_REPORT_RECIPIENT_VALUES }, () => 'Original-Rcpt-To: jane@isp.example')));
    expect(parsed).toEqual({ kind: 'malformed', reason: `${MAX_REPORT_RECIPIENT_VALUES + 1} recipient fields (1 distinct address): not one complaint report` });
    expect(kept.bytes).toBeInstanceOf(Buffer);
    expect(kept.bytes!.toString('latin1')).not.toMatch(/jane@isp\.example/i);
  });

  it('130,000 recipient values: read one at a time (spread into push they overflowed the stack), the address still removed', () => {
    // As a parsed report holds them (reportRecipients), and as a message that is no report carries them.
    const values = Array.from({ length: 130_000 }, (_, i) => `u${i}@isp.example`);
    expect(reportRecipients({ recipients: ['jane@isp.example'], fields: { 'original-rcpt-to': values } })).toHaveLength(130_001);
    const raw = Buffer.from(`From: a@b.example\r\nSubject: not a report\r\n${'Original-Rcpt-To: jane@isp.example\r\n'.repeat(130_000)}\r\nhello\r\n`);
    const { parsed, kept } = classify(raw);
    expect(parsed.kind).toBe('not_a_report');
    expect(kept.bytes).toBeInstanceOf(Buffer);
    // (A boolean: a failure must not print megabytes.)
    expect(kept.bytes!.toString('latin1').toLowerCase().includes('jane@isp.example')).toBe(false);
    expect(kept.bytes!.toString('latin1').split(hashRecipient('jane@isp.example', SALT)).length - 1).toBe(130_000);
  });

  it('a message that is no report keeps no bytes when its recipient fields name more distinct addresses than the cap', () => {
    const lines = (n: number) => Array.from({ length: n }, (_, i) => `Original-Recipient: rfc822;u${i}@isp.example\r\n`).join('');
    const over = classify(Buffer.from(`From: mailer-daemon@b.example\r\nSubject: bounce\r\n\r\n${lines(MAX_REPORT_ADDRESSES + 1)}`));
    expect(over.parsed.kind).toBe('not_a_report');
    expect(over.kept).toEqual({ bytes: null, note: expect.stringMatching(`^raw bytes not kept: ${MAX_REPORT_ADDRESSES + 1} distinct recipient addresses`) });
    const atCap = classify(Buffer.from(`From: mailer-daemon@b.example\r\nSubject: bounce\r\n\r\n${lines(MAX_REPORT_ADDRESSES)}`));
    expect(atCap.kept.bytes).toBeInstanceOf(Buffer);
    expect(atCap.kept.bytes!.toString('latin1')).not.toMatch(/u\d+@isp\.example/);
  });
});

describe('encoded bodies and header values of hostile sizes', () => {
  it('a text part in base64 on one line of 6 million characters is protected and encoded again in lines as wide', () => {
    const text = Buffer.from(`Complaint about jane@isp.example ${'x'.repeat(4_500_000 - 33)}`);
    const b64 = text.toString('base64');
    expect(b64.length).toBe(6_000_000);
    const raw = Buffer.from(arf().replace(/Content-Type: text\/plain; charset="US-ASCII"\r\n\r\n[^\r]*\r\n/, `Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n`));
    const { parsed, kept } = classify(raw);
    expect(parsed.kind).toBe('arf');
    expect(kept.bytes).toBeInstanceOf(Buffer);
    const part = [...walkParts(parseMime(kept.bytes!).root)].find((p) => p.encoding === 'base64')!;
    // The hash is longer than the address: the body now takes a second line, the first as wide as before.
    const widths = part.body.toString('latin1').trimEnd().split('\r\n').map((line) => line.length);
    expect(widths).toEqual([6_000_000, Math.ceil((4_500_000 - 16 + 76) / 3) * 4 - 6_000_000]);
    // (Compared by length and content apart: a failure must not print megabytes.)
    const decoded = decodeBody(part).toString();
    const expected = `Complaint about ${hashRecipient('jane@isp.example', SALT)} ${'x'.repeat(4_500_000 - 33)}`;
    expect(decoded.length).toBe(expected.length);
    expect(decoded === expected).toBe(true);
  });

  it('a run of encoded words longer than the header cap is not decoded: the bytes are not kept, the report still counts', () => {
    const run = '=?utf-8?Q?a?= '.repeat(Math.ceil(MAX_HEADER_VALUE / 14) + 10);
    const { parsed, kept } = classify(Buffer.from(arf().replace('MIME-Version: 1.0\r\n', `MIME-Version: 1.0\r\nX-Words: ${run}\r\n`)));
    expect(parsed.kind).toBe('arf');
    expect(kept).toEqual({ bytes: null, note: expect.stringMatching(/^raw bytes not kept: the complainer's address could not be removed/) });
    // Shorter, the same words are read (and the bytes kept).
    const short = classify(Buffer.from(arf().replace('MIME-Version: 1.0\r\n', `MIME-Version: 1.0\r\nX-Words: ${'=?utf-8?Q?a?= '.repeat(100)}\r\n`)));
    expect(short.kept.bytes).toBeInstanceOf(Buffer);
  });

  it('a recipient value of encoded words longer than the header cap is not decoded: no bytes kept', () => {
    const kept = protectRawMessage(Buffer.from('From: a@b.example\r\nSubject: x\r\n\r\nhi jane@isp.example\r\n'), [`=?utf-8?Q?jane=40isp.example?= ${'=?utf-8?Q?a?= '.repeat(5000)}`], 'hash', SALT);
    expect(kept.bytes).toBeNull();
  });

  it('a Content-Type longer than the header cap (RFC 2231 continuations): read from its start, and the bytes are not kept', () => {
    let params = '';
    for (let i = 0; params.length <= MAX_HEADER_VALUE; i++) params += ` t*${i}*=%41;`;
    const raw = Buffer.from(arf().replace('Content-Type: text/plain; charset="US-ASCII"', `Content-Type: text/plain;${params} charset="US-ASCII"`));
    const { parsed, kept } = classify(raw);
    expect(parsed.kind).toBe('arf');
    // A boundary past what was read would hide parts from the walk: what it did not reach was not examined.
    expect(kept.bytes).toBeNull();
  });
});

describe('the sending IP from hostile headers', () => {
  it('a Received hop naming 5,000 IPs gives at most the cap of them, the right one first', () => {
    let many = '';
    for (let i = 0; i < 5000; i++) many += ` [198.51.${(i >> 8) & 0xff}.${i & 0xff}]`;
    const hop = `from relay.example (10.0.0.7) (mta.sender.example [203.0.113.77])${many} by mx.isp.example; Fri, 02 Oct 2026 10:00:00 +0000`;
    const ips = receivedFromIps(hop);
    expect(ips).toHaveLength(MAX_IPS_PER_HOP);
    expect(ips.slice(0, 3)).toEqual(['10.0.0.7', '203.0.113.77', '198.51.0.0']);
    // The same with no address the receiver recorded: the HELO tokens, capped alike.
    expect(receivedFromIps(`from ${many.replace(/[[\]]/g, '')} by mx.isp.example`)).toHaveLength(MAX_IPS_PER_HOP);

    const raw = Buffer.from(
      arf()
        .replace(/Source-IP: [^\r]*\r\n/, '')
        .replace(/Received: from mta1\.d\.example [^\r]*/, `Received: ${hop}`),
    );
    const parsed = parseReport(raw);
    expect(parsed.kind === 'arf' && parsed.report).toMatchObject({ sourceIp: '203.0.113.77', sourceIpOrigin: 'received', complainedAtOrigin: 'arrival_date' });
  });

  it('a Source-IP is read from its first 64 KB: an address only past a longer comment is not taken, the original tells the IP', () => {
    const raw = Buffer.from(arf().replace(/Source-IP: [^\r]*/, `Source-IP: (${'x'.repeat(MAX_HEADER_VALUE)}) 192.0.2.200`));
    const parsed = parseReport(raw);
    expect(parsed.kind === 'arf' && parsed.report).toMatchObject({ sourceIp: '203.0.113.9', sourceIpOrigin: 'received' });
  });
});
