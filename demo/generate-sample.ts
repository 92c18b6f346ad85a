/**
 * The demo's bundled sample: 20 sending IPs over 30 days, written as Microsoft writes them: an SNDS IP
 * Data export (headerless, 14 columns), an IP Status export, and an mbox of JMRP complaint reports in
 * the three shapes seen in 2026 (classic ARF, Microsoft's 2026 ARF with only three report fields, and
 * the legacy staff@hotmail.com format), plus mail that is not a report and one broken report.
 *
 * Deterministic: the same seed and dates give byte-identical files. Regenerate with
 * `npm run build && node dist/demo/generate-sample.js`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addDays } from '../lib/clock.js';

export const SAMPLE_FIRST_DAY = '2026-10-26';
export const SAMPLE_LAST_DAY = '2026-11-24';
const DAYS = 30;

/** A small seeded PRNG (mulberry32): the sample must not change between runs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Scenario = 'ok' | 'blocked_clean' | 'blocked_dirty' | 'complaints' | 'yellow' | 'traps' | 'stopped' | 'red';

interface SampleIp {
  ip: string;
  scenario: Scenario;
  /** Typical daily recipients. */
  volume: number;
  /** Complaints per recipient. */
  rate: number;
  domain: string;
}

export const SAMPLE_IPS: SampleIp[] = [
  ...Array.from({ length: 10 }, (_, i) => ({ ip: `203.0.113.${10 + i}`, scenario: 'ok' as Scenario, volume: 1500 + i * 150, rate: 0.0003, domain: 'news.example.com' })),
  ...Array.from({ length: 10 }, (_, i) => ({ ip: `198.51.100.${20 + i}`, scenario: 'ok' as Scenario, volume: 900 + i * 120, rate: 0.0004, domain: 'mail.example.org' })),
];
const scenarios: Record<string, Partial<SampleIp>> = {
  '203.0.113.13': { scenario: 'blocked_clean', rate: 0.0002 },
  '198.51.100.27': { scenario: 'blocked_dirty', rate: 0.0045 },
  '203.0.113.15': { scenario: 'complaints', rate: 0.0016 },
  '203.0.113.17': { scenario: 'yellow' },
  '198.51.100.22': { scenario: 'traps' },
  '198.51.100.29': { scenario: 'stopped' },
  '198.51.100.24': { scenario: 'red', rate: 0.0012 },
};
for (const ip of SAMPLE_IPS) Object.assign(ip, scenarios[ip.ip] ?? {});

/** M/D/YYYY h:mm AM, as SNDS writes timestamps. */
function sndsTime(day: string, hour: number, minute = 0): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const h12 = hour % 12 === 0 ? 12 : hour % 12;
  return `${m}/${d}/${y} ${h12}:${String(minute).padStart(2, '0')} ${hour < 12 ? 'AM' : 'PM'}`;
}

export interface Sample {
  ipData: string;
  ipStatus: string;
  complaintsMbox: string;
}

export function generateSample(seed = 20261124): Sample {
  const random = prng(seed);
  const dataLines: string[] = [];
  const messages: string[] = [];
  let messageNo = 0;

  for (let d = 0; d < DAYS; d++) {
    const day = addDays(SAMPLE_FIRST_DAY, d);
    const recent = d >= DAYS - 7;
    for (const ip of SAMPLE_IPS) {
      if (ip.scenario === 'stopped' && d >= DAYS - 10) continue;
      const weekday = new Date(`${day}T00:00:00Z`).getUTCDay();
      const recipients = Math.round(ip.volume * (weekday === 0 || weekday === 6 ? 0.6 : 1) * (0.85 + random() * 0.3));
      const rcpt = recipients + Math.round(random() * 20);
      let colour = 'GREEN';
      if (ip.scenario === 'yellow' && recent && d % 3 === 0) colour = 'YELLOW';
      if (ip.scenario === 'red' && recent && d % 4 === 1) colour = 'RED';
      if (ip.scenario === 'blocked_dirty' && d >= DAYS - 12) colour = d % 2 ? 'RED' : 'YELLOW';
      const trapHits = ip.scenario === 'traps' && recent && d % 2 === 0 ? 1 + Math.floor(random() * 4) : 0;
      const band = ip.rate >= 0.003 ? '0.1% - < 1%' : '< 0.1%';
      const trapStart = trapHits ? sndsTime(day, 9, 12) : '';
      const trapEnd = trapHits ? sndsTime(day, 17, 40) : '';
      const comments = ip.scenario === 'blocked_dirty' && d === DAYS - 2 ? '"Abuse reported for: deals@mail.example.org, offers@mail.example.org"' : '';
      const fields = [ip.ip, sndsTime(day, 0), sndsTime(day, 23, 59), rcpt, rcpt, recipients, colour, band, trapStart, trapEnd, trapHits, '', '', comments];
      // Some rows arrive with 13 fields, as in real exports.
      dataLines.push((d + messageNo) % 17 === 0 && !comments ? fields.slice(0, 13).join(',') : fields.join(','));

      // Complaints: a Poisson-ish draw around recipients × rate, spread over the three report shapes.
      const expected = recipients * ip.rate;
      let complaints = Math.floor(expected) + (random() < expected - Math.floor(expected) ? 1 : 0);
      while (complaints > 0) {
        messageNo++;
        const incidents = complaints >= 4 && messageNo % 5 === 0 ? 3 : 1;
        complaints -= incidents;
        const minute = Math.floor(random() * 1440);
        const at = new Date(Date.parse(`${day}T00:00:00Z`) + minute * 60_000);
        const shape = messageNo % 10 < 5 ? 'arf2026' : messageNo % 10 < 8 ? 'arf' : 'legacy';
        messages.push(buildReport(shape, { ip: ip.ip, at, n: messageNo, domain: ip.domain, incidents }));
      }
    }
  }
  // Mail that arrives in the same mailbox but is not a complaint.
  const end = new Date(`${SAMPLE_LAST_DAY}T12:00:00Z`);
  messages.push(autoReply(end));
  messages.push(authFailureReport(end));
  messages.push(brokenReport(end));

  const ipStatus = [
    // One range spanning two adjacent addresses, one single address.
    '203.0.113.12,203.0.113.13,Yes,Blocked due to user complaints or other evidence of spamming',
    '198.51.100.27,198.51.100.27,True,Blocked due to user complaints or other evidence of spamming',
  ].join('\r\n');

  return {
    ipData: `\uFEFF${dataLines.join('\r\n')}\r\n`,
    ipStatus: `${ipStatus}\r\n`,
    complaintsMbox: messages.map((m) => toMboxEntry(m, 'staff@hotmail.com')).join(''),
  };
}

interface ReportInput {
  ip: string;
  at: Date;
  n: number;
  domain: string;
  incidents: number;
}

function rfc2822(date: Date): string {
  return date.toUTCString().replace('GMT', '+0000');
}

function originalHeaders(r: ReportInput, withMicrosoftHops: boolean): string {
  const sent = new Date(r.at.getTime() - 3_600_000);
  const hops = withMicrosoftHops
    ? [
        `Received: from DM6PR11MB4593.namprd11.prod.outlook.com (2603:10b6:5:1b4::22) by SN6PR11MB3360.namprd11.prod.outlook.com with HTTPS; ${rfc2822(sent)}`,
        `Received: from BN8NAM11FT047.eop-nam11.prod.protection.outlook.com (10.13.177.190) by DM6PR11MB4593.outlook.office365.com (2603:10b6:5:1b4::22) with Microsoft SMTP Server; ${rfc2822(sent)}`,
      ]
    : [];
  return [
    ...hops,
    `Received: from mta${r.n % 3}.${r.domain} (mta${r.n % 3}.${r.domain} [${r.ip}]) by BN8NAM11FT047.mail.protection.outlook.com (10.13.177.190) with Microsoft SMTP Server id 15.20.8000.0; ${rfc2822(sent)}`,
    `Authentication-Results: spf=pass (sender IP is ${r.ip}) smtp.mailfrom=${r.domain}; dkim=pass (signature was verified) header.d=${r.domain}; dmarc=pass action=none header.from=${r.domain};`,
    `From: "Example Offers" <offers@${r.domain}>`,
    'To: redacted@hotmail.com',
    `Subject: Weekly offers #${r.n}`,
    `Date: ${rfc2822(sent)}`,
    `Message-ID: <campaign-${r.n}@${r.domain}>`,
    `X-Campaign-ID: ${['autumn-sale', 'weekly-digest', 'reactivation', 'black-friday'][r.n % 4]}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
  ].join('\r\n');
}

function buildReport(shape: 'arf' | 'arf2026' | 'legacy', r: ReportInput): string {
  const boundary = `----=_repwatch_sample_${r.n}`;
  const date = rfc2822(r.at);
  if (shape === 'legacy') {
    return [
      'From: staff@hotmail.com',
      'To: fbl@example.com',
      `Subject: complaint about message from ${r.ip}`,
      `Date: ${date}`,
      `Message-ID: <jmrp-legacy-${r.n}@hotmail.com>`,
      'MIME-Version: 1.0',
      `Content-Type: multipart/mixed; boundary="${boundary}"`,
      '',
      `--${boundary}`,
      'Content-Type: message/rfc822',
      'Content-Disposition: inline',
      '',
      `X-HmXmrOriginalRecipient: user${r.n}@hotmail.com`,
      'X-Reporter-IP: 192.0.2.1',
      originalHeaders(r, false),
      '',
      'This is the original message body.',
      `--${boundary}--`,
      '',
    ].join('\r\n');
  }
  const reportFields =
    shape === 'arf'
      ? ['Feedback-Type: abuse', 'User-Agent: Hotmail FBL', 'Version: 1', `Source-IP: ${r.ip}`, `Arrival-Date: ${date}`, `Original-Mail-From: <bounce-${r.n}@${r.domain}>`, `Reported-Domain: ${r.domain}`, ...(r.incidents > 1 ? [`Incidents: ${r.incidents}`] : [])]
      : ['Feedback-Type: abuse', 'User-Agent: JMRP/1.0', 'Version: 1', ...(r.incidents > 1 ? [`Incidents: ${r.incidents}`] : [])];
  return [
    'From: "Microsoft JMRP" <jmrp@microsoft.com>',
    'To: fbl@example.com',
    `Subject: ${shape === 'arf' ? 'FW: ' : ''}Complaint report`,
    `Date: ${date}`,
    `Message-ID: <jmrp-${shape}-${r.n}@microsoft.com>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=feedback-report; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'This is an email abuse report for an email message received from a Microsoft consumer mailbox.',
    `--${boundary}`,
    'Content-Type: message/feedback-report',
    '',
    ...reportFields,
    '',
    `--${boundary}`,
    shape === 'arf' ? 'Content-Type: message/rfc822' : 'Content-Type: text/rfc822-headers',
    '',
    originalHeaders(r, shape === 'arf2026'),
    '',
    ...(shape === 'arf' ? ['REDACTED', ''] : []),
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

function autoReply(at: Date): string {
  return ['From: "Out of office" <someone@example.net>', 'To: fbl@example.com', 'Subject: Automatic reply: Weekly offers', `Date: ${rfc2822(at)}`, '<sample-autoreply@example.net>'.replace(/^/, 'Message-ID: '), 'Content-Type: text/plain', '', 'I am away until Monday.', 'From the desk of someone: this line starts with From and is quoted in the mbox.', ''].join('\r\n');
}

function authFailureReport(at: Date): string {
  const b = 'authfail-boundary';
  return [
    'From: dmarc-reports@example.net',
    'To: fbl@example.com',
    'Subject: DMARC failure report',
    `Date: ${rfc2822(at)}`,
    'Message-ID: <sample-authfail@example.net>',
    `Content-Type: multipart/report; report-type=feedback-report; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain',
    '',
    'An authentication failure report.',
    `--${b}`,
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: auth-failure',
    'User-Agent: example-dmarc/1.0',
    'Version: 1',
    'Source-IP: 203.0.113.11',
    'Auth-Failure: dmarc',
    '',
    `--${b}--`,
    '',
  ].join('\r\n');
}

function brokenReport(at: Date): string {
  return [
    'From: "Microsoft JMRP" <jmrp@microsoft.com>',
    'To: fbl@example.com',
    'Subject: Complaint report',
    `Date: ${rfc2822(at)}`,
    'Message-ID: <sample-broken@microsoft.com>',
    'Content-Type: multipart/report; report-type=feedback-report; boundary="never-closed"',
    '',
    '--never-closed',
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type abuse without a colon',
    '',
  ].join('\r\n');
}

/** mboxrd: a "From " separator line per message, and body lines matching /^>*From / get one more '>'. */
function toMboxEntry(message: string, sender: string): string {
  const dateLine = (message.match(/^Date: (.+)$/m)?.[1] ?? 'Mon, 24 Nov 2026 12:00:00 +0000').trim();
  const when = new Date(dateLine);
  const asctime = when.toUTCString().replace(/^(\w+), (\d+) (\w+) (\d+) ([\d:]+) GMT$/, (_, wd, d, mon, y, t) => `${wd} ${mon} ${String(d).padStart(2, ' ')} ${t} ${y}`);
  const body = message.replace(/\r\n/g, '\n').replace(/^(>*From )/gm, '>$1');
  return `From ${sender} ${asctime}\n${body}${body.endsWith('\n') ? '' : '\n'}\n`;
}

/** Write the sample into demo/sample/ (the files the demo and the tests load). */
export function writeSample(dir: string): Sample {
  const sample = generateSample();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'snds-ip-data.csv'), sample.ipData);
  writeFileSync(join(dir, 'snds-ip-status.csv'), sample.ipStatus);
  writeFileSync(join(dir, 'jmrp-complaints.mbox'), sample.complaintsMbox);
  return sample;
}

/** The folder with the bundled sample, from the source tree or from dist/. */
export function sampleDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(`${'/'}dist${'/'}`) ? join(here, '..', '..', 'demo', 'sample') : join(here, 'sample');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const sample = writeSample(sampleDir());
  process.stdout.write(`wrote ${sampleDir()}: ${sample.ipData.split('\n').length - 1} SNDS rows, ${sample.complaintsMbox.match(/^From /gm)?.length ?? 0} messages\n`);
}
