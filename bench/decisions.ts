/**
 * `npm run bench -- decisions [--ips N] [--days N] [--runs N]`: 10,000 IPs x 90 days of SNDS rows
 * (with complaints, IP Status ranges and block evidence) in a PostgreSQL database of its own. Measures,
 * in the same run and on the same data, one sequential scan of the SNDS rows against computing and
 * storing every decision for the latest as-of date. Target: decisions <= 3x the scan. --keep leaves
 * the database for EXPLAIN; --skip-rebuild leaves out the (long) full rebuild.
 */
import { openDatabase } from '../db/connection.js';
import { migrate } from '../db/migrate.js';
import { configSchema } from '../config/schema.js';
import { computeDecisions } from '../transform/decisions.js';
import { rebuildAll } from '../transform/recompute.js';
import { recomputeFacts } from '../transform/facts.js';
import { createBenchDatabase, option, out, sec, median } from './support.js';

const FIRST_DAY = '2026-08-01';

export async function run(args: string[]): Promise<void> {
  const ips = Number(option(args, '--ips') ?? 10_000);
  const days = Number(option(args, '--days') ?? 90);
  const runs = Number(option(args, '--runs') ?? 7);
  const benchDatabase = await createBenchDatabase('decisions');
  const database = await openDatabase({ url: benchDatabase.url });
  try {
    await migrate(database);
    let t = performance.now();
    await generate(database, ips, days);
    out(`generated ${(ips * days).toLocaleString('en')} SNDS rows (${ips.toLocaleString('en')} IPs x ${days} days), complaints, IP Status ranges and block evidence in ${sec(performance.now() - t)}`);

    const config = configSchema.parse({});
    t = performance.now();
    await database.transaction((s) => recomputeFacts(s, null));
    // The steady state of a warehouse: autovacuum has visited the freshly loaded tables.
    await database.query('vacuum analyze');
    out(`daily facts for every IP and day: ${sec(performance.now() - t)}`);
    const asOf = (await database.query<{ d: string }>(`select max(day)::text as d from repwatch.snds_row`))[0]!.d;

    const scan: number[] = [];
    const decide: number[] = [];
    let decisions = 0;
    for (let i = 0; i < runs; i++) {
      // Alternate the two so that caching and background noise hit both alike.
      t = performance.now();
      await database.query('select count(*), sum(message_recipients), sum(trap_hits) from repwatch.snds_row');
      scan.push(performance.now() - t);
      t = performance.now();
      decisions = (await computeDecisions(database, config, asOf)).length;
      decide.push(performance.now() - t);
    }
    const scanMs = median(scan);
    const decideMs = median(decide);
    out(`sequential scan of the ${(ips * days).toLocaleString('en')} SNDS rows: ${ms(scanMs)} (median of ${runs})`);
    out(`all ${decisions.toLocaleString('en')} decisions for ${asOf} (sum, decide, store): ${ms(decideMs)} (median of ${runs})`);
    out(`ratio: ${(decideMs / scanMs).toFixed(2)} (target <= 3.0) ${decideMs <= 3 * scanMs ? 'PASS' : 'FAIL'}`);

    if (!args.includes('--skip-rebuild')) {
      t = performance.now();
      const summary = await rebuildAll(database, config);
      out(`transform --rebuild (facts + decisions for ${summary.asOfDates.length} as-of dates): ${sec(performance.now() - t)}`);
    }
    t = performance.now();
    await database.query(`select count(*) from analytics.ip_trend where day = $1`, [asOf]);
    out(`analytics.ip_trend for the latest day, all IPs: ${ms(performance.now() - t)}`);
  } finally {
    await database.close();
    if (args.includes('--keep')) out(`kept database ${benchDatabase.url}`);
    else await benchDatabase.drop();
  }
}

/** Deterministic synthetic data, written by the server itself (the bench measures decisions, not loading). */
async function generate(database: Awaited<ReturnType<typeof openDatabase>>, ips: number, days: number): Promise<void> {
  const dl = await database.query<{ id: number }>(
    `insert into repwatch.raw_download (source, kind, feed, location, fetched_at, sha256, byte_size, outcome)
     values ('file', 'ip_data', 'bench', 'bench', now(), 'bench-data', 0, 'loaded') returning id`,
  );
  await database.query(
    `insert into repwatch.snds_row (feed, day, ip, activity_start_raw, rcpt_commands, data_commands,
       message_recipients, filter_result, complaint_band, complaint_rate_low, complaint_rate_high, trap_hits, download_id, line_no)
     select 'bench', $1::date + d, '10.0.0.0'::inet + i, 'bench',
       r, r, r,
       case when h % 97 = 0 then 'RED' when h % 13 = 0 then 'YELLOW' else 'GREEN' end,
       case when h % 41 = 0 then '0.1% - < 1%' else '< 0.1%' end,
       case when h % 41 = 0 then 0.001 else 0 end,
       case when h % 41 = 0 then 0.01 else 0.001 end,
       case when h % 53 = 0 then 1 + h % 5 else 0 end,
       $2::bigint, i * $3::int + d
     from generate_series(0, $4::int - 1) as i, generate_series(0, $3::int - 1) as d,
       lateral (select abs(hashint4(i * 1000 + d)) as h) hh,
       lateral (select 100 + (abs(hashint4(i)) % 50000) as r) rr`,
    [FIRST_DAY, dl[0]!.id, days, ips],
  );
  // About 2 complaints per IP and week, concentrated on some IPs.
  const complaints = Math.round((ips * days * 2) / 7);
  await database.query(
    `with m as (
       insert into repwatch.mail_message (stream, mailbox, message_key, sha256, byte_size, classification)
       select 'jmrp', 'bench', 'bench-' || n, md5(n::text), 3000, 'complaint' from generate_series(1, $1::int) n
       returning id
     )
     insert into repwatch.feedback_report (message_ref, mailbox, report_format, feedback_type, is_complaint, source_ip, day, incidents)
     select id, 'bench', 'arf', 'abuse', true, '10.0.0.0'::inet + (abs(hashint4(id::int)) % $2::int) / (1 + abs(hashint4(id::int + 7)) % 4),
            $3::date + abs(hashint4(id::int + 3)) % $4::int, 1
     from m`,
    [complaints, ips, FIRST_DAY, days],
  );
  const st = await database.query<{ id: number }>(
    `insert into repwatch.raw_download (source, kind, feed, location, fetched_at, sha256, byte_size, outcome)
     values ('file', 'ip_status', 'bench', 'bench', ($1::date + $2::int - 1)::timestamp at time zone 'UTC', 'bench-status', 0, 'loaded') returning id`,
    [FIRST_DAY, days],
  );
  await database.query(
    `insert into repwatch.snds_status_range (download_id, feed, line_no, first_ip, last_ip, blocked, details)
     select $1::bigint, 'bench', n, '10.0.0.0'::inet + n * 97, '10.0.0.0'::inet + n * 97 + 3, true, 'Blocked due to user complaints or other evidence of spamming'
     from generate_series(0, 199) n`,
    [st[0]!.id],
  );
  await database.query(
    `insert into repwatch.block_evidence (ip, day, kind, route, reason, source)
     select '10.0.0.0'::inet + abs(hashint4(n)) % $1::int, $2::date + $3::int - 1 - n % 10,
            case when n % 3 = 0 then 'warning' else 'block' end,
            case when n % 3 = 1 then 'office365_portal' when n % 3 = 2 then 'outlook_form' end,
            case when n % 3 = 0 then (array['reputation_deferral', 'auth_requirements', 'dnsbl_listed'])[1 + (n / 3) % 3] end, 'bench'
     from generate_series(1, 2000) n`,
    [ips, FIRST_DAY, days],
  );
}



const ms = (value: number) => `${value.toFixed(0)} ms`;
