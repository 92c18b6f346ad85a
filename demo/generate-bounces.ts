import { writeFileSync } from 'node:fs';
import { addDays } from '../lib/clock.js';

/**
 * Bounce messages as our MTAs write them when Outlook.com or Exchange Online refuse mail, for every
 * Microsoft code repwatch reads, and a deterministic sample mailbox for the demo
 * (`node dist/demo/generate-bounces.js [out]` writes demo/sample/bounces.mbox).
 *
 * The diagnostic texts follow real NDRs: Outlook.com's "(S3140)" block text quoted in the seed article,
 * Exchange Online's "5.7.606 Access denied, banned sending IP [x]" with its AS(14xx) suffix, the S775
 * deferral with its [Name=Protocol Filter Agent] trailer, the legacy "(BAY004-MC1F4)" RP/SC/DY/OU
 * replies. The IPs are documentation ranges.
 */

export interface BounceSpec {
  /** Key of DIAGNOSTICS. */
  code: string;
  ip: string;
  recipient: string;
  senderDomain: string;
  at: Date;
  /** 'dsn' (Postfix-style multipart/report) or 'plain' (a text-only bounce). */
  shape?: 'dsn' | 'plain';
  id: string;
}

const MS_TRAILER = '[Name=Protocol Filter Agent][AGT=PFA][MxId=11B9A0E51E7E9F2C] [BN1NAM02FT028.eop-nam02.prod.protection.outlook.com 2026-11-02T09:12:44.315Z 08DD1A0B1C2D3E4F]';

/** The receiving server's reply for each code, `{ip}` and `{domain}` filled in. */
export const DIAGNOSTICS: Record<string, string> = {
  S3140: "550 5.7.1 Unfortunately, messages from [{ip}] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3140). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. " + MS_TRAILER,
  S3150: "550 5.7.1 Unfortunately, messages from [{ip}] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. " + MS_TRAILER,
  AS3140: "550 5.7.1 Service unavailable, Client host [{ip}] blocked using Blocklist 1; To request removal from this list please forward this message to delist@messaging.microsoft.com AS(3140)",
  '5.7.606': '550 5.7.606 Access denied, banned sending IP [{ip}]. To request removal from this list please visit https://sender.office.com/ and follow the directions. For more information please go to http://go.microsoft.com/fwlink/?LinkID=526655 AS(1430) [DM6NAM12FT058.eop-nam12.prod.protection.outlook.com]',
  '5.7.649': '550 5.7.649 Access denied, banned sending IP [{ip}]. To request removal from this list please visit https://sender.office.com/ and follow the directions. AS(1442) [SN1NAM02FT017.eop-nam02.prod.protection.outlook.com]',
  '5.7.511': '550 5.7.511 Access denied, banned sender[{ip}]. To request removal from this list please forward this message to delist@microsoft.com. For more information please go to http://go.microsoft.com/fwlink/?LinkId=526653. AS(1410) [BN8NAM11FT044.eop-nam11.prod.protection.outlook.com]',
  '5.7.515': "550 5.7.515 Access denied, sending domain [{DOMAIN}] does not meet the required authentication level. The sender's domain in the 5322.From address doesn't meet the authentication requirements defined for the sender. To learn more, see https://go.microsoft.com/fwlink/?linkid=2290835 [{ip}] [AM4PEPF00027A6C.eurprd04.prod.outlook.com]",
  S775: '451 4.7.650 The mail server [{ip}] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775) ' + MS_TRAILER,
  '4.7.650': '451 4.7.650 The mail server [{ip}] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com [BL02EPF0001A0FA.namprd09.prod.outlook.com]',
  'RP-001': '421 RP-001 (BAY004-MC1F4) Unfortunately, some messages from {ip} weren\'t sent. Please try again. We have limits for how many messages can be sent per hour and per day. You can also refer to http://mail.live.com/mail/troubleshooting.aspx#errors.',
  'RP-002': '421 RP-002 (COL004-MC2F6) Unfortunately, some messages from {ip} weren\'t sent. Please try again. We have limits for how many messages can be sent per hour and per day. You can also refer to http://mail.live.com/mail/troubleshooting.aspx#errors.',
  'RP-003': '421 RP-003 (SNT004-MC3F11) Unfortunately, some messages from {ip} weren\'t sent. Please try again. We have limits for how many connections can be opened. You can also refer to http://mail.live.com/mail/troubleshooting.aspx#errors.',
  'SC-001': "550 SC-001 (BAY004-MC5F25) Unfortunately, messages from {ip} weren't sent. Please contact your Internet service provider since part of their network is on our block list. You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
  'SC-002': "550 SC-002 (COL004-MC6F9) Unfortunately, messages from {ip} weren't sent. Please contact your Internet service provider. You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
  'SC-003': "550 SC-003 (SNT004-MC4F2) Unfortunately, messages from {ip} weren't sent. Please contact your Internet service provider. You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
  'SC-004': "550 SC-004 (BAY004-MC3F14) Unfortunately, messages from {ip} weren't sent. Please contact your Internet service provider since part of their network is on our block list. You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
  'DY-001': "550 DY-001 (SNT004-MC1F13) Unfortunately, messages from {ip} weren't sent. Please contact your Internet service provider. You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
  'DY-002': "550 DY-002 (COL004-MC1F22) Unfortunately, messages from {ip} weren't sent. Please contact your Internet service provider. You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
  'OU-001': "550 OU-001 (COL004-MC1F1) Unfortunately, messages from {ip} weren't sent. Please contact your Internet service provider since part of their network is on our block list. You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
  'OU-002': "550 OU-002 (BAY004-MC2F7) Unfortunately, messages from {ip} weren't sent. Please contact your Internet service provider since part of their network is on our block list. You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
  /** A bounce that is not Microsoft's: kept, no evidence. */
  other: '550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table',
};

const RECEIVERS: Record<string, string> = {
  'hotmail.com': 'hotmail-com.olc.protection.outlook.com[52.101.8.44]',
  'outlook.com': 'outlook-com.olc.protection.outlook.com[52.101.9.12]',
  'live.com': 'live-com.olc.protection.outlook.com[52.101.10.3]',
  'msn.com': 'msn-com.olc.protection.outlook.com[52.101.11.7]',
};

function receiverOf(recipient: string): string {
  const domain = recipient.slice(recipient.indexOf('@') + 1);
  return RECEIVERS[domain] ?? `${domain.replace(/\./g, '-')}.mail.protection.outlook.com[104.47.55.110]`;
}

export function diagnosticFor(spec: Pick<BounceSpec, 'code' | 'ip' | 'recipient' | 'senderDomain'>): string {
  const template = DIAGNOSTICS[spec.code];
  if (!template) throw new Error(`no diagnostic text for ${spec.code}`);
  return template.replaceAll('{ip}', spec.ip).replaceAll('{DOMAIN}', spec.senderDomain.toUpperCase()).replaceAll('{rcpt}', spec.recipient);
}

function rfc5322Date(at: Date): string {
  return at.toUTCString().replace('GMT', '+0000');
}

/** Fold a long field value at spaces (78 columns), as MTAs do. */
function fold(name: string, value: string): string {
  const words = value.split(' ');
  const lines: string[] = [];
  let line = `${name}:`;
  for (const word of words) {
    if (line.length + word.length + 1 > 78 && line.trim().length > name.length + 1) {
      lines.push(line);
      line = ` ${word}`;
    } else line += ` ${word}`;
  }
  lines.push(line);
  return lines.join('\n');
}

/** One bounce message (LF line endings). */
export function buildBounce(spec: BounceSpec): string {
  const diagnostic = diagnosticFor(spec);
  const temporary = diagnostic.startsWith('4');
  const receiver = receiverOf(spec.recipient);
  const queueId = spec.id.replace(/[^A-Z0-9]/gi, '').toUpperCase().slice(0, 11).padEnd(11, '0');
  const original = [
    `From: "Example Shop" <news@${spec.senderDomain}>`,
    `To: <${spec.recipient}>`,
    'Subject: Your November offers',
    `Date: ${rfc5322Date(new Date(spec.at.getTime() - 60_000))}`,
    `Message-ID: <${spec.id}.orig@${spec.senderDomain}>`,
    'X-Campaign-ID: nov-offers',
  ].join('\n');
  const date = rfc5322Date(spec.at);
  const subject = temporary ? 'Delayed Mail (still being retried)' : 'Undelivered Mail Returned to Sender';

  if (spec.shape === 'plain') {
    return [
      `From: MAILER-DAEMON@mta1.${spec.senderDomain} (Mail Delivery System)`,
      `To: bounces@${spec.senderDomain}`,
      `Subject: ${subject}`,
      `Date: ${date}`,
      `Message-ID: <${spec.id}@mta1.${spec.senderDomain}>`,
      '',
      'This is the mail system at host mta1.' + spec.senderDomain + '.',
      '',
      "I'm sorry to have to inform you that your message could not",
      'be delivered to one or more recipients.',
      '',
      `<${spec.recipient}>: host ${receiver} said:`,
      `    ${diagnostic} (in reply to MAIL FROM command)`,
      '',
      '------ This is a copy of the message, including all the headers. ------',
      '',
      original,
      '',
      'Hello!',
      '',
    ].join('\n');
  }

  const boundary = `${queueId}.${Math.floor(spec.at.getTime() / 1000)}/mta1.${spec.senderDomain}`;
  return [
    `From: MAILER-DAEMON@mta1.${spec.senderDomain} (Mail Delivery System)`,
    `To: bounces@${spec.senderDomain}`,
    `Subject: ${subject}`,
    `Date: ${date}`,
    `Message-ID: <${spec.id}@mta1.${spec.senderDomain}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;`,
    `\tboundary="${boundary}"`,
    'Auto-Submitted: auto-replied',
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `This is the mail system at host mta1.${spec.senderDomain}.`,
    '',
    temporary ? '####################################################################\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n####################################################################' : "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.",
    '',
    `<${spec.recipient}>: host ${receiver} said:`,
    `    ${diagnostic} (in reply to MAIL FROM command)`,
    '',
    `--${boundary}`,
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    `Reporting-MTA: dns; mta1.${spec.senderDomain}`,
    `X-Postfix-Queue-ID: ${queueId}`,
    `X-Postfix-Sender: rfc822; bounces@${spec.senderDomain}`,
    `Arrival-Date: ${rfc5322Date(new Date(spec.at.getTime() - 120_000))}`,
    '',
    `Final-Recipient: rfc822; ${spec.recipient}`,
    `Original-Recipient: rfc822;${spec.recipient}`,
    `Action: ${temporary ? 'delayed' : 'failed'}`,
    `Status: ${/^\d{3} (\d\.\d{1,3}\.\d{1,3})/.exec(diagnostic)?.[1] ?? (temporary ? '4.7.0' : '5.7.1')}`,
    `Remote-MTA: dns; ${receiver.replace(/\[.*$/, '')}`,
    fold('Diagnostic-Code', `smtp; ${diagnostic}`),
    `Last-Attempt-Date: ${date}`,
    '',
    `--${boundary}`,
    'Content-Description: Undelivered Message Headers',
    'Content-Type: text/rfc822-headers',
    '',
    original,
    '',
    `--${boundary}--`,
    '',
  ].join('\n');
}

/** mboxrd: a body line starting with ">*From " gets one more ">". */
export function toMbox(messages: { at: Date; text: string }[]): string {
  return messages
    .map(({ at, text }) => {
      const body = text.replace(/^(>*From )/gm, '>$1');
      return `From MAILER-DAEMON ${asctime(at)}\n${body.endsWith('\n') ? body : `${body}\n`}\n`;
    })
    .join('');
}

/** The mbox From_ line's date: `Mon Oct 26 08:38:54 2026` (UTC). */
function asctime(at: Date): string {
  const [weekday, day, month, year, time] = at.toUTCString().replace(',', '').split(' ');
  return `${weekday} ${month} ${day!.replace(/^0/, ' ')} ${time} ${year}`;
}

/** A small deterministic PRNG (mulberry32): the same sample on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const SAMPLE_FIRST_DAY = '2026-10-26';
export const SAMPLE_LAST_DAY = '2026-11-24';
export const SAMPLE_IPS = [
  ...Array.from({ length: 10 }, (_, i) => `203.0.113.${10 + i}`),
  ...Array.from({ length: 10 }, (_, i) => `198.51.100.${20 + i}`),
];

/**
 * The demo's bounces: background "user unknown" bounces on every IP, and the Microsoft cases the demo
 * tells a story with: 203.0.113.13 on the Outlook.com block list (S3140, several days), 198.51.100.27
 * on the Microsoft 365 list (5.7.606), 198.51.100.24 banned sender (5.7.511), 203.0.113.16 deferred on
 * reputation (S775), 203.0.113.11 failing bulk-sender authentication (5.7.515), one plain-text S3150.
 */
export function sampleBounceSpecs(): BounceSpec[] {
  const random = prng(20261124);
  const specs: BounceSpec[] = [];
  const domains = ['hotmail.com', 'outlook.com', 'live.com', 'msn.com'];
  let n = 0;
  const add = (code: string, ip: string, day: string, hour: number, options: { shape?: 'dsn' | 'plain'; domain?: string } = {}) => {
    n += 1;
    const domain = options.domain ?? domains[Math.floor(random() * domains.length)]!;
    const minute = String(Math.floor(random() * 60)).padStart(2, '0');
    const second = String(Math.floor(random() * 60)).padStart(2, '0');
    specs.push({
      code,
      ip,
      recipient: `user${String(n).padStart(4, '0')}@${domain}`,
      senderDomain: 'shop.example',
      at: new Date(`${day}T${String(hour).padStart(2, '0')}:${minute}:${second}Z`),
      id: `bounce-${String(n).padStart(4, '0')}`,
      shape: options.shape ?? 'dsn',
    });
  };
  for (let day = SAMPLE_FIRST_DAY; day <= SAMPLE_LAST_DAY; day = addDays(day, 1)) {
    for (let k = 0; k < 2; k++) add('other', SAMPLE_IPS[Math.floor(random() * SAMPLE_IPS.length)]!, day, 8 + k * 6);
  }
  for (const day of ['2026-11-19', '2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23']) add('S3140', '203.0.113.13', day, 9);
  add('S3150', '203.0.113.13', '2026-11-22', 14, { shape: 'plain' });
  add('5.7.606', '198.51.100.27', '2026-11-21', 10, { domain: 'contoso.com' });
  add('5.7.606', '198.51.100.27', '2026-11-23', 11, { domain: 'fabrikam.com' });
  add('5.7.511', '198.51.100.24', '2026-11-22', 15, { domain: 'contoso.com' });
  for (const day of ['2026-11-20', '2026-11-22', '2026-11-24']) add('S775', '203.0.113.16', day, 7);
  add('5.7.515', '203.0.113.11', '2026-11-23', 12);
  add('RP-001', '198.51.100.21', '2026-11-02', 16);
  return specs.sort((a, b) => a.at.getTime() - b.at.getTime() || a.id.localeCompare(b.id));
}

export function generateBouncesMbox(): string {
  return toMbox(sampleBounceSpecs().map((spec) => ({ at: spec.at, text: buildBounce(spec) })));
}

// `node dist/demo/generate-bounces.js [out]`
if (process.argv[1] && /generate-bounces\.[jt]s$/.test(process.argv[1])) {
  const out = process.argv[2] ?? 'demo/sample/bounces.mbox';
  writeFileSync(out, generateBouncesMbox());
  process.stdout.write(`wrote ${out}\n`);
}
