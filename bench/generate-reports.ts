/**
 * Complaint reports of every shape, built from parameters: for the benchmarks, the tests and the
 * demo sample. Deterministic (a seeded generator), CRLF line endings like mail on the wire.
 * Lives under bench/ (not test/) because the build excludes test/ and the benchmarks need it.
 */

export type ReportShape = 'arf' | 'arf2026' | 'legacy' | 'auth_failure' | 'not_a_report' | 'malformed' | 'forwarded';

export interface ReportSpec {
  shape: ReportShape;
  index: number;
  /** The sending IP the report is about. */
  ip: string;
  /** When the complaint was made (Arrival-Date, or the Received date of the external hop). */
  at: Date;
  recipient: string;
  campaign: string;
  fromDomain: string;
  incidents?: number;
  /** Appended to every Message-ID: reports generated with another seed are other reports, and real
   * Message-IDs never repeat across reports. */
  idSuffix?: string;
}

const CRLF = '\r\n';

export function rfc5322Date(at: Date): string {
  return at.toUTCString().replace('GMT', '+0000');
}

function originalHeaders(spec: ReportSpec, options: { redactRecipient: boolean; microsoftHops: boolean }): string[] {
  const date = rfc5322Date(spec.at);
  const sent = rfc5322Date(new Date(spec.at.getTime() - 90_000));
  const lines: string[] = [];
  if (options.microsoftHops) {
    // Hops inside Microsoft above the external one: they must be skipped to find the sender.
    lines.push(
      `Received: from DM6PR11MB4545.namprd11.prod.outlook.com (2603:10b6:5:1a0::15) by BY5PR11MB4243.namprd11.prod.outlook.com with HTTPS; ${date}`,
      `Received: from BN8NAM12FT012.eop-nam12.prod.protection.outlook.com (2603:10b6:408:e8:cafe::5e) by DM6PR11MB4545.namprd11.prod.outlook.com`,
      ` (2603:10b6:5:1a0::15) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7633.18; ${date}`,
      `Authentication-Results: spf=pass (sender IP is ${spec.ip}) smtp.mailfrom=bounce.${spec.fromDomain}; dkim=pass (signature was verified) header.d=${spec.fromDomain};dmarc=pass action=none header.from=${spec.fromDomain};compauth=pass reason=100`,
      `Received-SPF: Pass (protection.outlook.com: domain of bounce.${spec.fromDomain} designates ${spec.ip} as permitted sender) receiver=protection.outlook.com; client-ip=${spec.ip}; helo=mta${spec.index % 7}.${spec.fromDomain}; pr=C`,
      `Received: from mta${spec.index % 7}.${spec.fromDomain} (${spec.ip}) by BN8NAM12FT012.mail.protection.outlook.com (10.13.182.182) with Microsoft SMTP Server id 15.20.7633.18 via Frontend Transport; ${date}`,
    );
  } else {
    lines.push(`Received: from mta${spec.index % 7}.${spec.fromDomain} (mta${spec.index % 7}.${spec.fromDomain} [${spec.ip}]) by mx.receiver.example with ESMTPS id ${spec.index.toString(16)}; ${date}`);
  }
  lines.push(
    `Received: from app-${spec.index % 3}.internal (unknown [10.20.0.${(spec.index % 200) + 1}]) by mta${spec.index % 7}.${spec.fromDomain} (Postfix) with ESMTP id ${(spec.index * 7919).toString(16)}; ${sent}`,
    `From: "Newsletter" <news@${spec.fromDomain}>`,
    `To: ${options.redactRecipient ? 'redacted@hotmail.com' : `<${spec.recipient}>`}`,
    `Subject: Weekly offers #${spec.index % 50}`,
    `Date: ${sent}`,
    `Message-ID: <orig-${spec.index}${spec.idSuffix ?? ''}@${spec.fromDomain}>`,
    `X-Campaign-ID: ${spec.campaign}`,
    `Feedback-ID: ${spec.campaign}:news:esp`,
    `List-Unsubscribe: <mailto:unsub-${spec.index}@${spec.fromDomain}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/alternative; boundary="alt-${spec.index}"`,
  );
  return lines;
}

/** The body of a whole original: a newsletter as text and HTML (what makes real reports ~3 KB). */
function originalBody(spec: ReportSpec): string[] {
  const offers = Array.from({ length: 6 }, (_, i) => `Offer ${i + 1}: ${['shoes', 'bags', 'coats', 'hats', 'scarves', 'boots'][i]} at ${10 + ((spec.index + i) % 40)}% off this week only.`);
  return [
    `--alt-${spec.index}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Hello, these are this week=E2=80=99s offers.',
    ...offers,
    `Unsubscribe: https://${spec.fromDomain}/u/${spec.index}`,
    '',
    `--alt-${spec.index}`,
    'Content-Type: text/html; charset=utf-8',
    '',
    `<html><body><h1>This week's offers</h1><table>${offers.map((o) => `<tr><td><a href="https://${spec.fromDomain}/o/${spec.index}">${o}</a></td></tr>`).join('')}</table>`,
    `<p><a href="https://${spec.fromDomain}/u/${spec.index}">Unsubscribe</a></p></body></html>`,
    '',
    `--alt-${spec.index}--`,
  ];
}

function arf(spec: ReportSpec, boundary: string): string[] {
  const head = [
    'From: Feedback Loop <fbl@reporter.example>',
    'To: fbl@sender.example',
    `Subject: FW: Weekly offers #${spec.index % 50}`,
    `Date: ${rfc5322Date(new Date(spec.at.getTime() + 600_000))}`,
    `Message-ID: <report-${spec.shape}-${spec.index}${spec.idSuffix ?? ''}@reporter.example>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=feedback-report; boundary="${boundary}"`,
    '',
    'This is a multi-part message in MIME format.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset="US-ASCII"',
    '',
    `This is an email abuse report for an email message received from IP ${spec.ip}.`,
    '',
    `--${boundary}`,
    'Content-Type: message/feedback-report',
    '',
  ];
  if (spec.shape === 'arf2026') {
    head.push('Feedback-Type: abuse', 'User-Agent: JMRP/1.0', 'Version: 1');
  } else {
    head.push(
      `Feedback-Type: ${spec.shape === 'auth_failure' ? 'auth-failure' : 'abuse'}`,
      'User-Agent: SomeGenerator/1.0',
      'Version: 1',
      `Original-Mail-From: <bounce-${spec.index}@bounce.${spec.fromDomain}>`,
      `Original-Rcpt-To: <${spec.recipient}>`,
      `Arrival-Date: ${rfc5322Date(spec.at)}`,
      'Reporting-MTA: dns; reporter.example',
      `Source-IP: ${spec.ip} (mta${spec.index % 7}.${spec.fromDomain})`,
      `Reported-Domain: ${spec.fromDomain}`,
      `Authentication-Results: reporter.example; spf=pass smtp.mailfrom=bounce.${spec.fromDomain}`,
    );
    if (spec.incidents && spec.incidents > 1) head.push(`Incidents: ${spec.incidents}`);
  }
  head.push('', `--${boundary}`);
  if (spec.shape === 'arf2026') {
    head.push('Content-Type: text/rfc822-headers', '', ...originalHeaders(spec, { redactRecipient: true, microsoftHops: true }), '');
  } else {
    head.push('Content-Type: message/rfc822', 'Content-Disposition: inline', '', ...originalHeaders(spec, { redactRecipient: false, microsoftHops: false }), '', ...originalBody(spec), '');
  }
  head.push(`--${boundary}--`, '');
  return head;
}

function legacy(spec: ReportSpec, boundary: string): string[] {
  const date = rfc5322Date(spec.at);
  return [
    `Received: from BAY0-MC1-F1.Bay0.hotmail.com ([65.55.116.80]) by mx.sender.example; ${rfc5322Date(new Date(spec.at.getTime() + 300_000))}`,
    'From: staff@hotmail.com',
    `Subject: complaint about message from ${spec.ip}`,
    'To: jmrp@sender.example',
    `Date: ${rfc5322Date(new Date(spec.at.getTime() + 300_000))}`,
    `Message-ID: <jmrp-${spec.index}${spec.idSuffix ?? ''}@hotmail.com>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: message/rfc822',
    'Content-Disposition: inline',
    '',
    `X-HmXmrOriginalRecipient: <${spec.recipient}>`,
    `X-Reporter-IP: 198.51.100.${spec.index % 250}`,
    `Authentication-Results: hotmail.com; spf=pass (sender IP is ${spec.ip}; identity alignment result is pass and alignment mode is relaxed) smtp.mailfrom=bounce@${spec.fromDomain}; dkim=pass header.d=${spec.fromDomain}`,
    `X-SID-PRA: news@${spec.fromDomain}`,
    `Received: from mta${spec.index % 7}.${spec.fromDomain} ([${spec.ip}]) by COL004-MC2F9.hotmail.com over TLS secured channel with Microsoft SMTPSVC(7.5.7601.23143);`,
    `\t ${date}`,
    `From: "Newsletter" <news@${spec.fromDomain}>`,
    `To: ${spec.recipient}`,
    `Subject: Weekly offers #${spec.index % 50}`,
    `Date: ${rfc5322Date(new Date(spec.at.getTime() - 60_000))}`,
    `Message-ID: <orig-${spec.index}${spec.idSuffix ?? ''}@${spec.fromDomain}>`,
    `X-Campaign-ID: ${spec.campaign}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/alternative; boundary="alt-${spec.index}"`,
    '',
    ...originalBody(spec),
    '',
    `--${boundary}--`,
    '',
  ];
}

/** One report as the bytes of a message (CRLF line endings). */
export function buildReport(spec: ReportSpec): string {
  const boundary = `b${spec.index.toString(36)}_${spec.shape}`;
  let lines: string[];
  switch (spec.shape) {
    case 'arf':
    case 'arf2026':
    case 'auth_failure':
      lines = arf(spec, boundary);
      break;
    case 'legacy':
      lines = legacy(spec, boundary);
      break;
    case 'forwarded': {
      // A person forwarding a report from Outlook: multipart/mixed, the report part base64 encoded.
      const inner = arf({ ...spec, shape: 'arf' }, `${boundary}in`).join(CRLF);
      const report = /Content-Type: message\/feedback-report\r\n\r\n([\s\S]*?)\r\n--/.exec(inner)?.[1] ?? '';
      const b64 = Buffer.from(report).toString('base64').replace(/.{76}/g, `$&${CRLF}`);
      lines = [
        'From: Postmaster <postmaster@sender.example>',
        'To: abuse@sender.example',
        'Subject: FW: abuse report',
        `Date: ${rfc5322Date(new Date(spec.at.getTime() + 3_600_000))}`,
        `Message-ID: <fwd-${spec.index}${spec.idSuffix ?? ''}@sender.example>`,
        'MIME-Version: 1.0',
        `Content-Type: multipart/mixed; boundary="${boundary}"`,
        '',
        `--${boundary}`,
        'Content-Type: text/plain; charset=utf-8',
        '',
        'See the attached report.',
        '',
        `--${boundary}`,
        'Content-Type: message/feedback-report; name="ATT00001"',
        'Content-Disposition: attachment; filename="ATT00001"',
        'Content-Transfer-Encoding: base64',
        '',
        b64,
        `--${boundary}`,
        'Content-Type: message/rfc822',
        'Content-Disposition: attachment',
        '',
        ...originalHeaders(spec, { redactRecipient: false, microsoftHops: false }),
        '',
        ...originalBody(spec),
        '',
        `--${boundary}--`,
        '',
      ];
      break;
    }
    case 'not_a_report':
      lines = [
        `From: "Customer ${spec.index}" <${spec.recipient}>`,
        'To: jmrp@sender.example',
        'Subject: Out of office',
        `Date: ${rfc5322Date(spec.at)}`,
        `Message-ID: <ooo-${spec.index}${spec.idSuffix ?? ''}@example.net>`,
        'Content-Type: text/plain; charset=utf-8',
        '',
        'I am out of the office until Monday.',
        '',
      ];
      break;
    case 'malformed':
      lines = arf({ ...spec, shape: 'arf' }, boundary).map((l) => (l.startsWith('Feedback-Type:') ? 'Feedbak-Tipe abuse' : l));
      lines = lines.map((l) => l.replace(`Message-ID: <report-arf-`, `Message-ID: <report-malformed-`));
      break;
  }
  return lines.join(CRLF);
}

/** A small deterministic generator (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GenerateOptions {
  count: number;
  seed?: number;
  ips?: string[];
  /** First day (UTC) and how many days the complaints spread over. */
  start?: string;
  days?: number;
  /** Shapes to cycle through (default the three JMRP shapes). */
  shapes?: ReportShape[];
}

export function defaultIps(n = 20): string[] {
  return Array.from({ length: n }, (_, i) => (i % 2 === 0 ? `203.0.113.${10 + i}` : `198.51.100.${10 + i}`));
}

/** `count` reports over the given days and IPs. */
export function* generateReports(options: GenerateOptions): Generator<{ spec: ReportSpec; eml: string }> {
  const random = seededRandom(options.seed ?? 42);
  const ips = options.ips ?? defaultIps();
  const shapes = options.shapes ?? (['arf', 'arf2026', 'legacy'] as ReportShape[]);
  const start = Date.parse(`${options.start ?? '2026-10-01'}T00:00:00Z`);
  const days = options.days ?? 30;
  for (let index = 0; index < options.count; index++) {
    const at = new Date(start + Math.floor(random() * days * 86_400_000 / 1000) * 1000);
    const spec: ReportSpec = {
      shape: shapes[index % shapes.length]!,
      index,
      ip: ips[Math.floor(random() * ips.length)]!,
      at,
      recipient: `user${Math.floor(random() * 100_000)}@hotmail.com`,
      campaign: `cmp-${Math.floor(random() * 12)}`,
      fromDomain: 'news.sender.example',
      ...(random() < 0.05 ? { incidents: 2 + Math.floor(random() * 3) } : {}),
      // The default seed keeps the IDs of the bundled sample; any other seed makes its own.
      ...(options.seed !== undefined && options.seed !== 42 ? { idSuffix: `.s${options.seed}` } : {}),
    };
    yield { spec, eml: buildReport(spec) };
  }
}

/** One mbox entry (mboxrd: every `>*From ` line in the message gets one more `>`). */
export function mboxEntry(eml: string, at: Date = new Date(Date.UTC(2026, 0, 1))): string {
  const body = eml.replace(/\r\n/g, '\n').replace(/^(>*From )/gm, '>$1');
  const asctime = at.toUTCString().replace(/^(\w{3}), (\d{2}) (\w{3}) (\d{4}) (\S+) GMT$/, '$1 $3 $2 $5 $4');
  return `From MAILER-DAEMON ${asctime}\n${body.endsWith('\n') ? body : `${body}\n`}\n`;
}
