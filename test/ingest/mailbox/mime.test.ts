import { describe, expect, it } from 'vitest';
import { CLIPPED_CONTENT_TYPE, decodeBody, decodeEncodedWords, domainOf, MAX_HEADER_VALUE, parseContentType, parseMime, walkParts } from '../../../ingest/mailbox/mime.js';
import { parseMailDate } from '../../../ingest/mailbox/mail-date.js';

describe('parseMime', () => {
  it('walks multipart and embedded messages, decodes base64 and quoted-printable', () => {
    const raw = [
      'Content-Type: multipart/mixed; boundary="outer"',
      '',
      '--outer',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'caf=C3=A9 =',
      'soft',
      '--outer',
      'Content-Type: application/octet-stream',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('binary data').toString('base64'),
      '--outer',
      'Content-Type: message/rfc822',
      '',
      'Subject: inner',
      'Content-Type: multipart/alternative; boundary=inner',
      '',
      '--inner',
      'Content-Type: text/plain',
      '',
      'inner text',
      '--inner--',
      '--outer--',
      'epilogue',
    ].join('\r\n');
    const { root, problems } = parseMime(Buffer.from(raw));
    expect(problems).toEqual([]);
    const parts = [...walkParts(root)];
    expect(parts.map((p) => p.contentType)).toEqual(['multipart/mixed', 'text/plain', 'application/octet-stream', 'message/rfc822', 'multipart/alternative', 'text/plain']);
    expect(decodeBody(parts[1]!).toString()).toBe('café soft');
    expect(decodeBody(parts[2]!).toString()).toBe('binary data');
    expect(parts[3]!.embedded!.headers.get('subject')).toEqual(['inner']);
    expect(decodeBody(parts[5]!).toString()).toBe('inner text');
  });

  it('is lenient with a missing closing boundary and reports it', () => {
    const { root, problems } = parseMime(Buffer.from('Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nunterminated\n'));
    expect(root.children).toHaveLength(1);
    expect(problems.join()).toMatch(/closing boundary/);
  });

  it('parses parameters with quotes, RFC 2231 and case', () => {
    const { type, params } = parseContentType('Multipart/Report; Report-Type="feedback-report"; boundary*=utf-8\'\'a%20b; x="semi;colon"');
    expect(type).toBe('multipart/report');
    expect(params['report-type']).toBe('feedback-report');
    expect(params.boundary).toBe('a b');
    expect(params.x).toBe('semi;colon');
    expect(Object.getPrototypeOf(params)).toBeNull();
  });

  it('joins RFC 2231 continuations, keeps the first of repeated parameters, and survives hostile names', () => {
    const { params } = parseContentType('multipart/mixed; boundary*0="part-one-"; boundary*1="part-two"; __proto__=x; constructor=y; charset=a; charset=b');
    expect(params.boundary).toBe('part-one-part-two');
    expect(params.constructor).toBe('y');
    expect(Object.getPrototypeOf(params)).toBeNull();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(parseContentType('; ; =; "unterminated').type).toBe('');
  });

  it('reads a Content-Type longer than MAX_HEADER_VALUE (hostile RFC 2231 continuations) from its start, and says so', () => {
    let params = '';
    for (let i = 0; params.length <= MAX_HEADER_VALUE; i++) params += ` t*${i}*=%41;`;
    const { root, problems } = parseMime(Buffer.from(`Content-Type: text/plain;${params} charset=iso-8859-2\r\n\r\nhi\r\n`));
    expect(root.contentType).toBe('text/plain');
    expect(root.params.charset).toBeUndefined(); // past what was read
    expect(problems).toEqual([CLIPPED_CONTENT_TYPE]);
    // At the cap the value is read whole.
    const whole = parseMime(Buffer.from(`Content-Type: text/plain; charset=iso-8859-2; x=${'a'.repeat(MAX_HEADER_VALUE - 'text/plain; charset=iso-8859-2; x='.length)}\r\n\r\nhi\r\n`));
    expect(whole.root.params.charset).toBe('iso-8859-2');
    expect(whole.problems).toEqual([]);
  });

  it('decodes encoded words in charsets beyond UTF-8 and leaves broken ones readable', () => {
    expect(decodeEncodedWords('=?windows-1252?Q?Beschwerde_=FCber_=80?=')).toBe('Beschwerde über €');
    expect(decodeEncodedWords('=?koi8-r?B?8NLJ18XU?=')).toBe('Привет');
    expect(decodeEncodedWords('plain =?broken')).toBe('plain =?broken');
  });

  it('decodes encoded words and mail dates', () => {
    expect(decodeEncodedWords('=?utf-8?B?Y2Fmw6k=?= =?ISO-8859-1?Q?_=E9t=E9?=')).toBe('café été');
    expect(parseMailDate('Thu, 29 Apr 2013 23:45:50 PST')?.toISOString()).toBe('2013-04-30T07:45:50.000Z');
    expect(parseMailDate('29 Apr 2016 23:34:45 +0000 (UTC)')?.toISOString()).toBe('2016-04-29T23:34:45.000Z');
    expect(parseMailDate('2018-09-28 08:48:36.858842501 +0000 UTC')?.toISOString()).toBe('2018-09-28T08:48:36.000Z');
    // An offset written with a colon is still an offset: 20:30 at -08:00 is the next UTC day.
    expect(parseMailDate('Mon, 02 Mar 2026 20:30:00 -08:00')?.toISOString()).toBe('2026-03-03T04:30:00.000Z');
    expect(parseMailDate('Mon, 02 Mar 2026 20:30:00 +0530')?.toISOString()).toBe('2026-03-02T15:00:00.000Z');
    expect(parseMailDate('yesterday')).toBeNull();
    expect(parseMailDate('1 Jan 1970 00:00:00 +0000')).toBeNull();
  });
});

describe('domainOf', () => {
  it('takes the domain after the last @, without trailing dots, > or any kind of space, in lower case', () => {
    expect(domainOf('News <news@Shop.Example>')).toBe('shop.example');
    expect(domainOf('a@example.com.\u00a0')).toBe('example.com');
    expect(domainOf('a@example.com\u2028')).toBe('example.com');
    expect(domainOf('a@example.com. >')).toBe('example.com');
    expect(domainOf('a@')).toBeNull();
    expect(domainOf(`a@${'x'.repeat(300)}`)).toBeNull();
    expect(domainOf(null)).toBeNull();
  });
});
