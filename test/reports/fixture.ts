import type { Database } from '../../db/connection.js';
import { addDays } from '../../lib/clock.js';
import { configSchema } from '../../config/schema.js';
import { DECISION_RULES_VERSION } from '../../transform/decisions.js';

/** Payloads that would run if anything reached the page unescaped: each sets a page-level flag. */
export const HOSTILE = {
  campaign: '<script>window.__pwned="script"</script>',
  subject: '<img src=x onerror="window.__pwned=\'img\'">',
  fromDomain: '"><svg onload="window.__pwned=\'svg\'">',
  details: "</td><iframe src=javascript:window.__pwned='iframe'></iframe>",
  reason: '<a href="javascript:window.__pwned=1">click</a> & more',
  mailbox: 'jmrp<b>bold</b>',
} as const;

/** The week 2026-W47 (Monday 16 to Sunday 22 November 2026). */
export const AS_OF = '2026-11-22';
const DEFAULT_THRESHOLDS = configSchema.parse({}).thresholds;
export const PREVIOUS_AS_OF = '2026-11-15';

export const IPS = {
  delist: '203.0.113.10',
  fix: '203.0.113.11',
  risk: '203.0.113.20',
  ok: '203.0.113.30',
  big: '198.51.100.5',
} as const;

/**
 * A small warehouse written straight into the tables behind the analytics views: 56 days of facts for
 * five IPs (one per status), decisions for this and the previous week, a block list, complaints with
 * hostile campaign ids, subjects and From domains, ledger runs, rejected rows and a quarantined message.
 */
export async function insertFixture(database: Database): Promise<void> {
  const facts: unknown[][] = [];
  for (let i = 0; i < 56; i++) {
    if (i === 5) continue; // 2026-11-17: no data at all (a gap the report must show)
    const day = addDays(AS_OF, -i);
    facts.push([IPS.delist, day, 1000, 'GREEN', 0, 0]);
    facts.push([IPS.fix, day, 2000, i < 7 ? 'RED' : 'GREEN', i === 2 ? 3 : 0, i < 7 ? 10 : 1]);
    facts.push([IPS.risk, day, 5000, i < 7 ? 'YELLOW' : 'GREEN', 0, 2]);
    if (i !== 4) facts.push([IPS.ok, day, 800, 'GREEN', 0, 0]); // one day without data
    facts.push([IPS.big, day, 100_000 + i, 'GREEN', 0, 5]);
  }
  await database.query(
    `insert into repwatch.ip_day_fact (ip, day, rcpt_commands, data_commands, message_recipients, filter_result, trap_hits, complaints, has_snds, has_red, has_yellow)
     select f.ip::inet, f.day::date, f.rcpt, f.rcpt, f.rcpt, f.filter, f.traps, f.complaints, true, f.filter = 'RED', f.filter = 'YELLOW'
       from jsonb_to_recordset($1::jsonb) as f(ip text, day text, rcpt bigint, filter text, traps int, complaints int)`,
    [JSON.stringify(facts.map(([ip, day, rcpt, filter, traps, complaints]) => ({ ip, day, rcpt, filter, traps, complaints })))],
  );
  // The days the SNDS loader would have recorded as loaded (the same gap on 17 November).
  const [daysDownload] = await database.query<{ id: number }>(
    `insert into repwatch.raw_download (source, kind, feed, location, sha256, byte_size, outcome) values ('file', 'ip_data', 'main', 'fixture', 'fixture-days', 0, 'loaded') returning id`,
  );
  await database.query(
    `insert into repwatch.snds_feed_day (feed, day, download_id, row_count)
     select 'main', d::date, $2, 5 from unnest($1::text[]) as t(d)`,
    [[...new Set(facts.map((f) => f[1] as string))], daysDownload!.id],
  );
  await database.query(
    `insert into repwatch.ip_pool (pool, cidr) values ('all', '0.0.0.0/0'), ('all', '::/0'), ('customers', '203.0.113.0/24')`,
  );
  const flags = [
    [AS_OF, IPS.delist, 'start_delisting', [], 7000, 0, 0, 0, true, 'outlook_form'],
    [AS_OF, IPS.fix, 'fix_first', ['complaint_rate', 'trap_hits', 'red_filter'], 14000, 64, 0.004571, 3, true, 'outlook_form'],
    [AS_OF, IPS.risk, 'at_risk', ['yellow_filter'], 35000, 14, 0.0004, 0, false, null],
    [AS_OF, IPS.ok, 'ok', [], 4800, 0, 0, 0, false, null],
    [AS_OF, IPS.big, 'ok', [], 700_021, 35, 0.00005, 0, false, null],
    [PREVIOUS_AS_OF, IPS.delist, 'ok', [], 7000, 0, 0, 0, false, null],
    [PREVIOUS_AS_OF, IPS.fix, 'at_risk', ['complaint_rate'], 14000, 7, 0.0005, 0, false, null],
    [PREVIOUS_AS_OF, IPS.risk, 'ok', [], 35000, 14, 0.0004, 0, false, null],
  ];
  for (const f of flags) {
    await database.query(
      `insert into repwatch.ip_flag (as_of, ip, status, reasons, recipients_7d, complaints_7d, complaint_rate_7d, trap_hits_7d, blocked, route, routes,
                                     window_days, complaint_rate_warn, complaint_rate_max, rules_version)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, case when $10::text is null then '{}'::text[] else array[$10::text] end, $11, $12, $13, $14)`,
      // Made with the default thresholds and the current rules: a report with the default config shows these rows as they are.
      [...f, DEFAULT_THRESHOLDS.windowDays, DEFAULT_THRESHOLDS.complaintRateWarn, DEFAULT_THRESHOLDS.complaintRateMax, DECISION_RULES_VERSION],
    );
  }
  const [download] = await database.query<{ id: number }>(
    `insert into repwatch.raw_download (source, kind, feed, location, fetched_at, sha256, byte_size, outcome)
     values ('url', 'ip_status', 'main', 'https://sendersupport.olc.protection.outlook.com/snds/ipStatus.aspx?key=[REDACTED]', '2026-11-22T06:00:00Z', 'abc', 10, 'loaded')
     returning id`,
  );
  await database.query(
    `insert into repwatch.snds_status_range (download_id, feed, line_no, first_ip, last_ip, blocked, details)
     values ($1, 'main', 1, '203.0.113.10', '203.0.113.11', true, $2)`,
    [download!.id, HOSTILE.details],
  );
  // Complaints: hostile strings in campaign ids, subjects and From domains.
  const complaints = [
    { ip: IPS.fix, day: '2026-11-20', campaign: HOSTILE.campaign, subject: HOSTILE.subject, from: HOSTILE.fromDomain, incidents: 3 },
    { ip: IPS.fix, day: '2026-11-21', campaign: HOSTILE.campaign, subject: HOSTILE.subject, from: HOSTILE.fromDomain, incidents: 1 },
    { ip: IPS.risk, day: '2026-11-19', campaign: 'spring-sale', subject: 'Spring sale', from: 'shop.example', incidents: 2 },
    { ip: IPS.delist, day: '2026-11-18', campaign: 'newsletter', subject: 'News', from: 'news.example', incidents: 1 },
    { ip: IPS.big, day: '2026-11-10', campaign: 'old-week', subject: 'Old', from: 'old.example', incidents: 9 },
  ];
  let n = 0;
  for (const c of complaints) {
    n++;
    const [message] = await database.query<{ id: number }>(
      `insert into repwatch.mail_message (stream, mailbox, message_key, message_id, sha256, byte_size, stored_at, classification)
       values ('jmrp', $1, $2, $3, $4, 100, $5, 'arf') returning id`,
      [HOSTILE.mailbox, `key-${n}`, `<m${n}@example>`, `sha-${n}`, `${c.day}T12:00:00Z`],
    );
    await database.query(
      `insert into repwatch.feedback_report (message_ref, mailbox, report_format, feedback_type, is_complaint, source_ip, source_ip_origin,
         complained_at, day, incidents, reported_domain, original_from_domain, campaign, subject)
       values ($1, $2, 'arf', 'abuse', true, $3, 'Source-IP', $4, $5, $6, 'hotmail.com', $7, $8, $9)`,
      [message!.id, HOSTILE.mailbox, c.ip, `${c.day}T12:00:00Z`, c.day, c.incidents, c.from, c.campaign, c.subject],
    );
  }
  await database.query(
    `insert into repwatch.mail_message (stream, mailbox, message_key, sha256, byte_size, stored_at, classification, reason, quarantined)
     values ('jmrp', $1, 'bad-1', 'sha-bad', 10, '2026-11-19T08:00:00Z', 'unparseable', $2, true)`,
    [HOSTILE.mailbox, HOSTILE.reason],
  );
  await database.query(
    `insert into repwatch.rejection (source, location, line_no, reason, raw, recorded_at) values
       ('snds', 'main 2026-11-18', 7, $1, 'x', '2026-11-18T07:00:00Z'),
       ('snds', 'main 2026-11-18', 9, $1, 'y', '2026-11-18T07:00:00Z'),
       ('snds', 'main 2026-11-01', 2, 'old', 'z', '2026-11-01T07:00:00Z')`,
    [HOSTILE.reason],
  );
  await database.query(
    `insert into repwatch.pipeline_run (job, period, status, started_at, finished_at, rows_in, rows_loaded, rows_rejected, detail) values
       ('snds:main', '2026-11-21', 'succeeded', '2026-11-22T06:15:00Z', '2026-11-22T06:16:00Z', 5, 5, 0, null),
       ('jmrp:main', 'batch', 'succeeded', '2026-11-21T10:00:00Z', '2026-11-21T10:01:00Z', 3, 3, 0, null),
       ('jmrp:main', 'batch', 'failed', '2026-11-22T10:00:00Z', '2026-11-22T10:00:05Z', 0, 0, 0, $1)`,
    [HOSTILE.reason],
  );
}
