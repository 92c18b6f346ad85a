/**
 * `npm run bench -- report [--ips N] [--days N] [--runs N] [--keep]`: the weekly report on 10,000 IPs x
 * 90 days in a PostgreSQL database of its own. The data is written straight into the tables behind the
 * analytics views (daily facts, complaints with campaigns and From domains, an IP Status block list,
 * ledger runs), decisions are computed and stored as an ingest would, then the whole report (queries,
 * charts, HTML, Markdown, CSV, JSON, files) is timed; then `repwatch export` of the whole ip_day view in
 * each format, with its peak memory.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Database } from '../db/connection.js';
import { migrate } from '../db/migrate.js';
import { configSchema } from '../config/schema.js';
import { addDays } from '../lib/clock.js';
import { computeDecisions } from '../transform/decisions.js';
import { refreshPools } from '../transform/pools.js';
import { buildWeeklyReport, writeWeeklyReport, REPORT_FORMATS } from '../reports/weekly-report.js';
import { exportTable } from '../reports/export/export-table.js';
import { EXPORT_FORMATS } from '../reports/export/writers.js';
import { createBenchDatabase, option, out, sec, median } from './support.js';

const LAST_DAY = '2026-11-22'; // a Sunday: the report covers ISO week 2026-W47

export async function run(args: string[]): Promise<void> {
  const ips = Number(option(args, '--ips') ?? 10_000);
  const days = Number(option(args, '--days') ?? 90);
  const runs = Number(option(args, '--runs') ?? 3);
  const benchDatabase = await createBenchDatabase('report');
  const database = await openDatabase({ url: benchDatabase.url });
  const outDir = mkdtempSync(join(tmpdir(), 'repwatch-bench-report-'));
  try {
    await migrate(database);
    const config = configSchema.parse({ pools: { first: ['10.0.0.0/20'], second: ['10.0.16.0/20'] } });
    let t = performance.now();
    await generate(database, ips, days);
    await database.transaction((s) => refreshPools(s, config.pools));
    await database.query('analyze');
    out(`generated ${(ips * days).toLocaleString('en')} daily facts (${ips.toLocaleString('en')} IPs x ${days} days), complaints, block list: ${sec(performance.now() - t)}`);
    t = performance.now();
    const decisions = (await computeDecisions(database, config, LAST_DAY)).length;
    await computeDecisions(database, config, addDays(LAST_DAY, -7));
    out(`decisions stored for ${LAST_DAY} and the week before (${decisions.toLocaleString('en')} IPs each): ${sec(performance.now() - t)}`);

    const times: number[] = [];
    let summary = '';
    for (let i = 0; i < runs; i++) {
      t = performance.now();
      const report = await buildWeeklyReport(database, config, LAST_DAY, new Date());
      const written = await writeWeeklyReport(report, outDir, REPORT_FORMATS);
      times.push(performance.now() - t);
      const c = report.data.headline.statusCounts;
      summary =
        `${c.start_delisting} start_delisting, ${c.fix_first} fix_first, ${c.at_risk} at_risk, ${c.ok} ok; ` +
        `${report.data.charts.ips.length} IP charts + ${report.data.charts.pools.length} pool charts; ` +
        `HTML ${kb(statSync(written.html!).size)}, JSON ${kb(statSync(written.json!).size)}, CSV ${kb(statSync(written.csv!).size)}`;
    }
    out(`report content: ${summary}`);
    out(`weekly report, every format written (queries, charts, rendering): ${sec(median(times))} (median of ${runs}; runs ${times.map(sec).join(', ')})`);

    // Exports of the whole ip_day view: time, file size and the peak resident memory while writing.
    for (const format of EXPORT_FORMATS) {
      const file = join(outDir, `ip_day.${format}`);
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      t = performance.now();
      const { rows } = await exportTable(database, { table: 'ip_day', format, out: file });
      const elapsed = performance.now() - t;
      clearInterval(sampler);
      out(`export ip_day as ${format}: ${rows.toLocaleString('en')} rows in ${sec(elapsed)}, ${kb(statSync(file).size)}, peak RSS +${Math.round((peak - before) / 2 ** 20)} MiB`);
    }
  } finally {
    await database.close();
    rmSync(outDir, { recursive: true, force: true });
    if (args.includes('--keep')) out(`kept database ${benchDatabase.url}`);
    else await benchDatabase.drop();
  }
}

/** Deterministic synthetic data written by the server itself (the bench measures the report, not loading). */
async function generate(database: Database, ips: number, days: number): Promise<void> {
  const first = addDays(LAST_DAY, -(days - 1));
  await database.query(
    `insert into repwatch.ip_day_fact (ip, day, rcpt_commands, data_commands, message_recipients, filter_result, trap_hits, complaints, has_snds, has_red, has_yellow)
     select '10.0.0.0'::inet + i, $1::date + d, r, r, r, f, t, c, true, f = 'RED', f = 'YELLOW'
     from generate_series(0, $2::int - 1) as i, generate_series(0, $3::int - 1) as d,
       lateral (select abs(hashint4(i * 1000 + d)) as h, 100 + abs(hashint4(i)) % 50000 as r) x,
       lateral (select case when h % 97 = 0 then 'RED' when h % 13 = 0 then 'YELLOW' else 'GREEN' end as f,
                       case when h % 53 = 0 then 1 + h % 5 else 0 end as t,
                       case when i % 37 = 0 then r / 250 else r / (2000 + h % 20000) end as c) y`,
    [first, ips, days],
  );
  // Complaint reports for the last five weeks, with campaigns and From domains to rank.
  await database.query(
    `with m as (
       insert into repwatch.mail_message (stream, mailbox, message_key, sha256, byte_size, classification, stored_at)
       select 'jmrp', 'bench', 'bench-' || n, md5(n::text), 3000, 'arf', ($1::date - n % 35)::timestamptz from generate_series(1, $2::int) n
       returning id
     )
     insert into repwatch.feedback_report (message_ref, mailbox, report_format, feedback_type, is_complaint, source_ip, complained_at, day,
                                           incidents, original_from_domain, campaign, subject)
     select id, 'bench', 'arf', 'abuse', true, '10.0.0.0'::inet + abs(hashint4(id::int)) % $3::int,
            ($1::date - id::int % 35)::timestamptz, $1::date - id::int % 35, 1,
            'brand' || (id % 40) || '.example', 'campaign-' || (abs(hashint4(id::int + 1)) % 500), 'Offer ' || (id % 500)
     from m`,
    [LAST_DAY, ips * 5, ips],
  );
  const [status] = await database.query<{ id: number }>(
    `insert into repwatch.raw_download (source, kind, feed, location, fetched_at, sha256, byte_size, outcome)
     values ('file', 'ip_status', 'bench', 'bench', $1::date::timestamptz, 'bench-status', 0, 'loaded') returning id`,
    [LAST_DAY],
  );
  await database.query(
    `insert into repwatch.snds_status_range (download_id, feed, line_no, first_ip, last_ip, blocked, details)
     select $1::bigint, 'bench', n, '10.0.0.0'::inet + n * 97, '10.0.0.0'::inet + n * 97 + 3, true, 'Blocked due to user complaints or other evidence of spamming'
     from generate_series(0, 99) n`,
    [status!.id],
  );
  await database.query(
    `insert into repwatch.pipeline_run (job, period, status, started_at, finished_at, rows_in, rows_loaded, rows_rejected)
     select 'snds:bench', ($1::date - n)::text, 'succeeded', ($1::date - n + 1)::timestamptz, ($1::date - n + 1)::timestamptz + interval '1 minute', $2::int, $2::int, 0
     from generate_series(0, 27) n`,
    [LAST_DAY, ips],
  );
}



const kb = (bytes: number) => `${Math.round(bytes / 1024).toLocaleString('en')} KiB`;
