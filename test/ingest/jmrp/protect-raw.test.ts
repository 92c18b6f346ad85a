import libmime from 'libmime';
import libqp from 'libqp';
import { describe, expect, it } from 'vitest';
import { protectRawMessage } from '../../../ingest/jmrp/protect-raw.js';
import { parseReport, reportRecipients } from '../../../ingest/jmrp/parse-report.js';
import { hashRecipient, protectRecipient } from '../../../ingest/jmrp/store-reports.js';
import { decodeBody, parseMime, walkParts } from '../../../ingest/mailbox/mime.js';
import { buildReport, type ReportShape } from '../../../bench/generate-reports.js';

const SALT = 'test-salt-123456';
/** As the ingest reads addresses into the content key. */
const recipientToken = (address: string) => hashRecipient(address, SALT);

/** Everything a reader could recover from the bytes: the bytes, every decoded body, every decoded header. */
function everyText(raw: Buffer): string {
  const texts = [raw.toString('latin1'), raw.toString('utf8')];
  for (const part of walkParts(parseMime(raw).root)) {
    texts.push(decodeBody(part).toString('utf8'));
    for (const values of part.headers.values()) texts.push(...values.map((v) => libmime.decodeWords(v)));
  }
  return texts.join('\n').toLowerCase();
}

/** Protect as the ingest does (the parser's recipients; a scan when it is not a report) and check. */
function protect(raw: Buffer, mode: 'hash' | 'drop' = 'hash') {
  const parsed = parseReport(raw, { recipientToken });
  const report = parsed.kind === 'arf' || parsed.kind === 'jmrp_legacy' ? parsed.report : null;
  return { parsed, kept: protectRawMessage(raw, report ? reportRecipients(report) : [], mode, SALT, report === null) };
}

const spec = (shape: ReportShape, recipient = 'victim@outlook.com') => ({ shape, index: 7, ip: '203.0.113.5', at: new Date('2026-10-01T12:00:00Z'), recipient, campaign: 'c', fromDomain: 'd.example' });

describe('protectRawMessage: no readable complainer address in the kept bytes', () => {
  it('a base64 report part (Outlook forwarding): decoded, hashed, encoded again; re-reading gives the same values', () => {
    const raw = Buffer.from(buildReport(spec('forwarded')));
    expect(everyText(raw)).toContain('victim@outlook.com');
    const { parsed, kept } = protect(raw);
    expect(kept.bytes).toBeInstanceOf(Buffer);
    expect(everyText(kept.bytes!)).not.toContain('victim@outlook.com');
    const again = parseReport(kept.bytes!, { recipientToken });
    expect(again.kind).toBe('arf');
    expect(parsed.kind).toBe('arf');
    if (again.kind !== 'arf' || parsed.kind !== 'arf') return;
    expect(protectRecipient(again.report.recipients[0], 'hash', SALT, true)).toBe(hashRecipient('victim@outlook.com', SALT));
    expect({ ...again.report, recipients: [], fields: {} }).toEqual({ ...parsed.report, recipients: [], fields: {} });
  });

  it('a legacy report whose original is attached in base64', () => {
    const plain = buildReport(spec('legacy'));
    const [head, rest] = plain.split('Content-Disposition: inline\r\n\r\n');
    const [original, tail] = rest!.split(/\r\n--b[^\r\n]*--\r\n$/);
    const b64 = Buffer.from(original!).toString('base64').replace(/.{76}/g, '$&\r\n');
    const raw = Buffer.from(`${head}Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n--b${(7).toString(36)}_legacy--\r\n${tail ?? ''}`);
    const { parsed, kept } = protect(raw);
    expect(parsed.kind).toBe('jmrp_legacy');
    expect(everyText(kept.bytes!)).not.toContain('victim@outlook.com');
    expect(parseReport(kept.bytes!).kind).toBe('jmrp_legacy');
  });

  it('a UTF-8 address, an encoded-word recipient field, a quoted-printable soft break inside the address', () => {
    const utf8 = Buffer.from(buildReport(spec('arf', 'jörg.müller@outlook.de')), 'utf8');
    expect(everyText(protect(utf8).kept.bytes!)).not.toContain('jörg.müller@outlook.de');

    const encodedWord = Buffer.from(
      buildReport(spec('legacy', 'ewvictim@hotmail.com')).replace('X-HmXmrOriginalRecipient: <ewvictim@hotmail.com>', `X-HmXmrOriginalRecipient: ${libmime.encodeWord('<ewvictim@hotmail.com>', 'B')}`),
    );
    expect(encodedWord.toString()).toContain('=?UTF-8?B?');
    const ew = protect(encodedWord);
    expect(everyText(ew.kept.bytes!)).not.toContain('ewvictim@hotmail.com');

    // The original's text part, quoted-printable, with the address broken by a soft line break.
    const qp = Buffer.from(buildReport(spec('arf', 'qpvictim@outlook.com')).replace('Hello, these are this week=E2=80=99s offers.', 'Hello qpvic=\r\ntim@outlook.com, offers.'));
    expect(everyText(qp)).toContain('qpvictim@outlook.com');
    const kept = protect(qp).kept.bytes!;
    expect(everyText(kept)).not.toContain('qpvictim@outlook.com');
    expect(parseReport(kept).kind).toBe('arf');
  });

  it('a report that cannot be parsed, and a message that is not one, are protected from their recipient fields', () => {
    const malformed = Buffer.from(buildReport(spec('malformed', 'quarantined@outlook.com')));
    const m = protect(malformed);
    expect(m.parsed.kind).toBe('malformed');
    expect(everyText(m.kept.bytes!)).not.toContain('quarantined@outlook.com');
    const stray = Buffer.from('From: someone@example.net\r\nSubject: fwd\r\n\r\nX-HmXmrOriginalRecipient: <stray@hotmail.com>\r\n');
    // A recipient field line anywhere counts, also in a body (a report pasted into a message, text the
    // MIME walk does not reach): what it names is protected.
    expect(everyText(protect(stray).kept.bytes!)).not.toContain('stray@hotmail.com');
    const strayHeader = Buffer.from('From: someone@example.net\r\nX-HmXmrOriginalRecipient: <stray@hotmail.com>\r\nTo: stray@hotmail.com\r\nSubject: fwd\r\n\r\nhi\r\n');
    expect(protect(strayHeader).parsed.kind).toBe('not_a_report');
    expect(everyText(protect(strayHeader).kept.bytes!)).not.toContain('stray@hotmail.com');
  });

  it('drop mode removes the address; plain mode keeps the bytes as received', () => {
    const raw = Buffer.from(buildReport(spec('forwarded')));
    const dropped = protect(raw, 'drop').kept.bytes!;
    expect(everyText(dropped)).not.toContain('victim@outlook.com');
    expect(everyText(dropped)).toContain('[recipient removed]');
    expect(protectRawMessage(raw, ['victim@outlook.com'], 'plain', SALT).bytes).toBeUndefined();
  });

  it('keeps no bytes when the address is in a body nested too deep to open, and says why', () => {
    let inner = Buffer.from('Original-Rcpt-To: <deep@outlook.com>\r\n\r\nbody\r\n');
    for (let i = 0; i < 6; i++) {
      inner = Buffer.from(`Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n${inner.toString('base64')}\r\n`);
    }
    const raw = Buffer.concat([Buffer.from('From: a@b.example\r\nSubject: nested\r\nMIME-Version: 1.0\r\n'), inner]);
    const kept = protectRawMessage(raw, ['<deep@outlook.com>'], 'hash', SALT);
    expect(kept.bytes).toBeNull();
    expect(kept.note).toMatch(/raw bytes not kept: the complainer's address could not be removed/);
  });

  it('an address in an attached .eml (application/octet-stream, base64 inside base64) or split across encoded words is removed', () => {
    const inner = ['From: a@b.example', 'MIME-Version: 1.0', 'Content-Type: text/plain', 'Content-Transfer-Encoding: base64', '', Buffer.from('To: victim@outlook.com\r\n').toString('base64'), ''].join('\r\n');
    const attached = Buffer.from(
      ['From: fwd@b.example', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=x', '', '--x', 'Content-Type: application/octet-stream; name=report.eml', 'Content-Transfer-Encoding: base64', '',
        Buffer.from(inner).toString('base64').replace(/.{76}/g, '$&\r\n'), '--x--', ''].join('\r\n'),
    );
    expect(everyText(attached)).not.toContain('victim@outlook.com'); // one decoding level does not show it…
    const kept = protectRawMessage(attached, ['victim@outlook.com'], 'hash', SALT).bytes!;
    const innerKept = decodeBody(parseMime(kept).root.children[0]!);
    expect(everyText(innerKept)).not.toContain('victim@outlook.com'); // …the second did, and was rewritten
    expect(everyText(innerKept)).toContain(hashRecipient('victim@outlook.com', SALT));

    const split = Buffer.from('From: a@b.example\r\nX-HmXmrOriginalRecipient: =?utf-8?B?dmljdGltQA==?= =?utf-8?B?b3V0bG9vay5jb20=?=\r\n\r\nhi\r\n');
    expect(everyText(split)).toContain('victim@outlook.com');
    const splitKept = protectRawMessage(split, ['victim@outlook.com'], 'hash', SALT).bytes!;
    expect(everyText(splitKept)).not.toContain('victim@outlook.com');
    expect(splitKept.toString()).toContain(`X-HmXmrOriginalRecipient: ${hashRecipient('victim@outlook.com', SALT)}\r\n`);
  });

  it('keeps no bytes when the address shows in a spelling it cannot rewrite, or past the part cap', () => {
    const cases = [
      Buffer.from('From: a@b.example\r\nTo: JÖRG.MÜLLER@outlook.de\r\n\r\nhi\r\n', 'utf8'), // another case outside ASCII
      Buffer.from('From: a@b.example\r\n\r\n<a href="https://x.example/u?e=jorg&#0064;outlook.de">unsubscribe</a>\r\n'), // an entity with leading zeros
      Buffer.from(['From: a@b.example', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=x', '', ...Array.from({ length: 501 }, () => ['--x', '', 'part']).flat(),
        '--x', 'Content-Transfer-Encoding: base64', '', Buffer.from('jorg@outlook.de').toString('base64'), '--x--', ''].join('\r\n')),
    ];
    const known = [['jörg.müller@outlook.de'], ['jorg@outlook.de'], ['jorg@outlook.de']];
    cases.forEach((raw, i) => {
      const kept = protectRawMessage(raw, known[i]!, 'hash', SALT);
      expect(kept.bytes, `case ${i}`).toBeNull();
      expect(kept.note).toMatch(/raw bytes not kept/);
    });
  });

  it('rewrites the escaped and VERP spellings of an address (%40, &#64;, &#x40;, &commat;, local=domain) and keeps the bytes', () => {
    const raw = Buffer.from('From: a@b.example\r\nReturn-Path: <b-1-jorg=outlook.de@bounce.b.example>\r\n\r\n<a href="https://x.example/u?e=JORG%40outlook.de&h=jorg&#64;outlook.de&x=jorg&#x40;outlook.de&c=jorg&commat;outlook.de">u</a>\r\n');
    const kept = protectRawMessage(raw, ['jorg@outlook.de'], 'hash', SALT);
    expect(kept.bytes).toBeInstanceOf(Buffer);
    const text = kept.bytes!.toString('latin1').toLowerCase();
    for (const spelling of ['jorg%40outlook.de', 'jorg&#64;outlook.de', 'jorg&#x40;outlook.de', 'jorg&commat;outlook.de', 'jorg=outlook.de', 'jorg@outlook.de']) expect(text).not.toContain(spelling);
    expect(text.split(hashRecipient('jorg@outlook.de', SALT)).length - 1).toBe(5);
  });

  it('a base64 body that ended with a line end still does after it is encoded again', () => {
    const raw = Buffer.from(`From: a@b.example\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from('Dear victim@outlook.com\r\n').toString('base64')}\r\n`);
    const out = protectRawMessage(raw, ['victim@outlook.com'], 'hash', SALT).bytes!;
    expect(out.toString('latin1').endsWith('\r\n')).toBe(true);
    expect(decodeBody(parseMime(out).root).toString()).toBe(`Dear ${hashRecipient('victim@outlook.com', SALT)}\r\n`);
  });

  it('encoded words in every form the reader decodes: adjacent without space, a long charset, folded text; and hostile runs return at once', () => {
    const forms = [
      'X-HmXmrOriginalRecipient: =?utf-8?Q?victim?==?utf-8?Q?=40outlook.com?=',
      `X-HmXmrOriginalRecipient: =?utf-8*${'x'.repeat(60)}?Q?victim=40outlook.com?=`,
      'X-HmXmrOriginalRecipient: =?utf-8?B?dmljdGltQG91dGxv?=\r\n =?utf-8?B?b2suY29t?=',
    ];
    for (const header of forms) {
      const raw = Buffer.from(`From: a@b.example\r\n${header}\r\nSubject: x\r\n\r\nhi\r\n`);
      const kept = protectRawMessage(raw, ['victim@outlook.com'], 'hash', SALT);
      // Rewritten, or not kept at all; never kept with the address readable.
      if (kept.bytes !== null) expect(everyText(kept.bytes ?? raw), header).not.toContain('victim@outlook.com');
    }
    // A hang test, not a timing target: these took quadratic time in the encoded-word pattern.
    for (const hostile of [`=?a?b?c?=${'\t'.repeat(200_000)}`, '=?a?b?c?= '.repeat(40_000), `=?utf-8?Q?a${'?'.repeat(200_000)}`]) {
      protectRawMessage(Buffer.from(`From: a@b.example\r\nSubject: ${hostile}\r\n\r\nvictim@outlook.com\r\n`), ['victim@outlook.com'], 'hash', SALT);
    }
  });

  it('a multipart that claims a transfer encoding is walked into, its parts protected, nothing damaged', () => {
    const report = buildReport(spec('arf')).split('\r\n\r\n');
    const head = report[0]!.replace('MIME-Version: 1.0', 'MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable');
    const raw = Buffer.from([head, ...report.slice(1)].join('\r\n\r\n'));
    const { parsed, kept } = protect(raw);
    expect(parsed.kind).toBe('arf');
    expect(everyText(kept.bytes!)).not.toContain('victim@outlook.com');
    expect(parseReport(kept.bytes!).kind).toBe('arf');
  });

  it('of overlapping addresses the longer is replaced whole; a hash is trusted only in bytes repwatch kept', () => {
    const raw = Buffer.from('From: a@b.example\r\nOriginal-Rcpt-To: <x@y.com>\r\nX-Other: <x@y.co>\r\n\r\nhi\r\n');
    const out = protectRawMessage(raw, ['x@y.co', 'x@y.com'], 'hash', SALT).bytes!.toString();
    expect(out).toContain(`Original-Rcpt-To: <${hashRecipient('x@y.com', SALT)}>`);
    expect(out).toContain(`X-Other: <${hashRecipient('x@y.co', SALT)}>`);
    const token = `hmac-sha256:${'0'.repeat(64)}`;
    expect(hashRecipient(`evil@x.example ${token}`, SALT)).not.toBe(token);
    expect(hashRecipient(`Jane <${token}>`, SALT, true)).toBe(token);
  });

  it('keeps no bytes when an embedded message lies at the part cap (not walked into)', () => {
    const inner = Buffer.from('Original-Rcpt-To: <capped@outlook.com>\r\n\r\nx\r\n').toString('base64');
    const parts = Array.from({ length: 499 }, () => ['--x', '', 'part']).flat();
    const raw = Buffer.from(['From: a@b.example', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=x', '', ...parts,
      '--x', 'Content-Type: message/rfc822', 'Content-Transfer-Encoding: base64', '', inner, '--x--', ''].join('\r\n'));
    expect(protectRawMessage(raw, ['capped@outlook.com'], 'hash', SALT).bytes).toBeNull();
  });

  it('a quoted-printable body is encoded again as quoted-printable, base64 as base64 with the same line width', () => {
    const text = Buffer.from('Dear victim@outlook.com, café\r\n');
    const raw = Buffer.from(
      ['From: a@b.example', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=x', '', '--x', 'Content-Transfer-Encoding: quoted-printable', '', libqp.encode(text), '--x',
        'Content-Transfer-Encoding: base64', '', text.toString('base64'), '--x--', ''].join('\r\n'),
    );
    const out = protectRawMessage(raw, ['victim@outlook.com'], 'hash', SALT).bytes!;
    const parts = parseMime(out).root.children;
    expect(parts.map((p) => p.encoding)).toEqual(['quoted-printable', 'base64']);
    for (const part of parts) expect(decodeBody(part).toString('utf8')).toBe(`Dear ${hashRecipient('victim@outlook.com', SALT)}, café\r\n`);
  });
});

describe('the content key of a report read again from its kept bytes', () => {
  it('is the key of the bytes as received when addresses were hashed, and holds no bare address digest', () => {
    const salt = SALT;
    for (const shape of ['arf', 'legacy', 'forwarded'] as ReportShape[]) {
      // The complainer also in a VERP return path and an escaped unsubscribe link: spellings the kept
      // bytes lose too, so the key read from them must not see them either.
      const raw = Buffer.from(
        buildReport({ shape, index: 3, ip: '203.0.113.8', at: new Date('2026-10-03T08:00:00Z'), recipient: 'Jane.Doe@hotmail.com', campaign: 'c', fromDomain: 'news.example' })
          .replace(/(Received: from app-)/, 'Return-Path: <bounce-3-jane.doe=hotmail.com@bounce.news.example>\r\nList-Unsubscribe-Post: u=jane.doe%40hotmail.com\r\n$1'),
      );
      const received = parseReport(raw, { recipientToken });
      if (received.kind !== 'arf' && received.kind !== 'jmrp_legacy') throw new Error(`${shape}: ${received.kind}`);
      expect(received.report.contentKey).toMatch(/^content:/);
      // Another salt, another key: the key cannot be recomputed from an address without the salt.
      expect('report' in parseReport(raw, { recipientToken: (a) => hashRecipient(a, 'another-salt-987') }) && received.report.contentKey).not.toBe(
        (parseReport(raw, { recipientToken: (a) => hashRecipient(a, 'another-salt-987') }) as { report: { contentKey: string } }).report.contentKey,
      );
      const kept = protectRawMessage(raw, reportRecipients(received.report), 'hash', salt);
      expect(kept.bytes).toBeInstanceOf(Buffer);
      expect(kept.bytes!.toString('latin1')).not.toMatch(/jane\.doe@hotmail\.com/i);
      const again = parseReport(kept.bytes!, { recipientToken });
      expect(again.kind).toBe(received.kind);
      expect('report' in again && again.report.contentKey).toBe(received.report.contentKey);
    }
  });
});
