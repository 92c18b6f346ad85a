/**
 * `npm run bench -- snds [--ips N] [--days N] [--runs N] [--skip-pglite]`: a 1,000,000-row IP Data export
 * (10,000 IPs x 100 days, the real 14-column layout) loaded into PostgreSQL through the real ingest
 * path (raw bytes stored, parsed, COPYed into snds_row), against psql's `\copy` of the same file into
 * a bare 14-text-column table on the same server, in the same run. Target: ratio <= 2.0, peak RSS of
 * the ingest < 300 MB. The ingest runs in a child process so its peak RSS is its own. Then the same
 * file into the embedded PGlite (time reported, no target).
 */
import { spawnSync, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { openDatabase } from '../db/connection.js';
import { migrate } from '../db/migrate.js';
import { ingestLocalInput } from '../ingest/snds/ingest-input.js';
import { option, out, sec } from './support.js';

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export async function run(args: string[]): Promise<void> {
  if (args[0] === '--child') return child(args.slice(1));
  const ips = Number(option(args, '--ips') ?? 10_000);
  const days = Number(option(args, '--days') ?? 100);
  const serverUrl = process.env.DATABASE_URL || DEFAULT_URL;
  const dir = mkdtempSync(join(tmpdir(), 'repwatch-bench-snds-'));
  const file = join(dir, 'ip-data.csv');
  const dbName = `repwatch_bench_snds_${process.pid}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const t0 = performance.now();
    await generate(file, ips, days);
    const rows = ips * days;
    const size = statSync(file).size;
    out(`generated ${rows.toLocaleString('en')} rows (${(size / 2 ** 20).toFixed(0)} MiB) in ${sec(performance.now() - t0)}`);

    await admin.query(`create database ${dbName}`);
    const url = new URL(serverUrl);
    url.pathname = `/${dbName}`;
    const database = await openDatabase({ url: url.toString() });
    await migrate(database);
    await database.query(`create table bench_bare (${Array.from({ length: 14 }, (_, i) => `c${i} text`).join(', ')})`);
    await database.close();

    // Paired runs, \copy then ingest, each on empty tables: the machine is shared and noisy, so each
    // ratio compares two loads measured moments apart, and the median of the ratios is reported.
    const runs = Math.max(1, Number(option(args, '--runs') ?? 3));
    const ratios: number[] = [];
    const results: { copyMs: number; ingest: ChildResult }[] = [];
    for (let i = 0; i < runs; i++) {
      await resetTables(url.toString());
      const t1 = performance.now();
      const psql = spawnSync('psql', [url.toString(), '-v', 'ON_ERROR_STOP=1', '-c', `\\copy bench_bare from '${file}' with (format csv)`], { encoding: 'utf8' });
      const copyMs = performance.now() - t1;
      if (psql.status !== 0) throw new Error(`psql \\copy failed: ${psql.stderr}`);
      const ingest = await runChild(['postgres', url.toString(), file]);
      if (ingest.rowsLoaded !== rows) throw new Error(`ingest loaded ${ingest.rowsLoaded} rows, expected ${rows}`);
      results.push({ copyMs, ingest });
      ratios.push(ingest.ms / copyMs);
      out(`run ${i + 1}: psql \\copy ${sec(copyMs)} (${rate(rows, copyMs)}); repwatch ingest ${sec(ingest.ms)} (${rate(rows, ingest.ms)}), peak RSS ${ingest.maxRssMb.toFixed(0)} MB; ratio ${(ingest.ms / copyMs).toFixed(2)}`);
    }
    const mid = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!;
    const median = results[ratios.indexOf(mid)]!;
    const peak = Math.max(...results.map((r) => r.ingest.maxRssMb));
    out(`repwatch ingest (PostgreSQL), median run: ${sec(median.ingest.ms)} (${rate(rows, median.ingest.ms)}) against \\copy ${sec(median.copyMs)}`);
    out(`ratio to \\copy (median of ${runs}): ${mid.toFixed(2)} (target <= 2.0)   peak RSS: ${peak.toFixed(0)} MB (target < 300)`);

    const again = await runChild(['postgres', url.toString(), file]);
    out(`same file again: ${again.outcome} in ${sec(again.ms)} (identical content recognised, not parsed twice)`);

    // The daily re-fetch: the last days again, with other values, over everything held (the replacement
    // path: every row replaces the stored row of its IP and activity start).
    const refetchDays = Math.min(3, days);
    const refetch = join(dir, 'refetch.csv');
    await generate(refetch, ips, refetchDays, { firstDay: days - refetchDays, seed: 7 });
    const replaced = await runChild(['postgres', url.toString(), refetch]);
    out(
      `re-fetch of the last ${refetchDays} days (${(ips * refetchDays).toLocaleString('en')} rows over the ${rows.toLocaleString('en')} held): ` +
        `${replaced.outcome} in ${sec(replaced.ms)}, ${replaced.rowsReplaced.toLocaleString('en')} rows replaced`,
    );

    if (!args.includes('--skip-pglite')) {
      const home = join(dir, 'pglite');
      const embedded = await runChild(['pglite', home, file]);
      out(`repwatch ingest (embedded PGlite): ${sec(embedded.ms)} (${rate(embedded.rowsLoaded, embedded.ms)}), peak RSS ${embedded.maxRssMb.toFixed(0)} MB (no target)`);
    }
  } finally {
    await admin.query(`drop database if exists ${dbName} with (force)`).catch(() => undefined);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface ChildResult {
  ms: number;
  rowsLoaded: number;
  rowsReplaced: number;
  maxRssMb: number;
  outcome: string;
}

/** Empty the bare table and everything the ingest writes, so that every run loads into the same state. */
async function resetTables(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('truncate bench_bare, repwatch.snds_row, repwatch.snds_feed_day, repwatch.rejection, repwatch.snds_status_range, repwatch.raw_download_chunk, repwatch.raw_download');
    await client.query('checkpoint');
  } finally {
    await client.end();
  }
}

async function child(args: string[]): Promise<void> {
  const [backend, target, file] = args as [string, string, string];
  const database = await openDatabase(backend === 'postgres' ? { url: target } : { home: target });
  await migrate(database);
  const started = performance.now();
  const result = await ingestLocalInput(
    database,
    { source: 'file', kind: 'ip_data', feed: 'bench', location: file, fetchedAt: new Date() },
    file,
    'UTC',
  );
  const ms = performance.now() - started;
  await database.close();
  const report: ChildResult = { ms, rowsLoaded: result.rowsLoaded, rowsReplaced: result.rowsReplaced ?? 0, maxRssMb: process.resourceUsage().maxRSS / 1024, outcome: result.outcome };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

function runChild(args: string[]): Promise<ChildResult> {
  const main = join(fileURLToPath(new URL('.', import.meta.url)), 'main.js');
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [main, 'snds', '--child', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    proc.stdout.on('data', (c: Buffer) => (text += c.toString('utf8')));
    proc.on('error', reject);
    proc.on('close', (code) => {
      const line = text.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`bench child failed (exit ${code}): ${text}`));
      else resolve(JSON.parse(line) as ChildResult);
    });
  });
}

/** The real layout: 14 columns, CRLF, quoted comments now and then, empty trap fields, short rows. */
export async function generate(file: string, ips: number, days: number, options: { firstDay?: number; seed?: number } = {}): Promise<void> {
  const stream = createWriteStream(file);
  const colours = ['GREEN', 'GREEN', 'GREEN', 'YELLOW', 'RED'];
  const bands = ['< 0.1%', '< 0.1%', '0.1% - < 1%', '1% - < 2%', '>4%'];
  let seed = options.seed ?? 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const start = Date.UTC(2026, 0, 1);
  for (let d = options.firstDay ?? 0; d < (options.firstDay ?? 0) + days; d++) {
    const from = new Date(start + d * 86_400_000);
    const to = new Date(start + (d + 1) * 86_400_000);
    const stamp = (t: Date, h: string) => `${t.getUTCMonth() + 1}/${t.getUTCDate()}/${t.getUTCFullYear()} ${h}`;
    const begin = stamp(from, '4:00 PM');
    const end = stamp(to, '3:00 PM');
    const lines: string[] = [];
    for (let i = 0; i < ips; i++) {
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const rcpt = Math.floor(random() * 300_000) + 100;
      const data = rcpt - Math.floor(random() * 50);
      const k = Math.floor(random() * 5);
      const trap = random() < 0.3 ? `${stamp(from, '8:07 PM')},${stamp(to, '12:03 PM')},${Math.floor(random() * 50)}` : ',,0';
      const tail = random() < 0.05 ? ',,,"Abuse reported for: someone@example.net, and others"' : ',,,';
      lines.push(`${ip},${begin},${end},${rcpt},${data},${data - 1},${colours[k]},${bands[k]},${trap}${tail}\r\n`);
    }
    if (!stream.write(lines.join(''))) await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => stream.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

const rate = (rows: number, ms: number) => `${Math.round(rows / (ms / 1000)).toLocaleString('en')} rows/s`;
