/**
 * `npm run bench -- hostile`: the worst inputs a review found for each parser, at the sizes the ingest
 * accepts (a 10 MB mail message, the jmrp.maxMessageBytes default; a 256 MB SNDS download, the fetch
 * cap), each timed once through the function the ingest calls. Before the fixes some took minutes (a
 * quadratic scan, a backtracking regex); the target is linear work, under 2 s for any one message.
 * Tests check the behaviour that keeps them cheap (caps, reasons); the time is measured here.
 */
import { parseBounce } from '../ingest/bounces/parse-bounce.js';
import { knownIpMatcher } from '../ingest/jmrp/derive-source-ip.js';
import { classifyComplaintMessage } from '../ingest/jmrp/ingest-mailbox.js';
import { RecordCutter } from '../ingest/snds/csv-records.js';
import { out } from './support.js';

const MB = 1024 * 1024;
const MESSAGE_TARGET_MS = 2000;

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

const COMPLAINTS: Record<string, () => Buffer> = {
  'one Received hop naming 600,000 IPs': () => arf({ original: `Received: from x (${numbered(10 * MB, ipv4).replace(/\n/g, ' ')}) by y; Mon, 02 Nov 2026 08:00:00 +0000` }),
  '300,000 distinct Original-Rcpt-To addresses': () => arf({ report: numbered(10 * MB, (i) => `Original-Rcpt-To: u${i}@isp.example`) }),
  'one Original-Rcpt-To repeated 290,000 times': () => arf({ report: fill('Original-Rcpt-To: jane@isp.example\n', 10 * MB).trimEnd() }),
  'a base64 text part on one 10 MB line': () =>
    arf({ textPart: `Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n${Buffer.from(`jane@isp.example ${fill('x', 7.5 * MB)}`).toString('base64')}` }),
  "an original's Subject of 10 MB of Q encoded words": () => arf({ originalSubject: `=?utf-8?Q?${fill('= ', 10 * MB)}?=` }),
  'a Content-Type of 900,000 RFC 2231 continuations': () =>
    arf({ textPart: `Content-Type: text/plain; ${numbered(10 * MB, (i) => `t*${i}*=%41;`).replace(/\n/g, ' ')}\n\nThis is a complaint.` }),
  'a Source-IP of 10 MB': () => arf({ report: `Source-IP: ${fill('(a)', 10 * MB)}` }),
};

function dsn(human: string, status: string): Buffer {
  return Buffer.from(
    `From: MAILER-DAEMON@mx.ours.example\nSubject: Undelivered Mail Returned to Sender\nDate: Mon, 02 Nov 2026 10:00:00 +0000\n` +
      `Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\nContent-Type: text/plain\n\n${human}\n` +
      `--B\nContent-Type: message/delivery-status\n\n${status}\n--B--\n`,
    'latin1',
  );
}

const BOUNCES: Record<string, () => Buffer> = {
  'a DSN of 600,000 recipient groups after 200 KB of text': () => dsn(fill('no codes here 0.0.0 ', 200_000), `Reporting-MTA: dns; mx\n\n${fill('Action: failed\n\n', 10 * MB)}`),
  'a DSN of 300,000 distinct per-message fields and groups': () => dsn('x', `${numbered(5 * MB, (i) => `X-A${i}: b`)}\n\n${fill('Status: 5.0.0\n\n', 5 * MB)}`),
  'a plain bounce with a 10 MB line of dashes': () =>
    Buffer.from(`From: MAILER-DAEMON@mx.ours.example\nSubject: Undelivered Mail Returned to Sender\nContent-Type: text/plain\n\n550 5.7.1 rejected\n${fill('-', 10 * MB)}\n`),
};

function timed<T>(run: () => T): { ms: number; result: T } {
  const t0 = performance.now();
  const result = run();
  return { ms: performance.now() - t0, result };
}

export async function run(): Promise<void> {
  let slowest = 0;
  const context = { campaignHeaders: ['X-Campaign-ID'], isKnownIp: knownIpMatcher(['203.0.113.9'], []), readAt: new Date('2026-11-03T00:00:00Z'), privacy: { mode: 'hash' as const, salt: 'bench-salt' } };
  out('complaint messages (parse, derive the IP, protect the kept bytes: what the JMRP ingest does per message):');
  for (const [name, build] of Object.entries(COMPLAINTS)) {
    const raw = build();
    const { ms, result } = timed(() => classifyComplaintMessage(raw, null, context));
    slowest = Math.max(slowest, ms);
    const kept = result.kept.bytes === null ? 'no bytes kept' : 'bytes kept';
    const why = result.quarantineReason ?? result.reason ?? '';
    out(`  ${name} (${(raw.length / MB).toFixed(1)} MB): ${ms.toFixed(0)} ms; ${result.classification}, ${kept}${why ? `: ${why.slice(0, 90)}` : ''}`);
  }
  out('bounces (parseBounce):');
  for (const [name, build] of Object.entries(BOUNCES)) {
    const raw = build();
    const { ms, result } = timed(() => parseBounce(raw, {}));
    slowest = Math.max(slowest, ms);
    const what = result.kind === 'bounce' ? `${result.recipients.length} recipient(s)${result.groupsNotRead ? `, ${result.groupsNotRead} groups not read` : ''}` : result.reason;
    out(`  ${name} (${(raw.length / MB).toFixed(1)} MB): ${ms.toFixed(0)} ms; ${result.kind}: ${what}`);
  }
  out(`slowest message: ${slowest.toFixed(0)} ms  target < ${MESSAGE_TARGET_MS} ms: ${slowest < MESSAGE_TARGET_MS ? 'MET' : 'NOT MET'}`);

  // SNDS: a download of the fetch cap with no line break, arriving in 1 MB pieces.
  const cutter = new RecordCutter();
  const piece = Buffer.alloc(MB, 0x41);
  const { ms } = timed(() => {
    for (let i = 0; i < 256; i++) cutter.push(piece);
    return cutter.end();
  });
  out(`SNDS: 256 MB without a line break, in 1 MB pieces, through the line cutter: ${ms.toFixed(0)} ms; ${cutter.overlong ? `stopped at the line starting at byte ${cutter.overlong.at} (over 1 MB)` : 'no over-long line noticed'}`);
}
