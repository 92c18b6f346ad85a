import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import type { Config } from '../config/schema.js';
import { registerSecretUrl } from '../lib/redact.js';
import type { WeeklyReport } from './weekly-report.js';

export type ReportEmailConfig = NonNullable<Config['reports']['email']>;

/** The SMTP URL from the config or its file; registered as a secret before it can reach any log. */
export function smtpUrlOf(email: ReportEmailConfig): string {
  const url = email.smtpUrl ?? (email.smtpUrlFile ? readFileSync(email.smtpUrlFile, 'utf8').trim() : undefined);
  if (!url) throw new Error('reports.email needs smtpUrl or smtpUrlFile');
  registerSecretUrl(url);
  return url;
}

/**
 * Send the weekly report: the HTML as the rich part, the Markdown's layout without its escapes as the
 * plain-text part, the HTML file and the decisions CSV attached. Returns the SMTP message id.
 */
export async function sendWeeklyReport(email: ReportEmailConfig, report: WeeklyReport): Promise<{ messageId: string; accepted: string[] }> {
  const transport = nodemailer.createTransport(smtpUrlOf(email));
  try {
    const p = report.period;
    const counts = report.data.headline.statusCounts;
    const info = await transport.sendMail({
      from: email.from,
      to: email.to,
      subject: `repwatch ${p.isoWeek ? p.week : `7 days to ${p.to}`}: ${counts.start_delisting} to delist, ${counts.fix_first} to fix first, ${counts.at_risk} at risk`,
      text: report.text,
      html: report.html,
      // Many mail clients (Gmail, Outlook) show no inline SVG and clip long bodies: the same HTML goes
      // along as a file that opens in a browser with its charts.
      attachments: [
        { filename: `repwatch-weekly-${p.isoWeek ? p.week : p.to}.html`, content: report.html, contentType: 'text/html; charset=utf-8' },
        { filename: `repwatch-decisions-${p.to}.csv`, content: report.csv, contentType: 'text/csv; charset=utf-8' },
      ],
    });
    return { messageId: info.messageId, accepted: (info.accepted ?? []).map(String) };
  } finally {
    transport.close();
  }
}
