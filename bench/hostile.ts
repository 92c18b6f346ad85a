/**
 * `npm run bench -- hostile`: the worst inputs a review found for each parser, at the sizes the ingest
 * accepts (a 10 MB mail message, the jmrp.maxMessageBytes default; a 256 MB SNDS download, the fetch
 * cap), each timed through the function the ingest calls at half the size and at the whole. Before the
 * fixes some took minutes (a quadratic scan, a backtracking regex); the target is linear work: twice the
 * bytes, at most about twice the time. Tests check the behaviour that keeps them cheap (caps, reasons);
 * the time is measured here.
 */
import { parseBounce } from '../ingest/bounces/parse-bounce.js';
import { knownIpMatcher } from '../ingest/jmrp/derive-source-ip.js';
import { classifyComplaintMessage } from '../ingest/jmrp/ingest-mailbox.js';
import { RecordCutter } from '../ingest/snds/csv-records.js';
import { out } from './support.js';

const MB = 1024 * 1024;

/** `unit` repeated to about `bytes` bytes. */
function fill(unit: string, bytes: number): string {
  return unit.repeat(Math.max(1, Math.floor(bytes / unit.length)));
}

/** Numbered lines to about `bytes` bytes. */
function numbered(bytes: number, line: (i: number) => string): string {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const l = line(i);
    lines.push(l);
    size += l.length + 1;
  }
  return lines.join('\n');
}

/** A 2026-shaped ARF report with room for hostile parts (LF line endings; the parser takes both). */
function arf(parts: { top?: string; report?: string; original?: string; originalSubject?: string; textPart?: string }): Buffer {
  return Buffer.from(
    [
      'From: staff@hotmail.com',
      'To: fbl@ours.example',
      'Subject: complaint about message from 203.0.113.9',
      'Date: Mon, 02 Nov 2026 10:00:00 +0000',
      'Message-ID: <hostile-1@hotmail.com>',
      'MIME-Version: 1.0',
      ...(parts.top ? [parts.top] : []),
      'Content-Type: multipart/report; report-type=feedback-report; boundary="BND"',
      '',
      '--BND',
      parts.textPart ?? 'Content-Type: text/plain\n\nThis is a complaint.',
      '--BND',
      'Content-Type: message/feedback-report',
      '',
      'Feedback-Type: abuse',
      'User-Agent: bench/1',
      'Version: 1',
      'Original-Rcpt-To: jane@isp.example',
      'Arrival-Date: Mon, 02 Nov 2026 09:00:00 +0000',
      ...(parts.report ? [parts.report] : []),
      '',
      '--BND',
      'Content-Type: message/rfc822',
      '',
      'Received: from mx.ours.example (mx.ours.example [203.0.113.9]) by mx.isp.example; Mon, 02 Nov 2026 08:00:00 +0000',
      'From: news@ours.example',
      `Subject: ${parts.originalSubject ?? 'hello'}`,
      'Message-ID: <o1@ours.example>',
      ...(parts.original ? [parts.original] : []),
      '',
      'body',
      '--BND--',
      '',
    ].join('\n'),
    'latin1',
  );
}

function ipv4(i: number): string {
  return `${1 + ((i >> 16) & 0xff)}.${(i >> 8) & 0xff}.${i & 0xff}.9`;
}

const COMPLAINTS: Record<string, (n: number) => Buffer> = {
  'one Received hop naming 60,000 IPs per MB': (n) => arf({ original: `Received: from x (${numbered(n, ipv4).replace(/\n/g, ' ')}) by y; Mon, 02 Nov 2026 08:00:00 +0000` }),
  'distinct Original-Rcpt-To addresses (28,000 per MB)': (n) => arf({ report: numbered(n, (i) => `Original-Rcpt-To: u${i}@isp.example`) }),
  'one Original-Rcpt-To repeated (29,000 times per MB)': (n) => arf({ report: fill('Original-Rcpt-To: jane@isp.example\n', n).trimEnd() }),
  'a base64 text part on one line': (n) =>
    arf({ textPart: `Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n${Buffer.from(`jane@isp.example ${fill('x', 0.75 * n)}`).toString('base64')}` }),
  "an original's Subject of Q encoded words": (n) => arf({ originalSubject: `=?utf-8?Q?${fill('= ', n)}?=` }),
  'a Content-Type of RFC 2231 continuations (90,000 per MB)': (n) =>
    arf({ textPart: `Content-Type: text/plain; ${numbered(n, (i) => `t*${i}*=%41;`).replace(/\n/g, ' ')}\n\nThis is a complaint.` }),
  'a Source-IP of the whole size': (n) => arf({ report: `Source-IP: ${fill('(a)', n)}` }),
};

function dsn(human: string, status: string): Buffer {
  return Buffer.from(
    `From: MAILER-DAEMON@mx.ours.example\nSubject: Undelivered Mail Returned to Sender\nDate: Mon, 02 Nov 2026 10:00:00 +0000\n` +
      `Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\nContent-Type: text/plain\n\n${human}\n` +
      `--B\nContent-Type: message/delivery-status\n\n${status}\n--B--\n`,
    'latin1',
  );
}

const BOUNCES: Record<string, (n: number) => Buffer> = {
  'a DSN of recipient groups (60,000 per MB) after 200 KB of text': (n) => dsn(fill('no codes here 0.0.0 ', 200_000), `Reporting-MTA: dns; mx\n\n${fill('Action: failed\n\n', n)}`),
  'a DSN of distinct per-message fields and groups': (n) => dsn('x', `${numbered(n / 2, (i) => `X-A${i}: b`)}\n\n${fill('Status: 5.0.0\n\n', n / 2)}`),
  'a plain bounce with one line of dashes': (n) =>
    Buffer.from(`From: MAILER-DAEMON@mx.ours.example\nSubject: Undelivered Mail Returned to Sender\nContent-Type: text/plain\n\n550 5.7.1 rejected\n${fill('-', n)}\n`),
};

function timed<T>(run: () => T): { ms: number; result: T } {
  const t0 = performance.now();
  const result = run();
  return { ms: performance.now() - t0, result };
}

/** Growth of the time from half the size to the whole: about 2 when linear, 4 when quadratic. */
const LINEAR_GROWTH_MAX = 3;

export async function run(): Promise<void> {
  let slowest = 0;
  let worstGrowth = 0;
  const context = { campaignHeaders: ['X-Campaign-ID'], isKnownIp: knownIpMatcher(['203.0.113.9'], []), readAt: new Date('2026-11-03T00:00:00Z'), privacy: { mode: 'hash' as const, salt: 'bench-salt' } };
  /** Times one case at 5 MB and at 10 MB (the message cap), the better of two runs each (a collection
   * of the garbage of the previous case can land in any one), and prints both with what came out at 10. */
  const measure = <T>(name: string, build: (n: number) => Buffer, parse: (raw: Buffer) => T, describe: (result: T) => string) => {
    const small = build(5 * MB);
    const half = Math.min(timed(() => parse(small)).ms, timed(() => parse(small)).ms);
    const raw = build(10 * MB);
    const first = timed(() => parse(raw));
    const { ms, result } = [first, timed(() => parse(raw))].sort((a, b) => a.ms - b.ms)[0]!;
    const growth = ms / Math.max(half, 1);
    slowest = Math.max(slowest, ms);
    worstGrowth = Math.max(worstGrowth, growth);
    out(`  ${name}: 5 MB ${half.toFixed(0)} ms, ${(raw.length / MB).toFixed(1)} MB ${ms.toFixed(0)} ms (x${growth.toFixed(1)}); ${describe(result)}`);
  };
  out('complaint messages (parse, derive the IP, protect the kept bytes: what the JMRP ingest does per message):');
  for (const [name, build] of Object.entries(COMPLAINTS)) {
    measure(name, build, (raw) => classifyComplaintMessage(raw, null, context), (result) => {
      const why = result.quarantineReason ?? result.reason ?? '';
      return `${result.classification}, ${result.kept.bytes === null ? 'no bytes kept' : 'bytes kept'}${why ? `: ${why.slice(0, 80)}` : ''}`;
    });
  }
  out('bounces (parseBounce):');
  for (const [name, build] of Object.entries(BOUNCES)) {
    measure(name, build, (raw) => parseBounce(raw, {}), (result) =>
      result.kind === 'bounce' ? `${result.recipients.length} recipient(s)${result.groupsNotRead ? `, ${result.groupsNotRead} groups not read` : ''}` : `${result.kind}: ${result.reason}`,
    );
  }
  out(`slowest 10 MB message: ${slowest.toFixed(0)} ms; largest growth from 5 to 10 MB: x${worstGrowth.toFixed(1)}  target linear (x < ${LINEAR_GROWTH_MAX}): ${worstGrowth < LINEAR_GROWTH_MAX ? 'MET' : 'NOT MET'}`);

  // SNDS: a download of the fetch cap with no line break, arriving in 1 MB pieces.
  const cutter = new RecordCutter();
  const piece = Buffer.alloc(MB, 0x41);
  const { ms } = timed(() => {
    for (let i = 0; i < 256; i++) cutter.push(piece);
    return cutter.end();
  });
  out(`SNDS: 256 MB without a line break, in 1 MB pieces, through the line cutter: ${ms.toFixed(0)} ms; ${cutter.overlong ? `stopped at the line starting at byte ${cutter.overlong.at} (over 1 MB)` : 'no over-long line noticed'}`);
}
